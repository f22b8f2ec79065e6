"""A binarized-MNIST release of a GAN trained on MNIST's intensities: the matching set-up.

Binarized MNIST is one Bernoulli draw per pixel of MNIST's intensities
(plugins/zoo_datasets/binarize.py). A GAN trained on the 256-level `mnist` dataset learns those
intensities; the same generator with `levels=2` samples by drawing each pixel from its intensity,
the process that made the data. This writes that model as a release folder: the weights are the
256-level run's, unchanged; only the data spec (levels 2) differs, and the harness scores it on
`binarized-mnist` with that dataset's reference classifier.

    python -m zoo_gan.binarized runs/dcgan-mnist/release cards/dcgan.binarized-mnist

Works for any zoo GAN whose constructor takes `levels` and whose sampling draws Bernoulli pixels
for binary data (`dcgan`, `pggan`). The run's training.json, train_log.jsonl, training curve and
growth figure are copied along; `--quality FILE` adds per-epoch fid/precision/recall records of the
binary model (benchmarks/gan_fid_curve.py --set levels=2) as the release's fid_curve.jsonl.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

__all__ = ["binarized_release"]

_COPIED = ("training.json", "train_log.jsonl", "training_curve.png", "growth.png", "growth.txt")


def binarized_release(
    src: str | Path,
    dst: str | Path,
    *,
    metrics: str = "fid,precision,recall,parzen",
    quality: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Write `dst`, the binary-data release of the 256-level MNIST release folder `src`; returns its card."""
    import torch  # noqa: F401  (the zoo's model code needs it; imported here, not at plugin import)
    from safetensors.torch import load_file

    import zoo
    from zoo.release import render_release_card

    src, dst = Path(src), Path(dst)
    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("dataset") != "mnist" or cfg["config"].get("levels") != 256:
        raise ValueError(
            f"{src}: expected a release trained on the 256-level 'mnist' dataset, got dataset "
            f"{cfg.get('dataset')!r} with levels={cfg['config'].get('levels')!r}"
        )
    model = zoo.create(cfg["architecture"], **{**cfg["config"], "levels": 2})
    model.load_state_dict(load_file(src / "model.safetensors"), strict=True)
    model.eval()
    training = json.loads((src / "training.json").read_text())
    result = zoo.evaluate(
        model, dataset="binarized-mnist", split="test", metrics=metrics, num_samples=1000, progress=progress
    )
    zoo.save_pretrained(
        model,
        dst,
        results=result,
        samples=16,
        recipe={"name": training.get("recipe_name"), **training.get("recipe", {})},
        tag="binarized-mnist",
        dataset="binarized-mnist",
        training=training,
    )
    for name in _COPIED:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    if quality is not None:
        shutil.copyfile(quality, dst / "fid_curve.jsonl")
    (dst / "eval.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return render_release_card(dst, progress=progress)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zoo_gan.binarized", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="release folder of a GAN trained on mnist (256 levels)")
    ap.add_argument("dst", help="folder to write the binarized-mnist release to")
    ap.add_argument("--metrics", default="fid,precision,recall,parzen")
    ap.add_argument("--quality", default=None, help="fid_curve.jsonl of the run scored as a binary model")
    args = ap.parse_args(argv)
    print(f"wrote {binarized_release(args.src, args.dst, metrics=args.metrics, quality=args.quality, progress=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
