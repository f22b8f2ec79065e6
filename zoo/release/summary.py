"""An EvalResult reduced to what a card shows and what publishing verifies: `EvalSummary`, `summarize`.

Metric keys are flattened: a metric's value is claimed as `name`, its numeric details
as `name.detail` (e.g. `nll.bits_per_dim`). Importable without torch or huggingface_hub.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvalSummary", "summarize", "verifiable", "fmt", "number"]

# Keys whose numbers depend on the machine: shown in the card, never verified. (EvalResult does not yet
# record which metrics are timings; Metric.deterministic says it, but it is not serialised.)
UNVERIFIED_PREFIXES = ("speed",)
UNVERIFIED_WORDS = ("per_s", "per_sec", "wall", "seconds", "time_s", "_time")
# For results given as plain dicts of numbers (not the harness's MetricValue layout), which keys are
# standard errors; the harness itself names the standard error of detail `x` `stderr_x`.
STDERR_WORDS = ("stderr", "std_err", "standard_error", "sem")
META_KEYS = (
    "n",
    "count",
    "num",
    "samples",
    "n_samples",
    "num_samples",
    "n_real",
    "features",
    "sample_batch",
)  # not claims


@dataclass
class EvalSummary:
    """An EvalResult reduced to what a card shows and what publishing verifies."""

    dataset: str = ""
    split: str = "test"
    n: int | None = None
    seed: int | None = None
    limit: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # flattened key -> value, e.g. "nll", "nll.bits_per_dim"
    stderr: dict[str, float] = field(default_factory=dict)  # flattened key -> standard error
    units: dict[str, str] = field(default_factory=dict)  # flattened key -> unit, when the harness gives one
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is n/a
    # metric -> {"bound": "upper", "k": k} for a bound (a VAE's nll): its keys print as `≤ value`
    bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    # the same claims on the release's canonical subset (zoo.release.canonical), when it records them
    subset: EvalSummary | None = None

    def mark(self, key: str) -> str:
        """ "≤ " when the flattened `key` (e.g. `nll.bits_per_dim`) is an upper bound, else ""."""
        return "≤ " if self.bounds.get(key.split(".")[0], {}).get("bound") == "upper" else ""

    @property
    def metric_names(self) -> list[str]:
        """The harness metrics behind the numbers (`nll`, `fid`, ...), for `zoo.evaluate(metrics=...)`."""
        return sorted({k.split(".")[0] for k in self.metrics})


def _as_dict(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return dict(result)
    for attr in ("to_dict", "as_dict", "dict"):
        fn = getattr(result, attr, None)
        if callable(fn):
            d = fn()
            if isinstance(d, Mapping):
                return dict(d)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    raise TypeError(f"expected an EvalResult or a dict of results, got {type(result).__name__}")


def number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:  # numpy / torch scalars
        return float(v.item())
    except (AttributeError, TypeError, ValueError):
        return None


def _is_stderr(key: str) -> bool:
    return any(w in key.lower() for w in STDERR_WORDS)


def _stderr_target(name: str, leaf: str, siblings: list[str]) -> str:
    """Which value a standard-error entry belongs to: `nats_stderr` -> `nats`; a lone `stderr` -> the only value."""
    low = leaf.lower()
    for w in STDERR_WORDS:
        for cand in (low.replace(f"_{w}", ""), low.replace(f"{w}_", "")):
            if cand != low and cand in siblings:
                return f"{name}.{cand}"
    values = [s for s in siblings if not _is_stderr(s) and s not in META_KEYS]
    if len(values) == 1:
        return f"{name}.{values[0]}"
    if "nats" in values:  # the harness's nll: nats per image first
        return f"{name}.nats"
    return f"{name}.{values[0]}" if values else name


def summarize(result: Any) -> EvalSummary:
    """Reduce an EvalResult (or its `to_dict()`, or a plain dict) to an `EvalSummary`.

    `dataset`, `split`, `n`, `seed`, `limit` are read from the top level or `provenance`.
    `metrics` maps a metric name to one of:

    - the harness's `MetricValue` layout `{"value", "unit", "stderr", "details", "note"}`:
      the value is claimed as `name`, numeric details as `name.detail` (e.g.
      `nll.bits_per_dim`, its `stderr_bits_per_dim` as that key's standard error);
      `value: None` is n/a, with `note` as the reason;
    - a number; a mapping of numbers (`{"nats": 80.1, "stderr": 0.2}` -> `nll.nats`);
      or a string / `{"status": "n/a", "reason": ...}` for a metric that does not apply.
    """
    if isinstance(result, EvalSummary):
        return result
    d = _as_dict(result)
    prov = dict(d.get("provenance") or {})
    get = lambda k, default=None: d.get(k, prov.get(k, default))  # noqa: E731
    dataset = get("dataset") or ""
    if isinstance(dataset, Mapping):
        prov.setdefault("dataset_checksum", dataset.get("checksum"))
        dataset = dataset.get("name", "")
    s = EvalSummary(dataset=str(dataset), split=str(get("split") or "test"))
    for key in ("n", "seed", "limit"):
        v = number(get(key))
        setattr(s, key, int(v) if v is not None else None)
    flat = {**prov, **d}
    for k, v in list(flat.items()):
        if isinstance(v, Mapping) and k not in ("metrics", "provenance", "data_spec", "canonical_subset"):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, (list, dict))})
    s.provenance = {
        k: v
        for k, v in flat.items()
        if k not in ("metrics", "provenance", "schema") and not isinstance(v, (list, dict)) and v is not None
    }
    metrics = d.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"EvalResult.metrics must be a mapping of metric name to values, got {type(metrics).__name__}")
    for name, value in metrics.items():
        num = number(value)
        if num is not None:
            s.metrics[name] = num
            continue
        if isinstance(value, str):
            s.notes[name] = value
            continue
        if not isinstance(value, Mapping):
            continue
        if "value" in value and ("details" in value or "stderr" in value or "unit" in value):  # a MetricValue
            _add_metric_value(s, str(name), value)
            continue
        if str(value.get("status", "")).lower() in ("n/a", "na", "unsupported", "skipped"):
            s.notes[name] = f"n/a, {value.get('reason', '')}".rstrip(", ")
            continue
        leaves = {k: n for k, v in value.items() if (n := number(v)) is not None}
        numeric = list(leaves)
        for k in numeric:
            if _is_stderr(k):
                s.stderr[_stderr_target(name, k, numeric)] = leaves[k]
            elif k in META_KEYS:
                continue
            else:
                s.metrics[f"{name}.{k}"] = leaves[k]
    if not s.metrics and not s.notes:
        raise ValueError("the EvalResult has no metrics to report")
    if isinstance(d.get("canonical_subset"), Mapping):
        s.subset = summarize(d["canonical_subset"])
    return s


def _add_metric_value(s: EvalSummary, name: str, mv: Mapping[str, Any]) -> None:
    value = number(mv.get("value"))
    if value is None:
        note = mv.get("note") or ""
        s.notes[name] = f"n/a ({note})" if note else "n/a"
        return
    s.metrics[name] = value
    if mv.get("unit"):
        s.units[name] = str(mv["unit"])
    se = number(mv.get("stderr"))
    if se is not None:
        s.stderr[name] = se
    details = mv.get("details") or {}
    if details.get("bound") is not None:
        s.bounds[name] = {"bound": str(details["bound"]), "k": details.get("k")}
    leaves = {k: n for k, v in details.items() if (n := number(v)) is not None}
    numeric = list(leaves)
    for k in numeric:
        if k.startswith("stderr_"):  # the harness's name for the standard error of detail k[7:]
            if k[len("stderr_") :] in numeric:
                s.stderr[f"{name}.{k[len('stderr_') :]}"] = leaves[k]
        elif k not in META_KEYS and not (k == "k" and name in s.bounds):  # a bound's k: in `bounds`
            s.metrics[f"{name}.{k}"] = leaves[k]
            if "bits_per_dim" in k:
                s.units[f"{name}.{k}"] = "bits/dim"


def verifiable(key: str) -> bool:
    low = key.lower()
    return not low.startswith(UNVERIFIED_PREFIXES) and not any(w in low for w in UNVERIFIED_WORDS)


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")
