"""growth.png for a GAN release: the first row of the fixed-latent grid of chosen epochs, stacked.

    python benchmarks/gan_growth_figure.py RUN_DIR --epochs 1,2,8 --out RUN_DIR/release/growth.png

`zoo train` saves RUN_DIR/samples/epochNNN.png (the trainer's `epoch_samples`, 8 images a row)
at every epoch's end; for a progressively grown GAN these show the images growing. growth.txt,
written beside the picture, names each row: its epoch and the stage, resolution and fade-in
`alpha` of the run's last training record of that epoch (train_log.jsonl).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", required=True, help="comma-separated epochs, one row each")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    epochs = [int(e) for e in args.epochs.split(",")]
    log = [json.loads(line) for line in (args.run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    rows, notes = [], []
    for e in epochs:
        grid = Image.open(args.run / "samples" / f"epoch{e:03d}.png")
        rows.append(grid.crop((0, 0, grid.width, grid.height // 8 + 1)))  # the first of 8 rows (and its border)
        last = [r for r in log if r.get("kind") == "train" and r.get("epoch") == e][-1]
        notes.append(
            f"row {len(rows)}: epoch {e}, step {last['step']}, stage {last.get('stage', '-')}, "
            f"resolution {last.get('resolution', '-')}, alpha {last.get('alpha', '-')} (last record)"
        )
    out = Image.new(rows[0].mode, (rows[0].width, sum(r.height for r in rows)))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.out)
    args.out.with_suffix(".txt").write_text("\n".join(notes) + "\n")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
