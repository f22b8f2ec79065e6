"""What a metric of the harness is, and what it returns. Importable without torch.

A metric is any object with a unique `name` that a plugin registers through
`zoo_register_metrics(register)`:

    class MyMetric(zoo.eval.Metric):
        name = "my-metric"
        unit = "nats"                       # shown in tables and the leaderboard
        summary = "one line for `zoo eval --help`"

        def supports(self, model):          # None, or why this model cannot be scored
            return None if hasattr(model, "log_prob") else "needs log_prob"

        def compute(self, ctx):             # ctx: zoo.eval.harness.EvalContext
            x = ctx.split_images()          # the (sharded, gathered) split, (N, C, H, W) levels
            return zoo.eval.MetricValue(self.name, value=..., unit=self.unit)

The harness asks `supports` first; a metric that does not apply to a model is
reported as `n/a` with the reason and is never computed. `compute` must give
the same numbers for the same `ctx.seed`, and the same numbers in one process
and under `torchrun` (use `ctx.map_batches`, which shards and gathers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Metric", "MetricValue"]


@dataclass
class MetricValue:
    """One metric's result. `value is None` means n/a, and `note` says why."""

    name: str
    value: float | None
    unit: str = ""
    stderr: float | None = None  # standard error of `value`, when it is a mean
    # secondary numbers (bits/dim, the floor, ...); `stderr_x` is the standard error of detail `x`
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # the reason for n/a, or a caveat

    @classmethod
    def na(cls, name: str, reason: str, unit: str = "") -> MetricValue:
        return cls(name, None, unit, note=reason)

    @property
    def bound(self) -> str | None:
        """ "upper" when `value` is an upper bound (a bounded model's nll), else None (exact)."""
        return self.details.get("bound")

    def short(self) -> str:
        """`85.21 ± 0.30 nats`, `≤ 86.30 ± 0.31 nats` for an upper bound, or `n/a (implicit model)`."""
        if self.value is None:
            return f"n/a ({self.note})" if self.note else "n/a"
        text = ("≤ " if self.bound == "upper" else "") + _fmt(self.value)
        if self.stderr is not None:
            text += f" ± {self.stderr:.2g}"
        return f"{text} {self.unit}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "stderr": self.stderr,
            "details": self.details,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricValue:
        return cls(
            d["name"],
            d.get("value"),
            d.get("unit", ""),
            d.get("stderr"),
            dict(d.get("details") or {}),
            d.get("note", ""),
        )


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v}"
    a = abs(v)
    if a >= 1000:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}" if a < 100 else f"{v:.1f}"
    return f"{v:.4f}"


class Metric:
    """Base class for metrics (optional: any object with `name`, `supports` and `compute` works)."""

    name: str = ""
    unit: str = ""
    summary: str = ""
    uses_samples: bool = False  # draws samples from the model (then `ctx.num_samples` matters)
    deterministic: bool = True  # False for timings: excluded from "same seed, same numbers"

    def supports(self, model: Any) -> str | None:
        """None when the metric applies to `model`, else the reason it does not (shown as n/a)."""
        return None

    def compute(self, ctx: Any) -> MetricValue:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<metric {self.name}>"
