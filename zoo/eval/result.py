"""`EvalResult`: the metrics of one model on one split, with provenance. Importable without torch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError
from .metric import MetricValue

__all__ = ["EvalResult", "format_table"]

SCHEMA = "zoo.eval/1"


@dataclass
class EvalResult:
    """What `zoo.evaluate` returns.

    `metrics` maps a metric name to its `MetricValue` (value None = n/a, with
    the reason in `note`). `provenance` records what was scored and how:
    model, weights (sha256 or "random init"), dataset and its checksum, split,
    n, seed, versions, device, world size, wall time.
    """

    model: str
    metrics: dict[str, MetricValue]
    provenance: dict[str, Any] = field(default_factory=dict)
    samples: Any = field(default=None, repr=False, compare=False)  # a few samples for a grid; not serialised
    # (images whose lower half the model completed, the completions), for a picture; not serialised
    completions: Any = field(default=None, repr=False, compare=False)
    # a release's claims on its canonical subset: the to_dict() of the same evaluation with the canonical
    # limit (see zoo.release.canonical); serialised when set, so eval.json carries both
    canonical_subset: dict[str, Any] | None = field(default=None, repr=False)

    def __getitem__(self, name: str) -> MetricValue:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"{name!r} was not evaluated; metrics here: {', '.join(self.metrics)}") from None

    def values(self) -> dict[str, float | None]:
        """`{metric: value}` (None for n/a)."""
        return {k: v.value for k, v in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": SCHEMA,
            "model": self.model,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "provenance": self.provenance,
        }
        if self.canonical_subset is not None:
            d["canonical_subset"] = self.canonical_subset
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        if d.get("schema") != SCHEMA:
            raise ArgumentError(f"expected an evaluation result with schema {SCHEMA!r}, got {d.get('schema')!r}")
        return cls(
            d["model"],
            {k: MetricValue.from_dict(v) for k, v in d["metrics"].items()},
            dict(d["provenance"]),
            canonical_subset=d.get("canonical_subset"),
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> EvalResult:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArgumentError(f"not a JSON evaluation result: {e}") from None
        if not isinstance(d, dict):
            raise ArgumentError(f"expected a JSON object (one evaluation result), got {type(d).__name__}")
        return cls.from_dict(d)

    def summary_lines(self) -> list[str]:
        """One line per metric with its secondary numbers, e.g. `nll  85.21 ± 0.30 nats  (0.1568 bits/dim)`,
        and under a metric the registry has a published number for, that number and its source."""
        lines = []
        for name, v in self.metrics.items():
            extra = describe_details(v)
            lines.append(f"{name:<10} {v.short()}{'  (' + extra + ')' if extra else ''}")
            published = reference_line(self.provenance.get("reference") or {}, name, bound=v.bound == "upper")
            if published:
                lines.append(f"{'':<10} {published}")
        return lines

    def __str__(self) -> str:
        p = self.provenance
        head = (
            f"{self.model} on {p.get('dataset', '?')}[{p.get('split', '?')}] "
            f"(n={p.get('n', '?')}, seed={p.get('seed', '?')}, weights {str(p.get('weights', '?'))[:16]})"
        )
        return "\n".join([head, *("  " + line for line in self.summary_lines())])


def published_mark(reference: Mapping[str, Any], *, bound: bool) -> str:
    """`≤ ` before a published number shown beside a measured bound (it is a bound too), unless the reference
    says it is an exact value (`"exact": True`, e.g. a PixelCNN's NLL that a PixelVAE's bound should beat)."""
    return "≤ " if bound and not reference.get("exact") else ""


def reference_line(reference: dict[str, Any], metric: str, *, bound: bool = False) -> str:
    """`published 79.20 (PixelRNN paper, Table 4)` for a metric the reference gives a number for, else "".
    Beside a measured bound (`bound=True`) the published number is marked `≤` too, as in the leaderboard."""
    value = reference.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    source = reference.get("source") or "source not given"
    caveat = "; not comparable" if reference.get("comparable") is False else ""
    return f"published {published_mark(reference, bound=bound)}{value:.2f} ({source}{caveat})"


def describe_details(v: MetricValue) -> str:
    """The secondary numbers worth a glance: bits/dim, the FID floor, Parzen's sigma, ..."""
    d = v.details
    parts = []
    if v.value is None:
        return ""
    if "bits_per_dim" in d:
        parts.append(f"{'≤ ' if v.bound == 'upper' else ''}{d['bits_per_dim']:.4f} bits/dim")
    if v.bound is not None:
        parts.append(f"{v.bound} bound, k={d.get('k')} importance samples")
    if "floor" in d:
        parts.append(f"floor {d['floor']:.3f}" if d["floor"] is not None else f"floor n/a: {d.get('floor_note', '')}")
    if "sigma" in d:
        parts.append(f"sigma {d['sigma']:.3g}")
    for key, label in (
        ("samples_per_s_naive", "naive"),
        ("samples_per_s_fast", "fast"),
        ("eval_images_per_s", "eval img/s"),
    ):
        if d.get(key) is not None:
            parts.append(f"{label} {d[key]:.3g}")
    if v.note:
        parts.append(v.note)
    return ", ".join(parts)


def format_table(results: Iterable[EvalResult]) -> str:
    """A plain-text table: one row per model, one column per metric (with its unit)."""
    results = list(results)
    names: list[str] = []
    units: dict[str, str] = {}
    for r in results:
        for k, v in r.metrics.items():
            if k not in names:
                names.append(k)
            units.setdefault(k, v.unit)
    header = ["model", "weights", *[f"{k} ({units[k]})" if units[k] else k for k in names]]
    rows = []
    for r in results:
        w = str(r.provenance.get("weights", ""))
        row = [r.model, w if w == "random init" else w[:12]]
        for k in names:
            mv = r.metrics.get(k)
            if mv is None:
                row.append("-")
            elif mv.value is None:
                row.append("n/a")
            else:
                row.append(mv.short().removesuffix(mv.unit).strip())
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in rows]
    notes = [
        f"{r.model}: {k}: n/a ({v.note})" for r in results for k, v in r.metrics.items() if v.value is None and v.note
    ]
    return "\n".join(out + notes)
