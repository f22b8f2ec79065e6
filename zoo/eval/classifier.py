"""The zoo's reference classifier: the feature space of `fid`, `precision` and `recall`.

A small ResNet built with timm (`timm.models.resnet.ResNet`, BasicBlock, one
block per stage, widths 32-64-128-256, `in_chans=1`; 1.2 M parameters), trained
on the train split of the dataset with its labels. Features are the 256
globally pooled activations before the classifier head.

The released weights live next to this module in
`weights/classifier-<dataset>/` (config.json, model.safetensors, README.md):
they ship inside the package, so `zoo eval --metrics fid` works offline on a
fresh install. Reproduce and check them with

    python -m zoo.eval.classifier train --dataset binarized-mnist
    python -m zoo.eval.classifier accuracy --dataset binarized-mnist

The input is the image's levels scaled to [-1, 1]: `x / (levels - 1) * 2 - 1`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..errors import WeightsError, ZooError
from ..nn import scale_input
from ..protocols import DataSpec
from ..util import atomic_write, sha256_file, write_atomic

__all__ = ["ReferenceClassifier", "load_reference", "weights_dir", "train", "accuracy", "DEFAULT_CONFIG"]

WEIGHTS_ROOT = Path(__file__).parent / "weights"

# constructor arguments of ReferenceClassifier (written to config.json)
DEFAULT_CONFIG: dict[str, Any] = {
    "in_chans": 1,
    "levels": 2,
    "num_classes": 10,
    "layers": [1, 1, 1, 1],  # BasicBlocks per stage
    "channels": [32, 64, 128, 256],  # stage widths; the last is the feature dimension
    "stem_width": 32,
}


class ReferenceClassifier(nn.Module):
    """A timm ResNet on integer levels: `forward(x) -> logits`, `features(x) -> (B, channels[-1])`."""

    def __init__(
        self,
        in_chans: int = 1,
        levels: int = 2,
        num_classes: int = 10,
        layers: Sequence[int] = (1, 1, 1, 1),
        channels: Sequence[int] = (16, 32, 64, 128),
        stem_width: int = 16,
    ):
        super().__init__()
        from timm.models.resnet import BasicBlock, ResNet

        self.levels = levels
        self.net = ResNet(
            block=cast(Any, BasicBlock),  # timm annotates `block` as an instance; it takes the class
            layers=tuple(layers),
            channels=tuple(channels),
            stem_width=stem_width,
            in_chans=in_chans,
            num_classes=num_classes,
        )

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return scale_input(x, self.levels, torch.float32)  # levels -> [-1, 1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate activations `(B, D)` of images of integer levels `(B, C, H, W)`."""
        return self.net.forward_head(self.net.forward_features(self._prep(x)), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._prep(x))  # (B, num_classes)


def weights_dir(dataset: str) -> Path:
    return WEIGHTS_ROOT / f"classifier-{dataset}"


def load_classifier(
    folder: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[ReferenceClassifier, dict[str, Any]]:
    """Build the classifier of `folder/config.json`, check the weights' sha256, load them strictly."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.is_file() or not w_path.is_file():
        raise WeightsError(
            f"{folder} does not hold a reference classifier (expected config.json and model.safetensors)"
        )
    cfg = json.loads(cfg_path.read_text())
    sha = sha256_file(w_path)
    if sha != cfg.get("sha256"):
        raise WeightsError(
            f"{w_path}: sha256 is {sha}, config.json expects {cfg.get('sha256')}; the file is corrupt or was replaced"
        )
    model = ReferenceClassifier(**cfg["config"])
    model.load_state_dict(load_file(w_path), strict=True)
    return model.to(device).eval(), cfg


class _Features(nn.Module):
    def __init__(self, model: ReferenceClassifier):
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def load_reference(dataset: str, *, data_spec: DataSpec | None = None, device: str | torch.device = "cpu") -> _Features:
    """The feature extractor of `dataset`'s reference classifier (images of levels -> `(B, D)`).

    Raises `NotApplicable` (so that fid, precision and recall report n/a) when
    the zoo has no classifier for the dataset.
    """
    from .harness import NotApplicable

    folder = weights_dir(dataset)
    if not folder.is_dir():
        known = (
            sorted(p.name.removeprefix("classifier-") for p in WEIGHTS_ROOT.glob("classifier-*"))
            if WEIGHTS_ROOT.is_dir()
            else []
        )
        raise NotApplicable(
            f"no reference classifier for dataset {dataset!r} (the zoo has: {', '.join(known) or 'none'}); "
            f"train one with `python -m zoo.eval.classifier train --dataset {dataset}`"
        )
    model, cfg = load_classifier(folder, device=device)
    if data_spec is not None and DataSpec.from_dict(cfg["data_spec"]) != data_spec:
        raise ZooError(
            f"the reference classifier in {folder} takes images of {DataSpec.from_dict(cfg['data_spec'])}, "
            f"the dataset has {data_spec}"
        )
    return _Features(model)


# -- training and checking ---------------------------------------------------------


def _shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by up to `max_shift` pixels (zero padding): the only augmentation."""
    b, _, h, w = x.shape
    p = max_shift
    padded = nn.functional.pad(x, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (b,), generator=g)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None]).view(b, 1, h, 1).expand(b, x.shape[1], h, w + 2 * p)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).view(b, 1, 1, w).expand(b, x.shape[1], h, w)
    return out.gather(3, cols)


