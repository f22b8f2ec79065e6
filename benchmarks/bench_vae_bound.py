"""What the importance-weighted bound costs and how much it tightens: a bounded model's nll at several k.

    python benchmarks/bench_vae_bound.py vae.binarized-mnist --limit 100 --k 1,10,100,1000,5000

Scores the same seeded subset of `--limit` test images with `zoo.evaluate(..., iw_samples=k)` for each k
(one process, `--threads` torch threads) and prints, per k, the upper bound on the NLL, its standard error,
the wall time, and decoder passes per second (images x k / time). The bound falls as k grows (Burda et al.
2016); the time grows about linearly in k. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import zoo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a bounded model: a name for zoo.load (vae.binarized-mnist, local-dir:PATH)")
    ap.add_argument("--limit", type=int, default=100, help="test images (a seeded subset, as zoo eval --limit)")
    ap.add_argument("--k", default="1,10,100,1000", help="comma-separated importance samples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.name)
    rows = []
    for k in (int(v) for v in args.k.split(",")):
        t0 = time.perf_counter()
        r = zoo.evaluate(model, metrics="nll", limit=args.limit, iw_samples=k, seed=args.seed)
        dt = time.perf_counter() - t0
        nll = r["nll"]
        rows.append(
            {
                "k": k,
                "nll_upper_bound": nll.value,
                "stderr": nll.stderr,
                "n": nll.details["n"],
                "seconds": round(dt, 2),
                "decoder_passes_per_s": round(nll.details["n"] * k / dt),
            }
        )
        if not args.json:
            print(
                f"k={k:>5}  nll <= {nll.value:.2f} ± {nll.stderr:.2f} nats  n={nll.details['n']}  "
                f"{dt:8.1f} s  {rows[-1]['decoder_passes_per_s']:,} decoder passes/s",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
