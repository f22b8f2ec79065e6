"""What a run reports: train_log.jsonl records, the progress bar, and messages on the console."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..util import atomic_write

__all__ = ["write_jsonl", "read_jsonl", "truncate_log", "MetricsWindow", "progress_bar", "say", "note"]


def write_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append `record` as one JSON line."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file ([] when there is none)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_log(path: Path, step: int) -> None:
    """Keep only the records up to the checkpoint's step (a crash may have logged past it)."""
    records = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    with atomic_write(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))


class MetricsWindow:
    """The step metrics since the last train record; `flush` writes their means (and images/s) to the log."""

    def __init__(self, path: Path, *, write: bool):
        self.path, self.write = path, write  # write: only rank 0 writes the log
        self._reset()

    def _reset(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.images, self.t0 = 0, time.perf_counter()

    def add(self, metrics: Mapping[str, float], images: int) -> None:
        for key, v in metrics.items():
            self.values.setdefault(key, []).append(float(v))
        self.images += images

    def flush(self, epoch: int, step: int) -> None:
        if self.write:
            dt = time.perf_counter() - self.t0
            write_jsonl(
                self.path,
                {
                    "kind": "train",
                    "epoch": epoch,
                    "step": step,
                    **{key: sum(v) / len(v) for key, v in self.values.items()},
                    "images_per_s": self.images / dt if dt > 0 else None,
                },
            )
        self._reset()


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm bar (pass `disable=True` on ranks other than 0)."""
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kwargs)


def say(msg: str) -> None:
    """A line of progress on stderr, beside the bar (stdout stays for results: `zoo train --json`)."""
    from tqdm.auto import tqdm

    tqdm.write(msg, file=sys.stderr)


def note(msg: str) -> None:
    """A line the user should notice, on stderr."""
    from tqdm.auto import tqdm

    tqdm.write(f"note: {msg}", file=sys.stderr)
