"""How close each likelihood model's training runs to this CPU's matrix-product rate, in one run.

A speed-up has a ceiling: a training step cannot run faster than its floating-point work at
the rate of a large, well-shaped matrix product on the same threads. For every likelihood
model at its release config and its default recipe's batch size (as `bench_train.py` sets
them up), this prints
- the work of one training step per image: forward and backward FLOPs as
  `torch.utils.flop_counter.FlopCounterMode` counts the operators this tree runs (matrix
  products and convolutions; elementwise work is not counted);
- training images/s (forward, backward, clipping, optimizer step, EMA: `bench_train.py`'s step)
  and the FLOP rate that makes;
- the ceiling: the images/s a step would reach at the rate of a square fp32 matrix product
  (`--gemm` rows and columns) timed in the same run, and the fraction of it reached.

Divide a ratio from `bench_train.py` (now / reference) by the fraction here to get the most
that ratio could become with the same operators and FLOPs; only fewer FLOPs (another
algorithm) or lower precision (`bench_train.py --precision bf16`; the bf16 product rate is timed
here too) go past it.

    python benchmarks/bench_flops.py                         # every likelihood model, 2 threads
    python benchmarks/bench_flops.py --models gated-pixelcnn --threads 1 --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _load_bench_train():
    """`bench_train.py`, loaded from its file (it imports only the standard library at the top)."""
    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("bench_train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _load_bench_train()  # its training step, timer and model listing: one implementation of each


def gemm_rate(size: int, dtype, seconds: float) -> float:
    """GFLOP/s of `size x size` matrix products in `dtype` on the current threads."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g).to(dtype) for _ in range(2))
    products_per_second = BENCH.images_per_second(lambda: a @ b, 1, seconds)
    return 2 * size**3 * products_per_second / 1e9


def step_flops(model, x) -> float:
    """Forward and backward FLOPs of one training loss on the batch `x` (counted, not timed)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.loss(x).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def measure(name: str, recipe: dict, config: dict, seconds: float, seed: int = 0) -> dict:
    """Counted FLOPs per training image and training images/s of one model (this process's threads)."""
    import torch

    import zoo

    torch.manual_seed(seed)
    model = zoo.create(name, **config)
    spec, batch = model.data_spec, recipe["batch_size"]
    x = torch.randint(0, spec.levels, (batch, *spec.shape), generator=torch.Generator().manual_seed(seed))
    model.train()
    flops = step_flops(model, x) / batch
    rate = BENCH.images_per_second(BENCH.make_train_step(model, x, recipe), batch, seconds)
    return {"model": name, "batch": batch, "gflop_per_image": flops / 1e9, "train": rate}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated names (default: every likelihood model)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per model and per product")
    ap.add_argument("--gemm", type=int, default=2048, help="rows and columns of the timed square product")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)

    import torch

    from zoo.util import keep_freed_memory

    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `zoo train` does
    listing = BENCH.list_likelihood_models()["models"]
    names = args.models.split(",") if args.models else sorted(listing)
    unknown = [n for n in names if n not in listing]
    if unknown:
        sys.exit(f"not a likelihood model: {', '.join(unknown)} (these are: {', '.join(sorted(listing))})")
    fp32 = gemm_rate(args.gemm, torch.float32, args.seconds)
    bf16 = gemm_rate(args.gemm, torch.bfloat16, args.seconds)
    rows = []
    for name in names:
        row = measure(name, listing[name], {}, args.seconds)
        row["gflops"] = row["train"] * row["gflop_per_image"]
        # no counted products (a model of elementwise work only): no ceiling from the product rate
        row["ceiling"] = fp32 / row["gflop_per_image"] if row["gflop_per_image"] > 0 else None
        row["fraction"] = row["train"] / row["ceiling"] if row["ceiling"] else None
        rows.append(row)
    report = {"threads": torch.get_num_threads(), "gemm": args.gemm, "gemm_fp32": fp32, "gemm_bf16": bf16}
    report["rows"] = rows
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['threads']} threads; a {args.gemm}x{args.gemm} product: {fp32:.1f} GFLOP/s in fp32, "
        f"{bf16:.1f} in bf16 ({bf16 / fp32:.2f}x)\n"
    )
    print("| model | batch | GFLOP per training image | train images/s | GFLOP/s | ceiling images/s | fraction |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ceiling = "- | -" if r["ceiling"] is None else f"{r['ceiling']:.1f} | {r['fraction']:.2f}"
        print(
            f"| `{r['model']}` | {r['batch']} | {r['gflop_per_image']:.3f} | {r['train']:.1f} | {r['gflops']:.1f} | "
            f"{ceiling} |"
        )


if __name__ == "__main__":
    main()
