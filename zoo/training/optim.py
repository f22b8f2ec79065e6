"""Optimisation: the recipe's optimizer and its per-step learning-rate schedule.

The schedule: warmup, then constant, cosine or exponential."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .recipe import OPTIMIZERS, RecipeError

__all__ = ["build_optimizer", "lr_factor", "build_scheduler"]


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
