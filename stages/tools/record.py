"""Record one finished stage of a run in stages/: copy its checkpoint, log and release folder, and append a line
to stages.jsonl (epochs, best validation NLL, test NLL, wall time, hardware, the code it ran).

    python stages/tools/record.py RUN_DIR stages/gated-pixelcnn.binarized-mnist --code "e45da1a (a fixed worktree)"
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the run's --out folder (checkpoint.safetensors, train_log.jsonl, release/)")
    ap.add_argument("stage_dir", type=Path, help="stages/NAME.DATASET")
    ap.add_argument("--code", required=True, help="the commit the run executes, as a reader can check it out")
    args = ap.parse_args()
    release = args.run / "release"
    training = json.loads((release / "training.json").read_text())
    scored = release / "eval.json"  # absent after `zoo train --no-eval`
    nll = json.loads(scored.read_text())["metrics"].get("nll") if scored.is_file() else None
    row = {
        "epochs": training["epochs"],
        "best_epoch": training.get("best_epoch"),
        "best_valid_nll": None if training.get("best_valid_nll") is None else round(training["best_valid_nll"], 4),
        "test_nll": None if nll is None else round(nll["value"], 4),
        "wall_time_h": round(training["wall_time_s"] / 3600, 3),
        "hardware": training["hardware"],
        "stages": len(training["stages"]),
        "code": args.code,
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.stage_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(args.run / "train_log.jsonl", args.stage_dir / "train_log.jsonl")
    ckpt = args.run / "checkpoint.safetensors"  # absent when a run's checkpoint could not be brought back
    if ckpt.is_file():
        shutil.copy2(ckpt, args.stage_dir / ckpt.name)
    else:
        (args.stage_dir / ckpt.name).unlink(missing_ok=True)
    shutil.rmtree(args.stage_dir / "release", ignore_errors=True)
    shutil.copytree(release, args.stage_dir / "release")
    with (args.stage_dir / "stages.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
