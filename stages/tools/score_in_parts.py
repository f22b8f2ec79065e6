"""`zoo eval NAME --metrics nll` in parts that survive the end of a sitting: one file per batch.

    python stages/tools/score_in_parts.py pixelvae.binarized-mnist --iw-samples 5000 --limit 1000 \\
        --parts /work/runs/pixelvae-k5000 --threads 2

Some scores outlast a sitting on two CPU cores (the PixelVAE's bound at k=5000: 5,000 decoder passes per
image, about 13 s an image here). This scores the images `zoo eval` would score, batch by batch, with the
same per-batch seeds (`zoo.eval.likelihood.batch_log_prob`), and writes each batch's per-image values to
`PARTS/batch-NNNNN.json` as soon as it is done; run again with the same arguments and it starts at the
first batch without a file. When every batch has one it prints the nll that `zoo eval NAME --iw-samples K
--limit N --batch-size B --seed S --json` prints (the same images, the same draws, the same numbers) and
writes it to `PARTS/result.json`. `PARTS/args.json` pins the arguments: a rerun with others is refused.
`--shard R/N` scores every N-th batch from the R-th, so that N processes (one thread each) share the work;
the last one to finish prints the result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo
from zoo.eval.harness import EvalContext, get_dataset
from zoo.eval.likelihood import batch_log_prob, nll
from zoo.eval.subset import subset_identity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a name for zoo.load (pixelvae.binarized-mnist, local-dir:PATH)")
    ap.add_argument("--parts", type=Path, required=True, help="folder of the per-batch files (made if missing)")
    ap.add_argument("--dataset", default="binarized-mnist")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None, help="a seeded subset of N images, as zoo eval --limit")
    ap.add_argument("--iw-samples", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shard", default="0/1", help="R/N: score only the batches b with b %% N == R (N processes)")
    args = ap.parse_args()
    shard, shards = (int(v) for v in args.shard.split("/"))
    if not 0 <= shard < shards:
        raise SystemExit(f"--shard R/N needs 0 <= R < N, got {args.shard}")
    torch.set_num_threads(args.threads)
    pinned = {k: getattr(args, k) for k in ("name", "dataset", "split", "limit", "iw_samples", "batch_size", "seed")}
    args.parts.mkdir(parents=True, exist_ok=True)
    pin_file = args.parts / "args.json"
    if pin_file.exists() and json.loads(pin_file.read_text()) != pinned:
        raise SystemExit(f"{args.parts} holds parts of another run: {pin_file.read_text()}; pick another --parts")
    pin_file.write_text(json.dumps(pinned, indent=1) + "\n")

    model = zoo.load(args.name).eval()
    ctx = EvalContext(
        model, get_dataset(args.dataset), args.split, seed=args.seed, batch_size=args.batch_size, limit=args.limit,
        iw_samples=args.iw_samples,
    )  # fmt: skip
    images = ctx.split_images()  # (N, C, H, W) levels, the images zoo eval scores
    n = images.shape[0]
    parts = [args.parts / f"batch-{b:05d}.json" for b in range(-(-n // args.batch_size))]
    for b, part in enumerate(parts):
        start = b * args.batch_size
        if b % shards == shard and not part.exists():
            t0 = time.perf_counter()
            with torch.no_grad():
                lp = batch_log_prob(
                    model, images[start : start + args.batch_size], b, iw_samples=args.iw_samples, seed=args.seed
                )
            tmp = part.with_suffix(".tmp")
            tmp.write_text(json.dumps({"batch": b, "start": start, "log_prob": lp.tolist()}) + "\n")
            tmp.replace(part)  # a batch's file is whole or absent
            print(f"batch {b} ({start}..{start + lp.numel() - 1} of {n}): {time.perf_counter() - t0:.0f} s", flush=True)
    missing = [p.name for p in parts if not p.exists()]
    if missing:  # another shard's batches
        print(f"{len(parts) - len(missing)} of {len(parts)} batches scored; waiting for {', '.join(missing)}")
        return
    values = [v for p in parts for v in json.loads(p.read_text())["log_prob"]]
    ctx.cache["log_prob"] = torch.tensor(values, dtype=torch.float64)  # what zoo eval's nll computes, in parts
    value = nll(ctx)
    idx, total = ctx.subset_indices(), ctx.load_split(args.split)[0].shape[0]
    result = {
        **pinned,
        "nll": value.value,
        "stderr": value.stderr,
        **value.details,
        "subset": None if idx is None else subset_identity(idx, seed=args.seed, total=total),
    }
    (args.parts / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
