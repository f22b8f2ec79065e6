"""Fast (cached) vs naive sampling of PixelCNN and gated PixelCNN, in one run, on the CPU.

    python benchmarks/bench_pixelcnn_sampling.py                  # 16 images 28x28, default configs
    python benchmarks/bench_pixelcnn_sampling.py --naive-subpixels 784   # time the naive sampler in full
    python benchmarks/bench_pixelcnn_sampling.py --tiny           # a quick smoke run

The fast sampler draws all 16 images. The naive sampler (one full forward pass
per sub-pixel) is timed on the first `--naive-subpixels` sub-pixels only and
extrapolated linearly to the whole image: every one of its steps is the same
full forward pass, so its time is proportional to the number of sub-pixels.
It runs as a completion whose known part is the fast sampler's own images
after those sub-pixels, so it also checks that both samplers draw the same
sub-pixels. The table says which numbers are extrapolated.
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo
from zoo.sampling import after_first_subpixels, draw_uniforms, sample_fast, sample_naive


def bench(name: str, n: int, naive_subpixels: int, tiny: bool, seed: int) -> dict:
    spec0 = zoo.info(name)
    torch.manual_seed(seed)
    model = zoo.create(name, **(spec0.test_config if tiny else {})).eval()
    spec = model.data_spec
    u = draw_uniforms(n, spec, torch.Generator().manual_seed(seed))

    with torch.no_grad():
        t0 = time.perf_counter()
        fast = sample_fast(model, u, temperature=1.0, known=None, mask=None)
        t_fast = time.perf_counter() - t0

        total = spec.dims
        k = min(naive_subpixels, total)
        mask = after_first_subpixels(spec, k).unsqueeze(0).expand(n, *spec.shape)  # the first k are sampled
        t0 = time.perf_counter()
        naive = sample_naive(model, u, temperature=1.0, known=fast, mask=mask)
        t_naive_k = time.perf_counter() - t0
    t_naive = t_naive_k * total / k
    return {
        "model": name,
        "config": "tiny" if tiny else "default",
        "images": f"{n}x{spec.channels}x{spec.height}x{spec.width}",
        "fast_s": t_fast,
        "fast_per_s": n / t_fast,
        "naive_s": t_naive,
        "naive_per_s": n / t_naive,
        "naive_measured": f"{k}/{total}",
        "ratio": t_naive / t_fast,
        "same": bool(torch.equal(naive, fast)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="pixelcnn,gated-pixelcnn")
    ap.add_argument("-n", type=int, default=16, help="images per run")
    ap.add_argument(
        "--naive-subpixels",
        type=int,
        default=56,
        help="sub-pixels the naive sampler is timed on (default: 2 rows of 28); the rest is extrapolated",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--tiny", action="store_true", help="use the models' tiny test configs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench(m, args.n, args.naive_subpixels, args.tiny, args.seed) for m in args.models.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    head = (
        f"| {'model':<15} | config  | images      | fast s  | fast img/s | naive s (measured sub-pixels) "
        "| naive img/s | fast/naive | same |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        extrap = "" if r["naive_measured"].split("/")[0] == r["naive_measured"].split("/")[1] else ", extrapolated"
        naive = f"{r['naive_s']:.1f} ({r['naive_measured']}{extrap})"
        print(
            f"| {r['model']:<15} | {r['config']:<7} | {r['images']:<11} | {r['fast_s']:7.2f} | {r['fast_per_s']:10.2f} "
            f"| {naive:<29} | {r['naive_per_s']:11.3f} | {r['ratio']:9.1f}x | {'yes' if r['same'] else 'NO':<4} |"
        )


if __name__ == "__main__":
    main()
