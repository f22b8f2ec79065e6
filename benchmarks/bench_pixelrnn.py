"""Sampling speed of the PixelRNN models on the CPU: fast vs naive, measured in one run.

At each model's default (registered) config on 28x28 binarized-MNIST-shaped data, times the
fast and the naive sampler of the Row LSTM (and, with --diag-sampling, of the Diagonal BiLSTM)
for --samples images with the same generator, and checks that both drew the same images.
Training and scoring throughput: benchmarks/bench_train.py.

    python benchmarks/bench_pixelrnn.py --threads 2 --diag-sampling
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo


def sampling(name: str, n: int) -> dict:
    torch.manual_seed(0)
    model = zoo.create(name).eval()
    out = {}
    for method in ("fast", "naive"):
        start = time.perf_counter()
        out[method] = zoo.sample(model, n, method=method, generator=torch.Generator().manual_seed(0))
        out[f"{method}_s"] = time.perf_counter() - start
    return {
        "name": name,
        "fast_s": out["fast_s"],
        "naive_s": out["naive_s"],
        "ratio": out["naive_s"] / out["fast_s"],
        "same": bool(torch.equal(out["fast"], out["naive"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the machine is shared)")
    ap.add_argument("--samples", type=int, default=16, help="images per sampling measurement")
    ap.add_argument("--diag-sampling", action="store_true", help="also time the Diagonal BiLSTM samplers")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    todo = ["pixelrnn-row"] + (["pixelrnn-diag"] if args.diag_sampling else [])
    print(f"sampling {args.samples} images 28x28 (same generator for both samplers)")
    for name in todo:
        s = sampling(name, args.samples)
        print(
            f"  {name}: fast {s['fast_s']:.2f} s, naive {s['naive_s']:.1f} s, "
            f"ratio {s['ratio']:.1f}x, identical images: {s['same']}"
        )


if __name__ == "__main__":
    main()
