"""`train-time`: how long a release's training took to reach a likelihood, read from its own log.

A release folder written by `zoo train` keeps the run's `train_log.jsonl`; its validation
records (`kind` "valid") hold the validation NLL after every epoch and the training wall
time so far (`elapsed_s`: validation included, release writing between stages not). The
metric reports the hours to the first validation NLL at or below `TARGET` nats, with the
hours to 90 nats and to the run's best in the details. It reads files, runs no model, and
is exact for the same folder; the hardware is the one the release's card names.

A run started from a release's weights (`zoo train --init-from`) records what it continues: the
first stage of its training.json holds `init_from.history` (`run_history` of that release), and
`continued` puts the run's own records on the clock of the whole lineage, so that times to a
likelihood count every run that trained these weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .metric import MetricValue

LOG_NAME = "train_log.jsonl"
TRAINING_NAME = "training.json"
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


def earlier_history(training: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The history of the release a run started from (`run_history`), as its training.json recorded it; None for a
    run from scratch, or one recorded before histories were kept."""
    stages = (training or {}).get("stages") or [{}]
    return (stages[0].get("init_from") or {}).get("history")


def lineage(training: Mapping[str, Any] | None) -> list[tuple[int, Mapping[str, Any]]]:
    """The runs behind a run's weights, the first first, each with the epochs of the weights it started from (0 for
    a run from scratch): [(0, first run's training.json), (E1, the next), ..., (E, `training`)]."""
    if not training:
        return []
    history = earlier_history(training)
    if not history:
        return [(0, training)]
    return [*lineage(history["training"]), (int(history["epochs"]), training)]


def continued(records: Sequence[Mapping[str, Any]], training: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A run's log records on the clock of the runs its weights continue: their timed validation records first,
    then `records` with epoch, step and `elapsed_s` counted on from where they ended (the run's first record
    marked `"continued": True`). Without a history, `records` as they are."""
    history = earlier_history(training)
    if not history:
        return [dict(r) for r in records]
    offsets = {"epoch": history["epochs"], "step": history["steps"], "elapsed_s": history["wall_time_s"]}
    own = [{**r, **{k: r[k] + v for k, v in offsets.items() if isinstance(r.get(k), (int, float))}} for r in records]
    if own:
        own[0]["continued"] = True
    return [*(dict(r) for r in history["validation"]), *own]


def lineage_records(folder: Path) -> list[dict[str, Any]]:
    """The timed validation records of the release in `folder` and of the runs its weights continue, in order,
    on one clock (`continued`)."""
    log, training_path = folder / LOG_NAME, folder / TRAINING_NAME
    training = json.loads(training_path.read_text()) if training_path.is_file() else None
    return continued(validation_records(log) if log.is_file() else [], training)


def run_history(folder: Path) -> dict[str, Any] | None:
    """What a run started from the release in `folder` records of it: the release's training.json, its timed
    validation records with those of the runs it continued itself, and the epochs, steps and training wall time
    of all of them, up to the epoch whose weights the release holds (its best on validation; a run that went on
    past it is cut there). None when the folder has no training.json."""
    path, log = folder / TRAINING_NAME, folder / LOG_NAME
    if not path.is_file():
        return None
    training = json.loads(path.read_text())
    before = earlier_history(training) or {"epochs": 0, "steps": 0, "wall_time_s": 0.0}
    epochs, steps, wall = int(training.get("epochs") or 0), int(training.get("steps") or 0), training.get("wall_time_s")
    own = validation_records(log) if log.is_file() else []
    best = training.get("best_epoch")
    if best is not None and best < epochs and any(r["epoch"] == best for r in own):  # the release is an earlier epoch
        own = [r for r in own if r["epoch"] <= best]
        epochs, steps, wall = best, own[-1]["step"], own[-1]["elapsed_s"]
    return {
        "epochs": before["epochs"] + epochs,
        "steps": before["steps"] + steps,
        "wall_time_s": round(before["wall_time_s"] + float(wall or 0.0), 1),
        "training": training,
        "validation": continued(own, training),
    }


def train_time(ctx: Any) -> MetricValue:
    log = log_of(ctx.model)
    records = lineage_records(log.parent) if log is not None else []
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
