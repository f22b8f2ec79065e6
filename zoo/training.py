"""Training: recipes, the loop, EMA, checkpoints, DistributedDataParallel.

    import zoo
    result = zoo.train("pixelcnn", dataset="binarized-mnist", recipe="default", out="runs/pixelcnn")
    result.model          # the released weights (best on validation, EMA), eval mode
    result.release_dir    # config.json, model.safetensors, training_curve.png, train_log.jsonl, ...

The same code runs on one CPU, on a GPU (`device="cuda"`) and under `torchrun`
(one process per device; gloo on CPU, NCCL on GPU).

Pieces, in the order the file defines them:

- the recipe schema (`RECIPE_SCHEMA`, `resolve_recipe`): every key a recipe may
  hold, its default and what it means; unknown keys are an error. Plugins put
  named recipes on `ModelSpec.recipes` ("default" first).
- a state codec: nested state dicts (optimizers, schedulers, a family's own
  trainer) are split into tensors (safetensors) and a JSON skeleton, so
  checkpoints never pickle arbitrary objects.
- `MaximumLikelihoodTrainer`: the default trainer (minimise `model.loss(x)`, the
  mean negative log-likelihood in nats per image). A family may bring its own
  trainer (`ModelSpec.trainer = "module:Class"`) with the same interface:
  `__init__(model, recipe, device)`, `step(x, y=None) -> dict[str, float]`,
  `state_dict()`, `load_state_dict(d)`, `fixed_noise_samples()`.
- `train`: the loop. Seeded; validation NLL every epoch with the EMA weights;
  a checkpoint every epoch and on Ctrl-C / SIGTERM, written atomically; exact
  resume; best-on-validation selection; a release folder at the end.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from . import __version__
from .errors import UnknownNameError, ZooError
from .protocols import DataSpec
from .registry import create, get_spec, import_builder, parse_name

__all__ = [
    "RECIPE_SCHEMA", "RecipeError", "resolve_recipe", "recipe_keys", "split_overrides",
    "MaximumLikelihoodTrainer", "build_optimizer", "build_scheduler", "wrap_ddp",
    "shard_indices", "TrainEvent", "TrainResult", "train",
    "save_checkpoint", "load_checkpoint", "plot_training_curves", "save_release_weights",
]

CHECKPOINT = "checkpoint.safetensors"  # the last state, for --resume
BEST = "best.safetensors"  # the weights that scored best on validation (EMA when enabled)
LOG = "train_log.jsonl"
RELEASE = "release"  # the folder that becomes a Hub repo / card


# -- recipes ----------------------------------------------------------------------------------------
# key: (default, meaning). A recipe is a dict of some of these keys; the rest take their defaults.
RECIPE_SCHEMA: dict[str, tuple[Any, str]] = {
    "epochs": (10, "passes over the training split"),
    "batch_size": (64, "images per optimizer step, summed over all processes (divisible by the world size)"),
    "eval_batch_size": (256, "images per batch for the validation NLL"),
    "optimizer": ("adam", "adam | adamw | sgd | rmsprop"),
    "lr": (1e-3, "peak learning rate"),
    "betas": ([0.9, 0.999], "adam/adamw betas"),
    "momentum": (0.9, "sgd/rmsprop momentum"),
    "eps": (1e-8, "adam/adamw/rmsprop epsilon"),
    "weight_decay": (0.0, "L2 (sgd, adam, rmsprop) or decoupled (adamw) weight decay"),
    "lr_schedule": ("constant", "learning-rate schedule after warmup: constant | cosine | exponential"),
    "warmup_steps": (0, "linear warmup from 0 to lr over this many steps"),
    "min_lr": (0.0, "cosine: the learning rate at the last step"),
    "lr_gamma": (0.95, "exponential: lr multiplier per epoch"),
    "grad_clip": (0.0, "clip the global gradient norm to this value; 0 = off"),
    "precision": ("fp32", "fp32 | bf16: bf16 autocast for the training forward pass (validation and release stay fp32)"),
    "ema_decay": (0.999, "timm ModelEmaV3 decay of the weight average; 0 = no EMA"),
    "ema_warmup": (True, "ramp the EMA decay up as 1 - (1 + step)^-3/4 (capped at ema_decay)"),
    "seed": (0, "seeds the model init, the data order and every random draw"),
    "train_split": ("train", "the dataset split to train on"),
    "dynamic_binarization": (False, "a fresh draw of the train split every epoch (Dataset.redraw), e.g. binarized MNIST"),
    "valid_split": ("valid", "the split for validation NLL and best-epoch selection; '' = none"),
    "log_every": (50, "write a train record to train_log.jsonl every this many steps"),
    "dataset": ("", "the dataset when none is given; '' = the one matching the model's data spec"),
    "config": ({}, "constructor overrides for the model (e.g. a smaller release config)"),
}
LOOP_KEYS = ("steps_per_epoch", "total_steps")  # added by the loop to the recipe a trainer receives
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential")
PRECISIONS = ("fp32", "bf16")


class RecipeError(ZooError, ValueError):
    """A recipe has an unknown key or a value of the wrong type or range."""


def recipe_keys(extra: Mapping[str, Any] | None = None) -> list[str]:
    """Every key a recipe may hold: the schema plus a trainer's own `recipe_defaults`."""
    return sorted(set(RECIPE_SCHEMA) | set(extra or {}))


def _check_type(key: str, value: Any, default: Any, where: str) -> Any:
    def bad(expected: str) -> RecipeError:
        return RecipeError(f"{where}: {key!r} must be {expected}, got {value!r} ({type(value).__name__})")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise bad(f"a list of {len(default)} numbers")
        return [_check_type(key, v, d, where) for v, d in zip(value, default)]
    if isinstance(default, dict):
        if not isinstance(value, Mapping):
            raise bad("a mapping")
        return dict(value)
    return value


