"""FID, precision and recall of a GAN training run against wall time: follows a `zoo train` run folder
and scores every epoch's checkpoint as it appears (the loop keeps only the last one).

    python benchmarks/gan_fid_curve.py RUN_DIR [--dataset binarized-mnist] [--set levels=2] [--ema]
        [--out FILE] [--poll 20]

Each new epoch appends one line to RUN_DIR/fid_curve.jsonl: epoch, step, the run's elapsed
training seconds, and the harness's fid (with its floor), precision and recall (1000 samples,
seed 0, `zoo.evaluate(..., limit=1000)`, i.e. the canonical subset of the test split).
`--set levels=2` scores a generator trained on 256-level intensities as a binary model: its
samples are then Bernoulli draws of its intensities, as binarized MNIST was made.
Stops when RUN_DIR/release/ appears (the run finished) or after --hours.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zoo
from zoo.training.checkpoint import load_checkpoint, prefixed


def score(run: Path, dataset: str, overrides: dict, seen: set[int], prefix: str) -> dict | None:
    tensors, meta = load_checkpoint(run / "checkpoint.safetensors")
    epoch = meta["epoch"]
    if epoch in seen or meta["step_in_epoch"]:
        return None
    ident = meta["identity"]
    model = zoo.create(ident["model"], **{**ident["config"], **overrides})
    model.load_state_dict(prefixed(tensors, prefix), strict=True)
    r = zoo.evaluate(
        model, dataset=dataset, metrics="fid,precision,recall", num_samples=1000, limit=1000, seed=0, progress=False
    )
    m = r.metrics
    seen.add(epoch)
    return {
        "epoch": epoch,
        "step": meta["step"],
        "elapsed_s": round(meta["elapsed"], 1),
        "fid": m["fid"].value,
        "fid_floor": m["fid"].details.get("floor"),
        "precision": m["precision"].value,
        "recall": m["recall"].value,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--dataset", default="binarized-mnist")
    ap.add_argument("--set", action="append", default=[], help="constructor override KEY=INT")
    ap.add_argument("--ema", action="store_true", help="score the loop's EMA weights (recipe ema_decay > 0)")
    ap.add_argument("--out", type=Path, default=None, help="records file (default RUN_DIR/fid_curve.jsonl)")
    ap.add_argument("--poll", type=float, default=20.0)
    ap.add_argument("--hours", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    overrides = {k: int(v) for k, v in (s.split("=", 1) for s in args.set)}
    out = args.out or args.run / "fid_curve.jsonl"
    seen = {json.loads(line)["epoch"] for line in out.read_text().splitlines()} if out.is_file() else set()
    deadline = time.time() + args.hours * 3600
    while time.time() < deadline:
        if (args.run / "checkpoint.safetensors").is_file():
            try:
                row = score(args.run, args.dataset, overrides, seen, "ema/" if args.ema else "model/")
            except Exception as e:  # a checkpoint being replaced mid-read: try again at the next poll
                print(f"skipped: {type(e).__name__}: {e}", flush=True)
                row = None
            if row is not None:
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
        if (args.run / "release").is_dir():
            break
        time.sleep(args.poll)


if __name__ == "__main__":
    main()
