"""Speed of the PixelRNN models on the CPU, measured in one run.

Reports, at each model's default (registered) config on 28x28 binarized-MNIST-shaped data:
- training images/s (forward + backward + Adam step, batch --train-batch),
- eval images/s (log_prob under no_grad, batch --eval-batch),
beside PixelCNN's default config when the `pixelcnn` model is registered; then the
fast-vs-naive sampling ratio of the Row LSTM (and of the Diagonal BiLSTM) for --samples
images, checking that both samplers drew the same images.

    python benchmarks/bench_pixelrnn.py                 # everything (a few minutes on 2 cores)
    python benchmarks/bench_pixelrnn.py --no-sampling   # throughput only
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo
from zoo.errors import UnknownNameError


def images_per_second(fn, batch: int, seconds: float, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return n * batch / elapsed


def throughput(name: str, train_batch: int, eval_batch: int, seconds: float) -> dict:
    model = zoo.create(name)
    spec = model.data_spec
    g = torch.Generator().manual_seed(0)
    x_train = torch.randint(0, spec.levels, (train_batch, *spec.shape), generator=g)
    x_eval = torch.randint(0, spec.levels, (eval_batch, *spec.shape), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        loss = model.loss(x_train)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def eval_step():
        with torch.no_grad():
            model.log_prob(x_eval)

    model.train()
    train = images_per_second(train_step, train_batch, seconds)
    model.eval()
    ev = images_per_second(eval_step, eval_batch, seconds)
    params = sum(p.numel() for p in model.parameters())
    return {"name": name, "config": dict(model.zoo_config), "params": params, "train": train, "eval": ev}


def sampling(name: str, n: int) -> dict:
    torch.manual_seed(0)
    model = zoo.create(name).eval()
    out = {}
    for method in ("fast", "naive"):
        start = time.perf_counter()
        out[method] = zoo.sample(model, n, method=method, generator=torch.Generator().manual_seed(0))
        out[f"{method}_s"] = time.perf_counter() - start
    return {"name": name, "fast_s": out["fast_s"], "naive_s": out["naive_s"],
            "ratio": out["naive_s"] / out["fast_s"], "same": bool(torch.equal(out["fast"], out["naive"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the machine is shared)")
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0, help="time per throughput measurement")
    ap.add_argument("--samples", type=int, default=16, help="images per sampling measurement")
    ap.add_argument("--no-sampling", action="store_true")
    ap.add_argument("--diag-sampling", action="store_true", help="also time the Diagonal BiLSTM samplers")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
          f"train batch {args.train_batch}, eval batch {args.eval_batch}")

    names = ["pixelrnn-row", "pixelrnn-diag"]
    try:
        zoo.info("pixelcnn")
        names.append("pixelcnn")
    except UnknownNameError:
        print("pixelcnn is not registered in this checkout: PixelCNN column skipped")
    rows = [throughput(name, args.train_batch, args.eval_batch, args.seconds) for name in names]
    print(f"\n{'model':<15}{'params':>9}{'train img/s':>13}{'eval img/s':>12}   config")
    for r in rows:
        cfg = ", ".join(f"{k}={v}" for k, v in r["config"].items() if k not in ("channels", "height", "width", "levels"))
        print(f"{r['name']:<15}{r['params']:>9,}{r['train']:>13.1f}{r['eval']:>12.1f}   {cfg}")
    if "pixelcnn" in names:
        base = rows[-1]
        for r in rows[:-1]:
            print(f"  {r['name']}: {r['train'] / base['train']:.2f}x PixelCNN's training speed, "
                  f"{r['eval'] / base['eval']:.2f}x its eval speed")

    if not args.no_sampling:
        todo = ["pixelrnn-row"] + (["pixelrnn-diag"] if args.diag_sampling else [])
        print(f"\nsampling {args.samples} images 28x28 (same generator for both samplers)")
        for name in todo:
            s = sampling(name, args.samples)
            print(f"  {name}: fast {s['fast_s']:.2f} s, naive {s['naive_s']:.1f} s, "
                  f"ratio {s['ratio']:.1f}x, identical images: {s['same']}")


if __name__ == "__main__":
    main()
