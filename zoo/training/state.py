"""The objects of a training run: the run folder's layout, its progress counters, the `Run` the loop's
steps share, and what callers see (`TrainEvent`, `TrainResult`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed import Dist
from .data import TrainData

__all__ = ["CHECKPOINT", "BEST", "LOG", "RELEASE", "TrainEvent", "TrainResult", "Progress", "Run"]

CHECKPOINT = "checkpoint.safetensors"  # the last state, for --resume
BEST = "best.safetensors"  # the weights that scored best on validation (EMA when enabled)
LOG = "train_log.jsonl"
RELEASE = "release"  # the folder that becomes a Hub repo / card


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
    model: Any  # the released weights: best on validation (EMA when enabled), eval mode
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
class Progress:
    """How far the run is: what a checkpoint stores and `--resume` restores."""

    epoch: int = 0  # completed epochs, or the epoch in progress when step_in_epoch > 0
    step_in_epoch: int = 0
    step: int = 0
    best_nll: float | None = None
    best_epoch: int | None = None
    elapsed: float = 0.0  # training seconds before this process started
    # the run's stages: the epochs it was started with, then each --resume that changed them
    # ({"epochs": E, "from_epoch": k, "from_step": s, "hardware": ...}, the first with "init_from":
    # {"name", "sha256"[, "history"]} when the run started from released weights); the card turns them into commands
    stages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    """Everything the loop's steps share: what is trained, on what, where it is written, how far it is."""

    name: str  # as given to `train`
    spec: Any  # the ModelSpec
    rec: dict[str, Any]  # the resolved recipe
    recipe_name: str  # "custom" for a recipe given as a dict
    cfg: dict[str, Any]  # the constructor overrides the model was built with
    limit: int | None
    dev: torch.device
    d: Dist
    model: Any
    ema: Any  # timm's ModelEmaV3, or None
    trainer: Any  # a zoo.protocols.Trainer
    data: TrainData
    out_dir: Path
    identity: dict[str, Any]  # what must not change across --resume
    init_from: dict[str, Any] | None = None  # the release the weights started from: {"name", "sha256"[, "history"]}
    # the settings given on top of the named recipe, as `--set` takes them: recipe keys by name, constructor
    # options as "model.KEY" (training.json records them, so the card's training command repeats them)
    sets: dict[str, Any] = field(default_factory=dict)
    state: Progress = field(default_factory=Progress)
    t_run: float = 0.0  # time.perf_counter() when this process started training
    in_step: bool = False  # inside trainer.step: an interrupt there leaves the last checkpoint as it is

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated, selected and released: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / CHECKPOINT

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOG

    def elapsed(self) -> float:
        """Training seconds so far, over every stage of the run."""
        return self.state.elapsed + (time.perf_counter() - self.t_run)
