"""The data of a training run: which dataset, its train and valid splits, per-epoch redraws, validation NLL."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..distributed import Dist
from ..errors import ZooError
from ..protocols import DataSpec
from ..util import is_positive_int
from .recipe import RecipeError

__all__ = ["TrainData", "load_data", "is_conditional", "validation_nll"]


@dataclass
class TrainData:
    """The run's images (integer levels) and labels (None for an unconditional model), and its batching."""

    ds: Any  # the zoo.data.Dataset
    data_spec: DataSpec
    train_x: torch.Tensor
    train_y: torch.Tensor | None
    valid_x: torch.Tensor | None  # None: no validation (no valid_split, or a model with neither log_prob nor a bound)
    valid_y: torch.Tensor | None
    per_rank_batch: int  # images per step in this process
    steps_per_epoch: int


def load_data(
    dataset: Any, spec: Any, model: Any, rec: Mapping[str, Any], limit: int | None, d: Dist, dev: torch.device
) -> TrainData:
    """The dataset (given, or the default for `spec`), checked against the model, with its splits loaded."""
    from ..data import get_dataset

    data_spec: DataSpec = model.data_spec
    ds = get_dataset(dataset if dataset is not None else _default_dataset(spec, rec, data_spec))
    if getattr(ds, "data_spec", data_spec) != data_spec:
        raise ZooError(f"dataset {ds.name!r} has images {ds.data_spec}; model {spec.name} takes {data_spec}")
    train_x, train_y = _load_split(ds, rec["train_split"], limit, data_spec)
    conditional = is_conditional(model)
    if conditional and train_y is None:
        raise ZooError(
            f"{spec.name} is class-conditional (num_classes={model.num_classes}) but dataset {ds.name!r} has no labels"
        )
    if not conditional:
        train_y = None  # labels go to class-conditional models only
    valid_x = valid_y = None
    scored = callable(getattr(model, "log_prob", None)) or callable(getattr(model, "log_prob_bound", None))
    if rec["valid_split"] and scored:
        valid_x, valid_y = _load_split(ds, rec["valid_split"], limit, data_spec)
        valid_y = valid_y if conditional else None
    if dev.type == "cuda":  # uint8 images are small (binarized MNIST: 39 MB): index them on the GPU
        train_x = train_x.to(dev)
        train_y = train_y.to(dev) if train_y is not None else None
    per_rank_batch = rec["batch_size"] // d.world
    steps_per_epoch = math.ceil(math.ceil(len(train_x) / d.world) / per_rank_batch)
    return TrainData(ds, data_spec, train_x, train_y, valid_x, valid_y, per_rank_batch, steps_per_epoch)


def _default_dataset(spec: Any, recipe: Mapping[str, Any], data_spec: DataSpec) -> str:
    from ..data import default_dataset

    return default_dataset(data_spec, [recipe["dataset"], *(w.dataset for w in spec.weights)])


def _load_split(
    ds: Any, split: str, limit: int | None, data_spec: DataSpec
) -> tuple[torch.Tensor, torch.Tensor | None]:
    splits = tuple(getattr(ds, "splits", ()) or ())
    if splits and split not in splits:
        raise ZooError(
            f"dataset {ds.name!r} has no split {split!r} (splits: {', '.join(splits)}); "
            "set train_split / valid_split in the recipe"
        )
    x, y = ds.load(split)
    x, y = torch.as_tensor(x), (torch.as_tensor(y) if y is not None else None)
    if limit is not None:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    data_spec.validate(x, name=f"{ds.name}/{split}")
    if len(x) == 0:
        raise ZooError(f"dataset {ds.name!r} split {split!r} is empty")
    return x, y


def redraw(ds: Any, rec: Mapping[str, Any], epoch: int, limit: int | None, data_spec: DataSpec) -> torch.Tensor:
    """Epoch `epoch`'s fresh draw of the train split (dynamic binarization); the labels do not change."""
    try:
        x, _ = ds.redraw(rec["train_split"], seed=rec["seed"], epoch=epoch)
    except NotImplementedError as e:
        raise RecipeError(f"dynamic_binarization: {e}") from None
    x = torch.as_tensor(x)[:limit] if limit is not None else torch.as_tensor(x)
    data_spec.validate(x, name=f"{ds.name}/{rec['train_split']} (redrawn)")
    return x


def is_conditional(model: Any) -> bool:
    """Whether the model takes class labels: the zoo's convention is a positive `num_classes`
    attribute and a keyword `y` on `logits`/`log_prob`/`loss`."""
    n = getattr(model, "num_classes", None)
    return is_positive_int(n)


def validation_nll(
    model: Any,
    images: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
    iw_samples: int = 1,
) -> float:
    """Exact mean NLL in nats per image over `images` (given `labels` for a class-conditional
    model), sharded over the processes: the harness's NLL loop (`zoo.eval.likelihood`). For a
    bounded model (a VAE), the negative bound with k = `iw_samples` (1: the ELBO; seed 0): an
    upper bound."""
    from ..eval.likelihood import log_prob_per_image

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lp = log_prob_per_image(
                model, images, batch_size=batch_size, device=device, labels=labels, iw_samples=iw_samples
            )
    finally:
        model.train(was_training)
    return float(-lp.mean())