@torch.no_grad()
def labelled(ds: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`ds.load(split)`, which must have labels: images `(N, C, H, W)` and labels `(N,)`."""
    x, y = ds.load(split)
    if y is None:
        raise ZooError(f"the {split} split of {ds.name!r} has no labels; the reference classifier needs them")
    return x, y


def accuracy(model: ReferenceClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        correct += int((model(x[i : i + batch_size].long()).argmax(1) == y[i : i + batch_size]).sum())
    return correct / x.shape[0]


def train(
    dataset: str = "binarized-mnist",
    *,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    out: str | Path | None = None,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the reference classifier on the train split, write config.json + model.safetensors to `out`."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from ..data import get_dataset

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ds = get_dataset(dataset)
    if not ds.num_classes:
        raise ZooError(f"dataset {dataset!r} has no labels; a reference classifier needs them")
    x, y = labelled(ds, "train")
    xv, yv = labelled(ds, "valid") if "valid" in ds.splits else (None, None)
    spec = ds.data_spec
    config = {**DEFAULT_CONFIG, "in_chans": spec.channels, "levels": spec.levels, "num_classes": ds.num_classes}
    model = ReferenceClassifier(**config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(x.shape[0] / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    log = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=g)
        bar = tqdm(
            range(0, x.shape[0], batch_size), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False
        )
        for i in bar:
            idx = perm[i : i + batch_size]
            xb = _shift(x[idx].float(), g)  # still levels, as floats
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        entry = {
            "epoch": epoch + 1,
            "loss": round(loss.item(), 4),
            "minutes": round((time.perf_counter() - t0) / 60, 2),
        }
        if xv is not None and yv is not None:
            entry["valid_accuracy"] = accuracy(model, xv, yv)
        log.append(entry)
        print(json.dumps(entry), file=sys.stderr)
    xt, yt = labelled(ds, "test")
    test_acc = accuracy(model, xt, yt)
    out = Path(out) if out is not None else weights_dir(dataset)
    out.mkdir(parents=True, exist_ok=True)
    w_path = out / "model.safetensors"
    with atomic_write(w_path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
    meta = {
        "architecture": "zoo.eval.classifier:ReferenceClassifier (timm.models.resnet.ResNet, BasicBlock)",
        "config": config,
        "data_spec": spec.to_dict(),
        "dataset": dataset,
        "dataset_checksums": {s: ds.checksum(s) for s in ("train", "test")},
        "feature_dim": config["channels"][-1],
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test_acc,
        "test_n": int(xt.shape[0]),
        "train": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": "AdamW, one-cycle",
            "weight_decay": 5e-4,
            "augmentation": "random shifts of up to 2 pixels",
            "seed": seed,
            "threads": threads,
            "minutes": round((time.perf_counter() - t0) / 60, 2),
            "torch": torch.__version__,
            "log": log,
        },
        "sha256": sha256_file(w_path),
        "reproduce": f"python -m zoo.eval.classifier train --dataset {dataset} --epochs {epochs} --seed {seed}",
        "check": f"python -m zoo.eval.classifier accuracy --dataset {dataset}",
    }
    write_atomic(out / "config.json", json.dumps(meta, indent=2) + "\n")
    write_atomic(out / "README.md", card(meta))
    return meta


def card(meta: dict[str, Any]) -> str:
    """The model card (README.md) of a reference classifier, from its config.json."""
    acc = meta["test_accuracy"]
    t = meta["train"]
    c = meta["config"]
    log = "\n".join(
        f"| {e['epoch']} | {e['loss']} | {100 * e.get('valid_accuracy', float('nan')):.2f}% | {e['minutes']} |"
        for e in t["log"]
    )
    return f"""---
license: apache-2.0
library_name: timm
tags: [zoo, image-classification, reference-classifier, fid]
datasets: [{meta["dataset"]}]
model-index:
- name: classifier-{meta["dataset"]}
  results:
  - task: {{type: image-classification}}
    dataset: {{name: {meta["dataset"]}, type: {meta["dataset"]}, split: test}}
    metrics:
    - {{type: accuracy, value: {acc:.4f}}}
---

# Reference classifier for `{meta["dataset"]}`

The feature space of the zoo's `fid`, `precision` and `recall` metrics on
`{meta["dataset"]}` (see docs/eval.md). Features are the {meta["feature_dim"]}
globally pooled activations before the classifier head.

**Test accuracy: {100 * acc:.2f}%** ({round(acc * meta["test_n"])} of the {meta["test_n"]} test images).

| | |
| --- | --- |
| architecture | `timm.models.resnet.ResNet`, BasicBlock, layers {c["layers"]}, widths {c["channels"]}, stem {c["stem_width"]}, `in_chans={c["in_chans"]}` |
| parameters | {meta["parameters"]:,} |
| input | integer levels scaled to [-1, 1]: `x / (levels - 1) * 2 - 1`, levels = {c["levels"]} |
| data | the `train` split of `{meta["dataset"]}` with its labels (sha256 `{meta["dataset_checksums"]["train"][:16]}…`) |
| training | {t["epochs"]} epochs, batch {t["batch_size"]}, {t["optimizer"]} (max lr {t["lr"]}, weight decay {t["weight_decay"]}), {t["augmentation"]}, seed {t["seed"]} |
| hardware | CPU, {t["threads"]} thread, {t["minutes"]} minutes, torch {t["torch"]} |
| weights | `model.safetensors`, sha256 `{meta["sha256"]}` |

| epoch | last batch loss | valid accuracy | minutes |
| --- | --- | --- | --- |
{log}

## Reproduce

```
zoo data prepare {meta["dataset"]}
{meta["reproduce"]} --out DIR
{meta["check"]}
```

The second command retrains it with the same recipe (the exact weights depend on
the torch build and thread count); the third recomputes the test accuracy above
from the shipped weights.

## Limitations

Trained on the `train` split of `{meta["dataset"]}` only: its features measure
distance between images like those, and FIDs in this space are comparable only
within the zoo, not with Inception-based FIDs.
"""


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zoo.eval.classifier", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the reference classifier and write its weights")
    t.add_argument("--dataset", default="binarized-mnist")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out", default=None, help="folder (default: the bundled weights folder of the dataset)")
    a = sub.add_parser("accuracy", help="accuracy of the released classifier on a split")
    a.add_argument("--dataset", default="binarized-mnist")
    a.add_argument("--split", default="test")
    a.add_argument("--dir", default=None, help="classifier folder (default: the bundled one)")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        meta = train(
            args.dataset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            out=args.out,
            threads=args.threads,
        )
        print(f"test accuracy {meta['test_accuracy']:.4f}; wrote {args.out or weights_dir(args.dataset)}")
        return 0
    from ..data import get_dataset

    torch.set_num_threads(1)
    model, cfg = load_classifier(args.dir or weights_dir(args.dataset))
    x, y = labelled(get_dataset(args.dataset), args.split)
    acc = accuracy(model, x, y)
    print(
        f"{args.dataset} {args.split} accuracy {acc:.4f} ({round(acc * x.shape[0])}/{x.shape[0]}); "
        f"card says test {cfg['test_accuracy']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
