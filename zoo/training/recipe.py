"""Training recipes: the schema of every key a recipe may hold, and resolving a recipe into a checked dict.

A recipe is a dict of some of the keys in `RECIPE_SCHEMA`; the rest take their
defaults. Plugins put named recipes on `ModelSpec.recipes` ("default" first); a
family's trainer may add keys of its own (`recipe_defaults`). Unknown keys,
wrong types and out-of-range values raise `RecipeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UnknownNameError, ZooError
from ..util import did_you_mean

__all__ = [
    "RECIPE_SCHEMA",
    "LOOP_KEYS",
    "OPTIMIZERS",
    "SCHEDULES",
    "PRECISIONS",
    "RecipeError",
    "recipe_keys",
    "resolve_recipe",
    "split_overrides",
]

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
    "precision": (
        "fp32",
        "fp32 | bf16: bf16 autocast for the training forward pass (validation and release stay fp32)",
    ),
    "ema_decay": (0.999, "timm ModelEmaV3 decay of the weight average; 0 = no EMA"),
    "ema_warmup": (True, "ramp the EMA decay up as 1 - (1 + step)^-3/4 (capped at ema_decay)"),
    "seed": (0, "seeds the model init, the data order and every random draw"),
    "train_split": ("train", "the dataset split to train on"),
    "dynamic_binarization": (
        False,
        "a fresh draw of the train split every epoch (Dataset.redraw), e.g. binarized MNIST",
    ),
    "valid_split": ("valid", "the split for validation NLL and best-epoch selection; '' = none"),
    "valid_iw_samples": (
        1,
        "a model with a likelihood bound (a VAE): validate on the bound with this many samples (1: the ELBO)",
    ),
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
        return [_check_type(key, v, d, where) for v, d in zip(value, default, strict=True)]
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
    need(r["valid_iw_samples"] >= 1, "valid_iw_samples", ">= 1")
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
            hint = did_you_mean(recipe, names)
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
                hint = did_you_mean(key, list(defaults))
                raise RecipeError(f"{source}: unknown recipe key {key!r}{hint} (known: {', '.join(sorted(defaults))})")
            out[key] = _check_type(key, value, defaults[key], source)
    _check_ranges(out, where)
    return out


def split_overrides(
    name: str, pairs: Mapping[str, Any], *, recipe_extra: Mapping[str, Any] | None = None
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
            rec[key[len("recipe.") :]] = value
        elif key.startswith("model."):
            cfg[key[len("model.") :]] = value
        elif key in keys:
            rec[key] = value
        else:
            cfg[key] = value
    return rec, cfg
