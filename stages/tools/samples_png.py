"""samples.png for a release folder trained with `--samples 0` (e.g. in a GPU batch), drawn as `zoo train` draws
it (zoo.training.release.release_samples: the recipe's seed; here on the CPU), 16 images, a grid at scale 2.

    python stages/tools/samples_png.py stages/pixelcnn-h128.binarized-mnist/release
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import zoo
from zoo.images import save_grid
from zoo.training.release import release_samples


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    torch.set_num_threads(1)
    seed = json.loads((folder / "training.json").read_text())["recipe"]["seed"]
    model = zoo.load(f"local-dir:{folder}")
    x = release_samples(model, n, seed)
    save_grid(x, folder / "samples.png", model.data_spec.levels, scale=2)
    print("wrote", folder / "samples.png", tuple(x.shape))


if __name__ == "__main__":
    main()
