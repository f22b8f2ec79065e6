"""`train-time`: how long a release's training took to reach a likelihood, read from its own log.

A release folder written by `zoo train` keeps the run's `train_log.jsonl`; its validation
records (`kind` "valid") hold the validation NLL after every epoch and the training wall
time so far (`elapsed_s`: validation included, release writing between stages not). The
metric reports the hours to the first validation NLL at or below `TARGET` nats, with the
hours to 90 nats and to the run's best in the details. It reads files, runs no model, and
is exact for the same folder; the hardware is the one the release's card names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .metric import MetricValue

LOG_NAME = "train_log.jsonl"
TARGET = 85.0  # nats per image: the leaderboard's column
MILESTONES = (90.0, 85.0)  # the card's "time to reach" line


def log_of(model: Any) -> Path | None:
    """The `train_log.jsonl` beside the weights `zoo.load` read for `model`, if there is one."""
    weights = getattr(model, "zoo_weights", None)
    path = getattr(weights, "path", None)
    if not path:
        return None
    log = Path(path).parent / LOG_NAME
    return log if log.is_file() else None


def validation_records(log: Path) -> list[dict[str, Any]]:
    """The timed validation records of a training log, in order."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [
        r for r in records if r.get("kind") == "valid" and r.get("nll") is not None and r.get("elapsed_s") is not None
    ]


def time_to_reach(validation: Sequence[Mapping[str, Any]], nats: float) -> float | None:
    """Training wall time (s) at the first validation at or below `nats`; None if never."""
    for r in validation:
        if r.get("nll") is not None and r["nll"] <= nats and r.get("elapsed_s") is not None:
            return float(r["elapsed_s"])
    return None


def train_time(ctx: Any) -> MetricValue:
    log = log_of(ctx.model)
    records = validation_records(log) if log is not None else []
    if not records:
        return MetricValue.na("train-time", "the training log has no timed validation", "h")
    best = min(records, key=lambda r: r["nll"])
    details = {
        "target_nats": TARGET,
        "best_valid_nll": best["nll"],
        "hours_to_best": best["elapsed_s"] / 3600,
        "epochs": records[-1]["epoch"],
    }
    for nats in MILESTONES:
        t = time_to_reach(records, nats)
        details[f"hours_to_{nats:.0f}"] = None if t is None else t / 3600
    hours = details[f"hours_to_{TARGET:.0f}"]
    if hours is None:
        return MetricValue(
            "train-time",
            None,
            "h",
            None,
            details,
            f"{TARGET:.0f} not reached: best {best['nll']:.2f} after {best['elapsed_s'] / 3600:.1f} h",
        )
    return MetricValue("train-time", hours, "h", None, details)