def _check_ranges(r: dict[str, Any], where: str) -> None:
    def need(ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise RecipeError(f"{where}: {key!r} must be {expected}, got {r[key]!r}")

    need(r["epochs"] >= 1, "epochs", ">= 1")
    need(r["batch_size"] >= 1, "batch_size", ">= 1")
    need(r["eval_batch_size"] >= 1, "eval_batch_size", ">= 1")
    need(r["optimizer"] in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}")
    need(r["lr_schedule"] in SCHEDULES, "lr_schedule", f"one of {', '.join(SCHEDULES)}")
    need(r["lr"] > 0, "lr", "> 0")
    need(all(0 <= b < 1 for b in r["betas"]), "betas", "two numbers in [0, 1)")
    need(0 <= r["momentum"] < 1, "momentum", "in [0, 1)")
    need(r["eps"] > 0, "eps", "> 0")
    need(r["weight_decay"] >= 0, "weight_decay", ">= 0")
    need(r["warmup_steps"] >= 0, "warmup_steps", ">= 0")
    need(0 <= r["min_lr"] <= r["lr"], "min_lr", f"in [0, lr={r['lr']}]")
    need(0 < r["lr_gamma"] <= 1, "lr_gamma", "in (0, 1]")
    need(r["grad_clip"] >= 0, "grad_clip", ">= 0 (0 = off)")
    need(r["precision"] in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}")
    need(0 <= r["ema_decay"] < 1, "ema_decay", "in [0, 1) (0 = no EMA)")
    need(r["log_every"] >= 1, "log_every", ">= 1")
    need(bool(r["train_split"]), "train_split", "a split name")


def resolve_recipe(
    spec: Any,
    recipe: str | Mapping[str, Any] = "default",
    overrides: Mapping[str, Any] | None = None,
    *,
    extra_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full recipe: schema defaults, then the named (or given) recipe, then `overrides`.

    `spec` is a `ModelSpec` (its `recipes` are looked up by name; a spec without
    recipes has an implicit empty "default"). `extra_defaults` are the keys a
    family's trainer adds (its class attribute `recipe_defaults`). Unknown keys,
    wrong types and out-of-range values raise `RecipeError`.
    """
    extra = dict(extra_defaults or {})
    clash = set(extra) & set(RECIPE_SCHEMA)
    if clash:
        raise RecipeError(f"a trainer's recipe_defaults may not redefine schema keys: {sorted(clash)}")
    defaults = {k: d for k, (d, _) in RECIPE_SCHEMA.items()} | extra
    if isinstance(recipe, str):
        recipes = dict(getattr(spec, "recipes", {}) or {})
        if not recipes and recipe == "default":
            chosen: Mapping[str, Any] = {}
        elif recipe not in recipes:
            names = list(recipes) or ["default"]
            close = difflib.get_close_matches(recipe, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(f"{spec.name} has no recipe {recipe!r}{hint} (recipes: {', '.join(names)})")
        else:
            chosen = recipes[recipe]
        where = f"recipe {spec.name}:{recipe}"
    elif isinstance(recipe, Mapping):
        chosen, where = recipe, f"recipe for {getattr(spec, 'name', '?')}"
    else:
        raise RecipeError(f"a recipe is a name or a mapping, got {type(recipe).__name__}")
    out = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in defaults.items()}
    for source, items in ((where, chosen), ("override", overrides or {})):
        for key, value in items.items():
            if key in LOOP_KEYS:
                raise RecipeError(f"{source}: {key!r} is computed by the training loop and cannot be set")
            if key not in defaults:
                close = difflib.get_close_matches(key, list(defaults), n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise RecipeError(f"{source}: unknown recipe key {key!r}{hint} (known: {', '.join(sorted(defaults))})")
            out[key] = _check_type(key, value, defaults[key], source)
    _check_ranges(out, where)
    return out


def split_overrides(name: str, pairs: Mapping[str, Any], *, recipe_extra: Mapping[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set` pairs into (recipe overrides, model config overrides).

    `recipe.KEY=V` and `model.KEY=V` are explicit; a bare `KEY` is a recipe key
    when the schema (or the trainer) defines it, otherwise a model option.
    """
    keys = set(recipe_keys(recipe_extra))
    rec: dict[str, Any] = {}
    cfg: dict[str, Any] = {}
    for key, value in pairs.items():
        if key.startswith("recipe."):
            rec[key[len("recipe."):]] = value
        elif key.startswith("model."):
            cfg[key[len("model."):]] = value
        elif key in keys:
            rec[key] = value
        else:
            cfg[key] = value
    return rec, cfg


# -- state codec: tensors to safetensors, the rest to JSON ------------------------------------------
_MARKERS = ("__tensor__", "__tuple__", "__items__")


def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able skeleton of `obj`; its tensors go into `tensors` under keys starting with `prefix`."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        while key in tensors:
            key += "'"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: flatten_state(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            if not (k is None or isinstance(k, (str, int, float, bool))):
                raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__} at {prefix}")
            items.append([k, flatten_state(v, f"{prefix}/{i}", tensors)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"cannot checkpoint a {type(obj).__name__} at {prefix!r}: state dicts may hold tensors, numbers, "
        "strings, None, lists, tuples and dicts"
    )


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of `flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__items__"}:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def _atomic_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """Write tensors and JSON `meta` into one safetensors file, atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp,
                  metadata={"zoo_checkpoint": json.dumps(meta, sort_keys=True)})
        _atomic_replace(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by `save_checkpoint`: (tensors, meta)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_json = (f.metadata() or {}).get("zoo_checkpoint")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ZooError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if meta_json is None:
        raise ZooError(f"{path} is a safetensors file but not a zoo training checkpoint (no 'zoo_checkpoint' metadata)")
    return tensors, json.loads(meta_json)


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


# -- optimisation ---------------------------------------------------------------------------------------
def build_optimizer(params: Any, recipe: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The recipe's optimizer over `params`."""
    name, lr, wd = recipe["optimizer"], recipe["lr"], recipe["weight_decay"]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(recipe["betas"]), eps=recipe["eps"], weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(recipe["betas"]), eps=recipe["eps"], weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe["momentum"], weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=recipe["momentum"], eps=recipe["eps"], weight_decay=wd)
    raise RecipeError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def lr_factor(step: int, recipe: Mapping[str, Any]) -> float:
    """The learning rate at optimizer step `step` (0-based) as a fraction of `recipe["lr"]`."""
    warmup = recipe["warmup_steps"]
    if warmup and step < warmup:
        return (step + 1) / warmup
    kind = recipe["lr_schedule"]
    if kind == "constant":
        return 1.0
    if kind == "exponential":
        return recipe["lr_gamma"] ** (step / max(1, recipe.get("steps_per_epoch", 1)))
    total = recipe.get("total_steps")
    if not total:
        raise RecipeError("the cosine schedule needs total_steps (set by the training loop)")
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = recipe["min_lr"] / recipe["lr"]
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Mapping[str, Any]) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following `lr_factor`; its state dict is plain numbers (checkpoint-safe)."""
    frozen = dict(recipe)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, frozen))


# -- distributed ------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    """Join the process group torchrun set up through the environment (no-op for one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_available():
        raise ZooError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    from datetime import timedelta

    backend = "nccl" if device_kind == "cuda" else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_kind == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, timeout=timedelta(minutes=int(os.environ.get("ZOO_DIST_TIMEOUT_MIN", "30"))))
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank, initialized_here=True)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` in DistributedDataParallel when a process group is up, else `module` itself.

    A family's trainer that sets `supports_distributed = True` calls this on
    whatever it runs forward/backward through.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def shard_indices(n: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> torch.Tensor:
    """This process's image indices for `epoch`, as torch's DistributedSampler picks them.

    A permutation drawn from a generator seeded with `seed + epoch`, padded by
    wrapping around to a multiple of `world`, then every `world`-th index from
    `rank`. Consecutive slices of `batch_size // world` therefore form, across
    ranks, exactly the batches a single process would take.
    """
    if n < world:
        raise ZooError(f"cannot shard {n} images over {world} processes")
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    total = math.ceil(n / world) * world
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank:total:world]


def _all_reduce_(t: torch.Tensor, d: _Dist, op: str = "sum") -> torch.Tensor:
    if d.on:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t


def _barrier(d: _Dist) -> None:
    if d.on:
        import torch.distributed as dist

        dist.barrier()


# -- the default trainer ----------------------------------------------------------------------------------
class _MeanNLL(nn.Module):
    """Runs `model.loss` through `forward`, so DistributedDataParallel sees it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.loss(x) if y is None else self.model.loss(x, y=y)


class MaximumLikelihoodTrainer:
    """Maximum likelihood: one optimizer step on `model.loss(x)`, the mean NLL in nats per image.

    With `precision: "bf16"` the forward pass runs under bf16 autocast (the
    weights, gradients and optimizer stay fp32). Logs `loss` (nats/image), `bpd` (bits/dim) and `lr`; with `grad_clip` also
    `grad_norm` (before clipping). Under torchrun the loss runs through
    DistributedDataParallel, which averages gradients over the processes; the
    logged loss is this process's.
    """

    supports_distributed = True
    recipe_defaults: Mapping[str, Any] = {}

    def __init__(self, model: nn.Module, recipe: Mapping[str, Any], device: torch.device):
        if not callable(getattr(model, "loss", None)) or not hasattr(model, "data_spec"):
            raise ZooError(
                f"{type(model).__name__} has no loss(x); the default trainer needs a likelihood model "
                "(a family without one registers its own ModelSpec.trainer)"
            )
        self.model, self.recipe, self.device = model, dict(recipe), device
        self.dims = model.data_spec.dims
        self.forward = wrap_ddp(_MeanNLL(model), device)
        self.optimizer = build_optimizer(model.parameters(), recipe)
        self.scheduler = build_scheduler(self.optimizer, self.recipe)

    def step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.recipe["precision"] == "bf16"):
            loss = self.forward(x, y).float()  # scalar: mean nats per image of this batch (of x given y, when labelled)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        out: dict[str, float] = {}
        if self.recipe["grad_clip"] > 0:
            out["grad_norm"] = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe["grad_clip"]))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        nats = float(loss.detach())
        return {"loss": nats, "bpd": nats / (self.dims * math.log(2)), "lr": lr, **out}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(d["optimizer"])
        self.scheduler.load_state_dict(d["scheduler"])

    def fixed_noise_samples(self) -> torch.Tensor | None:
        """None: sampling an autoregressive model every epoch is slow; the release has samples.png."""
        return None


def _trainer_class(spec: Any) -> type:
    if not spec.trainer:
        return MaximumLikelihoodTrainer
    cls = import_builder(spec.trainer)
    missing = [m for m in ("step", "state_dict", "load_state_dict", "fixed_noise_samples") if not callable(getattr(cls, m, None))]
    if missing:
        raise ZooError(f"{spec.name}: trainer {spec.trainer} lacks {', '.join(missing)} (see zoo.train's trainer interface)")
    return cls


# -- data ----------------------------------------------------------------------------------------------
def _get_dataset(dataset: Any) -> Any:
    from .data import get_dataset

    return get_dataset(dataset)


def _default_dataset(spec: Any, recipe: Mapping[str, Any], data_spec: DataSpec) -> str:
    if recipe["dataset"]:
        return recipe["dataset"]
    for w in spec.weights:
        if w.dataset:
            return w.dataset
    from .plugins import get_registry

    matching = sorted(n for n, d in get_registry().datasets.items() if getattr(d, "data_spec", None) == data_spec)
    if len(matching) == 1:
        return matching[0]
    raise ZooError(
        f"which dataset? pass --dataset; registered datasets with images {data_spec}: {', '.join(matching) or 'none'}"
    )


def _load_split(ds: Any, split: str, limit: int | None, data_spec: DataSpec) -> tuple[torch.Tensor, torch.Tensor | None]:
    splits = tuple(getattr(ds, "splits", ()) or ())
    if splits and split not in splits:
        raise ZooError(f"dataset {ds.name!r} has no split {split!r} (splits: {', '.join(splits)}); "
                       "set train_split / valid_split in the recipe")
    x, y = ds.load(split)
    x, y = torch.as_tensor(x), (torch.as_tensor(y) if y is not None else None)
    if limit is not None:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    data_spec.validate(x, name=f"{ds.name}/{split}")
    if len(x) == 0:
        raise ZooError(f"dataset {ds.name!r} split {split!r} is empty")
    return x, y


def _redraw(ds: Any, rec: Mapping[str, Any], epoch: int, limit: int | None, data_spec: DataSpec) -> torch.Tensor:
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
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


@torch.no_grad()
def validation_nll(model: nn.Module, images: torch.Tensor, *, batch_size: int, device: torch.device,
                   d: _Dist | None = None, labels: torch.Tensor | None = None) -> float:
    """Exact mean NLL in nats per image over `images` (given `labels` for a class-conditional
    model), sharded over the processes without padding."""
    d = d or _Dist()
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # [sum of nll, count]
    idx = torch.arange(d.rank, len(images), d.world)
    for i in range(0, len(idx), batch_size):
        x = images[idx[i:i + batch_size]].to(device).long()
        if labels is None:
            lp = model.log_prob(x)
        else:
            lp = model.log_prob(x, y=labels[idx[i:i + batch_size]].to(device))
        total[0] -= lp.double().sum()
        total[1] += len(x)
    _all_reduce_(total, d)
    model.train(was_training)
    return float(total[0] / total[1])


# -- the loop ----------------------------------------------------------------------------------------------
@dataclass
class TrainEvent:
    """What a callback sees: after every step (`kind="step"`) and after each epoch's checkpoint (`"epoch"`)."""

    kind: str
    epoch: int  # 0-based index of the epoch in progress ("step") or just finished ("epoch")
    step: int  # optimizer steps done in the whole run
    step_in_epoch: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What `train` returns (on every process)."""

    out: Path
    model: nn.Module  # the released weights: best on validation (EMA when enabled), eval mode
    last: nn.Module  # the raw weights after the last step
    ema: nn.Module | None  # the EMA weights after the last step, or None
    epochs: int
    steps: int
    best_epoch: int | None  # 1-based; None without validation
    best_valid_nll: float | None  # nats/image
    release_dir: Path | None  # None on ranks other than 0
    eval: dict[str, Any] | None = None
    wall_time_s: float = 0.0


@dataclass
class _State:
    epoch: int = 0  # completed epochs, or the epoch in progress when step_in_epoch > 0
    step_in_epoch: int = 0
    step: int = 0
    best_nll: float | None = None
    best_epoch: int | None = None
    elapsed: float = 0.0
    # the run's stages: the epochs it was started with, then each --resume that changed them
    # ({"epochs": E, "from_epoch": k, "from_step": s, "hardware": ...}); the card turns them into commands
    stages: list[dict[str, Any]] = field(default_factory=list)


class _Signals:
    """First Ctrl-C or SIGTERM: finish the step, checkpoint, stop. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> "_Signals":
        if threading.current_thread() is not threading.main_thread():
            return self

        def handler(signum: int, frame: Any) -> None:
            if self.received is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.received = signum

        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.getsignal(s)
            signal.signal(s, handler)
        return self

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()


def _resolve_device(device: str | torch.device | None, d_local_rank: int) -> torch.device:
    kind = str(device) if device is not None else "auto"
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(kind)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ZooError(f"--device {kind}: no CUDA device is available here; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", d_local_rank if int(os.environ.get("WORLD_SIZE", "1")) > 1 else torch.cuda.current_device())
    elif dev.type != "cpu":
        raise ZooError(f"--device must be cpu or cuda[:N], got {kind!r}")
    return dev


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def _set_rng_state(states: Mapping[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _gather_rng(d: _Dist, device: torch.device) -> list[dict[str, torch.Tensor]]:
    mine = _rng_state(device)
    if not d.on:
        return [mine]
    import torch.distributed as dist

    everyone: list[Any] = [None] * d.world
    dist.all_gather_object(everyone, {k: v.tolist() for k, v in mine.items()})
    return [{k: torch.tensor(v, dtype=torch.uint8) for k, v in s.items()} for s in everyone]


def _state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def _write_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_log(path: Path, step: int) -> None:
    """Keep only the records up to the checkpoint's step (a crash may have logged past it)."""
    records = [r for r in _read_jsonl(path) if r.get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


def train(
    name: str,
    *,
    dataset: Any = None,
    recipe: str | Mapping[str, Any] = "default",
    epochs: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    limit: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    tiny: bool = False,
    seed: int | None = None,
    progress: bool = True,
    evaluate: bool = True,
    samples: int = 16,
    callbacks: Sequence[Callable[[TrainEvent], None]] = (),
) -> TrainResult:
    """Train the registered model `name` and write a release folder.

    - `dataset`: a registered dataset name or a `zoo.data.Dataset`; default: the
      recipe's `dataset`, else the dataset of the model's released weights, else
      the one registered dataset whose data spec matches the model's.
    - `recipe`: a recipe name from `ModelSpec.recipes` or a dict; `overrides`
      (recipe keys), `epochs` and `seed` replace its entries. See `RECIPE_SCHEMA`.
    - `config`: constructor overrides (after the recipe's `model` and, with
      `tiny`, the spec's `test_config`).
    - `out`: the run folder (default `runs/NAME-DATASET`): `checkpoint.safetensors`,
      `best.safetensors`, `train_log.jsonl`, `release/`. A folder holding a
      checkpoint is only continued with `resume=True`.
    - `limit`: use only the first `limit` images of the train and valid splits.
    - `device`: "cpu", "cuda", "cuda:N"; default CUDA when available.
    - `evaluate`: run the shared harness (`zoo.evaluate`) on the test split at the end.
    - `samples`: images in the release's samples.png (0 = none).
    - `callbacks`: called with a `TrainEvent` after each step and epoch; raising
      `KeyboardInterrupt` there stops training like Ctrl-C (checkpoint first).

    Ctrl-C or SIGTERM: the step in progress finishes, a checkpoint is written and
    `KeyboardInterrupt` is raised. The validation NLL, best-epoch selection and
    the released weights use the EMA of the weights when `ema_decay > 0`.
    """
    t_start = time.perf_counter()
    parsed = parse_name(name)
    if parsed.kind != "registry":
        raise ValueError(f"zoo.train trains a registered architecture, got {name!r}")
    spec = get_spec(parsed.arch)
    trainer_cls = _trainer_class(spec)
    extra = dict(getattr(trainer_cls, "recipe_defaults", {}) or {})
    ov = dict(overrides or {})
    if epochs is not None:
        ov["epochs"] = epochs
    if seed is not None:
        ov["seed"] = seed
    rec = resolve_recipe(spec, recipe, ov, extra_defaults=extra)
    recipe_name = recipe if isinstance(recipe, str) else "custom"
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")

    dev = _resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    dist_env = _init_distributed(dev.type)
    try:
        if dist_env.on and trainer_cls is not MaximumLikelihoodTrainer and not getattr(trainer_cls, "supports_distributed", False):
            raise ZooError(f"{spec.trainer} does not declare supports_distributed = True; run it in one process")
        if rec["batch_size"] % dist_env.world:
            raise RecipeError(f"batch_size {rec['batch_size']} is the global batch; it must divide by the "
                              f"{dist_env.world} processes")

        # the model: same seed on every process, so every rank starts from the same weights
        cfg = {**rec["config"], **(spec.test_config if tiny else {}), **dict(config or {})}
        torch.manual_seed(rec["seed"])
        model = create(name, **cfg).to(dev)
        data_spec: DataSpec = model.data_spec

        # the data
        ds = _get_dataset(dataset if dataset is not None else _default_dataset(spec, rec, data_spec))
        if getattr(ds, "data_spec", data_spec) != data_spec:
            raise ZooError(f"dataset {ds.name!r} has images {ds.data_spec}; model {spec.name} takes {data_spec}")
        train_x, train_y = _load_split(ds, rec["train_split"], limit, data_spec)
        conditional = is_conditional(model)
        if conditional and train_y is None:
            raise ZooError(f"{spec.name} is class-conditional (num_classes={model.num_classes}) but dataset "
                           f"{ds.name!r} has no labels")
        if not conditional:
            train_y = None  # labels go to class-conditional models only
        valid_x = valid_y = None
        likelihood = callable(getattr(model, "log_prob", None))
        if rec["valid_split"] and likelihood:
            valid_x, valid_y = _load_split(ds, rec["valid_split"], limit, data_spec)
            valid_y = valid_y if conditional else None
        if dev.type == "cuda":  # uint8 images are small (binarized MNIST: 39 MB): index them on the GPU
            train_x = train_x.to(dev)
            train_y = train_y.to(dev) if train_y is not None else None
        per_rank_batch = rec["batch_size"] // dist_env.world
        per_rank_images = math.ceil(len(train_x) / dist_env.world)
        steps_per_epoch = math.ceil(per_rank_images / per_rank_batch)
        run_recipe = {**rec, "steps_per_epoch": steps_per_epoch, "total_steps": steps_per_epoch * rec["epochs"]}

        trainer = trainer_cls(model, run_recipe, dev)
        ema = None
        if rec["ema_decay"] > 0:
            from timm.utils import ModelEmaV3

            ema = ModelEmaV3(model, decay=rec["ema_decay"], use_warmup=rec["ema_warmup"], warmup_power=3 / 4)
        torch.manual_seed(rec["seed"] + dist_env.rank)  # the training draws (dropout, noise) of this process

        out_dir = Path(out) if out is not None else Path("runs") / f"{spec.name}-{ds.name}"
        ckpt_path, log_path = out_dir / CHECKPOINT, out_dir / LOG
        identity = {
            "model": spec.name, "config": dict(model.zoo_config), "dataset": ds.name, "limit": limit,
            "world_size": dist_env.world, "trainer": spec.trainer or "zoo.training:MaximumLikelihoodTrainer",
            "recipe": {k: v for k, v in rec.items() if k != "epochs"},
        }
        try:
            identity["dataset_checksum"] = ds.checksum(rec["train_split"])
        except (NotImplementedError, AttributeError):  # a dataset object without checksums (ad-hoc data)
            identity["dataset_checksum"] = None
        st = _State()
        if ckpt_path.is_file() and not resume:
            raise ZooError(f"{out_dir} already holds a training checkpoint; pass --resume to continue it "
                           "or choose another --out")
        if resume:
            if not ckpt_path.is_file():
                raise ZooError(f"--resume: no checkpoint at {ckpt_path}")
            st = _restore(ckpt_path, identity, rec, model, ema, trainer, dist_env, dev)
        if not st.stages or st.stages[-1]["epochs"] != rec["epochs"]:
            st.stages.append({"epochs": rec["epochs"], "from_epoch": st.epoch, "from_step": st.step,
                              "hardware": _hardware(dev, dist_env.world)})
        if dist_env.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            if resume:
                _truncate_log(log_path, st.step)
            else:
                log_path.unlink(missing_ok=True)
        _barrier(dist_env)

        def checkpoint() -> None:
            rngs = _gather_rng(dist_env, dev)
            if dist_env.main:
                tensors: dict[str, torch.Tensor] = {}
                tensors.update({f"model/{k}": v for k, v in _state_dict_cpu(model).items()})
                if ema is not None:
                    tensors.update({f"ema/{k}": v for k, v in _state_dict_cpu(ema.module).items()})
                for r, states in enumerate(rngs):
                    tensors.update({f"rng/{r}/{k}": v for k, v in states.items()})
                skeleton = flatten_state(trainer.state_dict(), "trainer", tensors)
                meta = {
                    "format": 1, "zoo_version": __version__, "identity": identity, "epochs": rec["epochs"],
                    "epoch": st.epoch, "step_in_epoch": st.step_in_epoch, "step": st.step,
                    "best_nll": st.best_nll, "best_epoch": st.best_epoch,
                    "elapsed": st.elapsed + (time.perf_counter() - t_run), "trainer_state": skeleton,
                    "recipe_name": recipe_name, "stages": st.stages,
                }
                save_checkpoint(ckpt_path, tensors, meta)
            _barrier(dist_env)

        signals = _Signals().install()
        in_step = False
        t_run = time.perf_counter()
        eval_model = ema.module if ema is not None else model
        window: dict[str, list[float]] = {}
        t_window, n_window = time.perf_counter(), 0
        try:
            for epoch in range(st.epoch, rec["epochs"]):
                if rec["dynamic_binarization"]:
                    train_x = _redraw(ds, rec, epoch, limit, data_spec).to(train_x.device)
                order = shard_indices(len(train_x), seed=rec["seed"], epoch=epoch, rank=dist_env.rank,
                                      world=dist_env.world).to(train_x.device)
                bar = _progress(total=steps_per_epoch, initial=st.step_in_epoch, desc=f"epoch {epoch + 1}/{rec['epochs']}",
                                disable=not (progress and dist_env.main))
                try:
                    for k in range(st.step_in_epoch, steps_per_epoch):
                        idx = order[k * per_rank_batch:(k + 1) * per_rank_batch]
                        x = train_x[idx].to(dev, non_blocking=True).long()
                        y = train_y[idx].to(dev, non_blocking=True) if train_y is not None else None
                        in_step = True
                        metrics = trainer.step(x, y)
                        if ema is not None:
                            ema.update(model, step=st.step + 1)
                        st.step, st.step_in_epoch = st.step + 1, k + 1
                        in_step = False
                        for key, v in metrics.items():
                            window.setdefault(key, []).append(float(v))
                        n_window += len(x) * dist_env.world
                        bar.update(1)
                        bar.set_postfix({key: f"{v:.4g}" for key, v in metrics.items() if key in ("loss", "bpd")} or
                                        {key: f"{v:.4g}" for key, v in list(metrics.items())[:3]}, refresh=False)
                        if st.step % rec["log_every"] == 0 or st.step_in_epoch == steps_per_epoch:
                            if dist_env.main:  # the mean of each metric since the last record
                                dt = time.perf_counter() - t_window
                                _write_jsonl(log_path, {"kind": "train", "epoch": epoch + 1, "step": st.step,
                                                        **{key: sum(v) / len(v) for key, v in window.items()},
                                                        "images_per_s": n_window / dt if dt > 0 else None})
                            window, t_window, n_window = {}, time.perf_counter(), 0
                        for cb in callbacks:
                            cb(TrainEvent("step", epoch, st.step, st.step_in_epoch, dict(metrics)))
                        flag = torch.tensor([1.0 if signals.received is not None else 0.0], device=dev)
                        if float(_all_reduce_(flag, dist_env, "max")) > 0:
                            raise KeyboardInterrupt
                finally:
                    bar.close()

                # end of epoch: validate (EMA weights), select, checkpoint
                record: dict[str, Any] = {"kind": "valid", "epoch": epoch + 1, "step": st.step, "ema": ema is not None}
                if valid_x is not None:
                    nll = validation_nll(eval_model, valid_x, batch_size=rec["eval_batch_size"], device=dev, d=dist_env,
                                         labels=valid_y)
                    improved = st.best_nll is None or nll < st.best_nll
                    record.update({"nll": nll, "bpd": data_spec.bits_per_dim(nll), "best": improved})
                    if improved:
                        st.best_nll, st.best_epoch = nll, epoch + 1
                        if dist_env.main:
                            save_checkpoint(out_dir / BEST, _state_dict_cpu(eval_model),
                                            {"epoch": epoch + 1, "step": st.step, "valid_nll": nll, "ema": ema is not None})
                if dist_env.main:
                    record["elapsed_s"] = st.elapsed + (time.perf_counter() - t_run)
                    _write_jsonl(log_path, record)
                    if progress:
                        msg = f"epoch {epoch + 1}: valid NLL {record['nll']:.3f} nats ({record['bpd']:.4f} bits/dim)" if "nll" in record else f"epoch {epoch + 1} done"
                        _progress_write(msg + (" *best*" if record.get("best") else ""))
                    fixed = trainer.fixed_noise_samples()
                    if fixed is not None:
                        from .images import save_grid

                        save_grid(fixed, out_dir / "samples" / f"epoch{epoch + 1:03d}.png", data_spec.levels, scale=2)
                st.epoch, st.step_in_epoch = epoch + 1, 0
                checkpoint()
                for cb in callbacks:
                    cb(TrainEvent("epoch", epoch, st.step, 0, {k: v for k, v in record.items() if isinstance(v, float)}))
                if signals.received is not None:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if in_step:
                if dist_env.main:
                    _progress_write(f"interrupted inside a step; keeping the last checkpoint in {out_dir}")
            else:
                checkpoint()
                if dist_env.main:
                    _progress_write(f"interrupted at epoch {st.epoch + (st.step_in_epoch > 0)}, step {st.step}; "
                                    f"checkpoint written to {ckpt_path}; continue with --resume")
            raise
        finally:
            signals.restore()
        st.elapsed += time.perf_counter() - t_run

        # the released weights: best on validation, else the last evaluated ones
        best = create(name, **cfg).to(dev)
        if valid_x is not None and (out_dir / BEST).is_file():
            best_tensors, _ = load_checkpoint(out_dir / BEST)
            best.load_state_dict(best_tensors, strict=True)
        else:
            best.load_state_dict(eval_model.state_dict(), strict=True)
        best.eval()
        release_dir = None
        # the harness shards the test split over the processes itself: every rank calls it
        result = _evaluate(best, ds, limit, dev, dist_env) if evaluate else None
        results = (result.to_dict() if hasattr(result, "to_dict") else result) if result is not None else None
        if dist_env.main:
            release_dir = out_dir / RELEASE
            _write_release(
                release_dir, best, spec=spec, ds=ds, rec=rec, recipe_name=recipe_name, st=st, dev=dev,
                dist_env=dist_env, log_path=log_path, limit=limit, result=result, samples=samples,
                ema=ema is not None,
            )
        _barrier(dist_env)
        return TrainResult(
            out=out_dir, model=best, last=model, ema=ema.module if ema is not None else None, epochs=st.epoch,
            steps=st.step, best_epoch=st.best_epoch, best_valid_nll=st.best_nll, release_dir=release_dir,
            eval=results, wall_time_s=time.perf_counter() - t_start,
        )
    finally:
        if dist_env.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _restore(ckpt_path: Path, identity: Mapping[str, Any], rec: Mapping[str, Any], model: nn.Module,
             ema: Any, trainer: Any, d: _Dist, dev: torch.device) -> _State:
    tensors, meta = load_checkpoint(ckpt_path)
    saved = meta.get("identity", {})
    diffs = []
    for key in sorted(set(saved) | set(identity)):
        if key == "dataset_checksum" and (saved.get(key) is None or identity.get(key) is None):
            continue
        if json.loads(json.dumps(saved.get(key))) != json.loads(json.dumps(identity.get(key))):
            diffs.append(f"{key}: checkpoint {json.dumps(saved.get(key))}, now {json.dumps(identity.get(key))}")
    if diffs:
        raise ZooError(f"cannot resume {ckpt_path}: the run differs from the checkpoint's:\n  " + "\n  ".join(diffs)
                       + "\n(only epochs may change; start a new --out to train differently)")
    if meta["epochs"] != rec["epochs"] and d.main:
        note = "" if rec["lr_schedule"] == "constant" else f"; the {rec['lr_schedule']} schedule now spans {rec['epochs']} epochs"
        _progress_write(f"resuming a {meta['epochs']}-epoch run with epochs={rec['epochs']}{note}")
    model.load_state_dict(_prefixed(tensors, "model/"), strict=True)
    if ema is not None:
        ema_state = _prefixed(tensors, "ema/")
        if not ema_state:
            raise ZooError(f"{ckpt_path} has no EMA weights but the recipe has ema_decay > 0")
        ema.module.load_state_dict(ema_state, strict=True)
    trainer.load_state_dict(unflatten_state(meta["trainer_state"], tensors))
    rng = _prefixed(tensors, f"rng/{d.rank}/")
    if not rng:
        raise ZooError(f"{ckpt_path} has no RNG state for rank {d.rank}")
    _set_rng_state(rng, dev)
    return _State(epoch=meta["epoch"], step_in_epoch=meta["step_in_epoch"], step=meta["step"],
                  best_nll=meta["best_nll"], best_epoch=meta["best_epoch"], elapsed=meta.get("elapsed", 0.0),
                  stages=meta.get("stages") or [{"epochs": meta["epochs"], "from_epoch": 0, "from_step": 0}])


def _progress(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kwargs)


def _progress_write(msg: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(msg)


# -- the release folder ------------------------------------------------------------------------------------
def save_release_weights(model: nn.Module, folder: str | Path, **card: Any) -> Path:
    """config.json + model.safetensors (+ README.md card and samples.png) through `zoo.save_pretrained`.

    `card` goes to `zoo.hub.save_pretrained` (results, samples, recipe, tag, dataset,
    hardware, limitations).
    """
    from .hub import save_pretrained

    return Path(save_pretrained(model, folder, **card))


def _hardware(dev: torch.device, world: int) -> str:
    if dev.type == "cuda":
        what = torch.cuda.get_device_name(dev)
    else:
        import platform

        what = f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread{'' if torch.get_num_threads() == 1 else 's'})"
    return f"{world} x {what}" if world > 1 else what


def _write_release(folder: Path, model: nn.Module, *, spec: Any, ds: Any, rec: Mapping[str, Any], recipe_name: str,
                   st: _State, dev: torch.device, dist_env: _Dist, log_path: Path, limit: int | None,
                   result: Any, samples: int, ema: bool) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if result is not None:
        results = result.to_dict() if hasattr(result, "to_dict") else result
        (folder / "eval.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    x = None
    if samples > 0 and callable(getattr(model, "sample", None)):
        g = torch.Generator(device=dev).manual_seed(rec["seed"])
        with torch.no_grad():
            x = model.sample(samples, generator=g)
    hardware = _hardware(dev, dist_env.world)
    summary = {
        "model": spec.name, "config": dict(model.zoo_config), "dataset": ds.name, "recipe_name": recipe_name,
        "recipe": dict(rec), "epochs": st.epoch, "steps": st.step, "stages": st.stages, "best_epoch": st.best_epoch,
        "best_valid_nll": st.best_nll,
        "best_valid_bpd": model.data_spec.bits_per_dim(st.best_nll) if st.best_nll is not None else None,
        "weights": "EMA of the weights" if ema else "raw weights", "limit": limit,
        "wall_time_s": round(st.elapsed, 1), "hardware": hardware, "world_size": dist_env.world,
        "torch": torch.__version__, "zoo": __version__,
    }
    limitations = []
    if limit is not None:
        limitations.append(f"trained on the first {limit} images of the {rec['train_split']} split only (--limit)")
    save_release_weights(
        model, folder, results=result, samples=x, recipe={"name": recipe_name, **rec}, tag=ds.name,
        dataset=ds.name, hardware=f"{hardware}, {st.elapsed / 60:.1f} min, {st.epoch} epochs",
        limitations=limitations or None, training=summary,
    )
    if x is not None and not (folder / "samples.png").is_file():
        from .images import save_grid

        save_grid(x, folder / "samples.png", model.data_spec.levels, scale=2)
    shutil.copyfile(log_path, folder / LOG)
    plot_training_curves(_read_jsonl(log_path), folder / "training_curve.png", title=f"{spec.name} on {ds.name}")
    (folder / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    if result is not None:  # the card as `zoo card` renders it from the folder (with the training command)
        from .hub import render_release_card

        render_release_card(folder)


def _evaluate(model: nn.Module, ds: Any, limit: int | None, dev: torch.device, d: _Dist) -> Any:
    """The shared harness on the test split (`limit` images with --limit): NLL for a likelihood model,
    the sample metrics (FID, precision, recall, Parzen) for a sampler without one (a GAN).

    Skipped with a message when the dataset has no test split.
    """
    from .eval import evaluate

    def skip(why: str) -> None:
        if d.main:
            _progress_write(f"evaluation skipped: {why}; run `zoo eval` on the release folder")

    splits = tuple(getattr(ds, "splits", ()) or ())
    if splits and "test" not in splits:
        return skip(f"dataset {ds.name!r} has no test split")
    from .plugins import get_registry

    registered = get_registry().datasets.get(ds.name) is ds
    metrics = "nll" if callable(getattr(model, "log_prob", None)) else "fid,precision,recall,parzen"
    return evaluate(model, dataset=ds.name if registered else ds, split="test", metrics=metrics, limit=limit,
                    device=dev, progress=d.main)


# -- the training-curve plot (PIL; matplotlib is not a dependency) -----------------------------------------
_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "",
                         size: tuple[int, int] = (720, 440)) -> Path:
    """A PNG of the training curve: train and valid bits/dim against steps (other metrics when there are none).

    `records` are the lines of train_log.jsonl.
    """
    from PIL import Image, ImageDraw, ImageFont

    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    series: dict[str, list[tuple[float, float]]] = {}
    if any("bpd" in r for r in train) or any("bpd" in r for r in valid):
        series["train bits/dim"] = [(r["step"], r["bpd"]) for r in train if r.get("bpd") is not None]
        series["valid bits/dim"] = [(r["step"], r["bpd"]) for r in valid if r.get("bpd") is not None]
        ylabel = "bits/dim"
    else:
        keys = sorted({k for r in train for k, v in r.items()
                       if isinstance(v, (int, float)) and k not in ("step", "epoch", "lr", "images_per_s", "grad_norm")})
        for k in keys[:6]:
            series[f"train {k}"] = [(r["step"], r[k]) for r in train if isinstance(r.get(k), (int, float))]
        ylabel = "loss"
    series = {k: [(x, y) for x, y in v if math.isfinite(y)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}

    W, H = size
    left, right, top, bottom = 78, 24, 40, 52
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)  # a scalable font where Pillow has FreeType
    except TypeError:  # older Pillow
        font = ImageFont.load_default()
    draw.text((left, 12), title or "training curve", fill="black", font=font)
    points = [p for v in series.values() for p in v]
    if not points:
        draw.text((left, H // 2), "no data logged yet", fill="black", font=font)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        return Path(path)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = 0.05 * (y1 - y0) if y1 > y0 else max(abs(y0) * 0.05, 1e-3)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (W - left - right)

    def py(y: float) -> float:
        return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom)

    for t in _nice_ticks(y0, y1):
        if y0 <= t <= y1:
            draw.line([(left, py(t)), (W - right, py(t))], fill=(230, 230, 230))
            draw.text((6, py(t) - 6), f"{t:.4g}", fill="black", font=font)
    for t in _nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            draw.line([(px(t), H - bottom), (px(t), H - bottom + 4)], fill="black")
            draw.text((px(t) - 10, H - bottom + 8), f"{t:.6g}", fill="black", font=font)
    draw.rectangle([left, top, W - right, H - bottom], outline="black")
    draw.text(((W - left - right) // 2 + left - 12, H - 20), "step", fill="black", font=font)
    draw.text((6, top - 16), ylabel, fill="black", font=font)
    for i, (label, pts) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        xy = [(px(x), py(y)) for x, y in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for (a, b) in xy if label.startswith("valid") or len(xy) == 1 else []:
            draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=colour)
        ly = top + 8 + 14 * i
        draw.line([(W - right - 150, ly + 6), (W - right - 130, ly + 6)], fill=colour, width=3)
        draw.text((W - right - 125, ly), label, fill="black", font=font)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return Path(path)
