"""The default trainer (maximum likelihood), and finding and checking a family's own trainer.

A trainer implements `zoo.protocols.Trainer` (`step`, `state_dict`,
`load_state_dict`; optionally `recipe_defaults`, `supports_distributed` and
`epoch_samples`); the loop in `zoo.training.loop` drives it. A family without a
likelihood names its own in `ModelSpec.trainer = "module:Class"`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ZooError
from ..factory import import_builder
from .optim import build_optimizer, build_scheduler

__all__ = ["MaximumLikelihoodTrainer", "wrap_ddp", "trainer_class", "epoch_samples", "REQUIRED"]


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


class _MeanNLL(nn.Module):
    """Runs `model.loss` through `forward`, so DistributedDataParallel sees it."""

    def __init__(self, model: Any):
        super().__init__()
        self.model: Any = model  # a zoo model: Any with loss()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.loss(x) if y is None else self.model.loss(x, y=y)


class MaximumLikelihoodTrainer:
    """Maximum likelihood: one optimizer step on `model.loss(x)`, the mean NLL in nats per image.

    With `precision: "bf16"` the forward pass runs under bf16 autocast (the
    weights, gradients and optimizer stay fp32). Logs `loss` (nats/image), `bpd` (bits/dim) and `lr`;
    with `grad_clip` also `grad_norm` (before clipping). Under torchrun the loss runs through
    DistributedDataParallel, which averages gradients over the processes; the
    logged loss is this process's.
    """

    supports_distributed = True
    recipe_defaults: Mapping[str, Any] = {}

    def __init__(self, model: Any, recipe: Mapping[str, Any], device: torch.device):
        if not callable(getattr(model, "loss", None)) or not hasattr(model, "data_spec"):
            raise ZooError(
                f"{type(model).__name__} has no loss(x); the default trainer needs a likelihood model "
                "(a family without one registers its own ModelSpec.trainer)"
            )
        self.model: Any = model  # checked above: it has loss() and data_spec
        self.recipe, self.device = dict(recipe), device
        self.dims: int = model.data_spec.dims
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


REQUIRED = ("step", "state_dict", "load_state_dict")  # what zoo.protocols.Trainer demands


def trainer_class(spec: Any) -> type:
    """The trainer `spec` names (`ModelSpec.trainer`), checked against `zoo.protocols.Trainer`;
    `MaximumLikelihoodTrainer` when it names none."""
    if not spec.trainer:
        return MaximumLikelihoodTrainer
    cls: Any = import_builder(spec.trainer)
    missing = [m for m in REQUIRED if not callable(getattr(cls, m, None))]
    if missing:
        raise ZooError(
            f"{spec.name}: trainer {spec.trainer} lacks {', '.join(missing)} "
            "(see zoo.protocols.Trainer, the trainer interface)"
        )
    if callable(getattr(cls, "fixed_noise_samples", None)) and not callable(getattr(cls, "epoch_samples", None)):
        warnings.warn(
            f"{spec.trainer}: the trainer hook fixed_noise_samples() is now called epoch_samples() "
            "(zoo.protocols.Trainer); the old name is read for one more release",
            DeprecationWarning,
            stacklevel=3,
        )
    return cls


def epoch_samples(trainer: Any) -> torch.Tensor | None:
    """The images a trainer wants saved at every epoch's end (its optional `epoch_samples()` hook), or None."""
    hook = getattr(trainer, "epoch_samples", None)
    if not callable(hook):
        hook = getattr(trainer, "fixed_noise_samples", None)  # the hook's old name, for one release
    return hook() if callable(hook) else None
