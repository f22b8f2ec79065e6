"""Promote a stage's release folder to cards/: copy it over the bundled release of the same name, re-pin the
sha256 in the plugin that names the old weights, and re-render the card (`zoo card`, which recomputes the
canonical-subset claims for the new weights).

    python stages/tools/promote.py stages/gated-pixelcnn.binarized-mnist/release

Files of the old card that the release lacks (a growth figure, an FID curve) are kept; a test fixture that holds the
old weights' logits is named. A run started with `--init-from` by a zoo that did not yet record the history of the
weights it started from gets it here, from the card that holds those weights (or that recorded them already), and
its training curve is redrawn on the lineage's clock. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from zoo.eval.trainlog import continued, earlier_history, run_history
from zoo.training.log import read_jsonl
from zoo.training.plot import plot_training_curves
from zoo.util import sha256_file, write_atomic


def add_history(release: Path, card: Path) -> None:
    """Record in `release`'s training.json the history of the weights its run started from, where it lacks it."""
    path = release / "training.json"
    training = json.loads(path.read_text())
    init = (training.get("stages") or [{}])[0].get("init_from")
    if not init or init.get("history"):
        return
    before = json.loads((card / "training.json").read_text())
    if json.loads((card / "config.json").read_text())["weights"]["sha256"] == init["sha256"]:
        history = run_history(card)
    elif earlier_history(before) and before["stages"][0]["init_from"]["sha256"] == init["sha256"]:
        history = earlier_history(before)  # an earlier stage of the same run, promoted with its history
    else:
        raise SystemExit(f"{card} neither holds nor continues the weights {init['sha256'][:12]} the run started from")
    init["history"] = history
    write_atomic(path, json.dumps(training, indent=2) + "\n")
    records = continued(read_jsonl(release / "train_log.jsonl"), training)
    plot_training_curves(records, release / "training_curve.png", title=f"{training['model']} on {training['dataset']}")
    print(f"{path}: recorded the history of {init['sha256'][:12]} ({history['epochs']} epochs before this run)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("release", type=Path)
    ap.add_argument("--card", default=None, help="cards/ folder name (default ARCHITECTURE.TAG from config.json)")
    args = ap.parse_args()
    config = json.loads((args.release / "config.json").read_text())
    card = Path("cards") / (args.card or f"{config['architecture']}.{config['tag']}")
    add_history(args.release, card)
    old = json.loads((card / "config.json").read_text())["weights"]["sha256"]
    new = sha256_file(args.release / "model.safetensors")
    pinned = [p for p in Path("plugins").glob("*/plugin.py") if old in p.read_text()]
    if len(pinned) != 1:
        raise SystemExit(f"expected one plugin pinning {old[:12]}, found {[str(p) for p in pinned]}")
    for f in args.release.iterdir():
        if f.is_file():
            shutil.copy2(f, card / f.name)
    pinned[0].write_text(pinned[0].read_text().replace(old, new))
    subprocess.run(["zoo", "card", str(card)], check=True)
    print(f"{card}: {old[:12]} -> {new[:12]} (pinned in {pinned[0]})")
    for fixture in sorted(Path("tests/fixtures").glob("*.safetensors")):  # frozen logits of the old weights
        if old.encode() in fixture.read_bytes():
            print(f"{fixture} holds the old weights' logits: regenerate it (its make_*.py says how)")


if __name__ == "__main__":
    main()
