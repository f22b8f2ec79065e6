"""A card's claims checked against each other before anything is run.

- bits/dim must equal nats / (C*H*W*ln 2) of the same claims (the card's, eval.json's, full and
  canonical subset alike);
- the model-index in README.md, eval.json and the registry's pin (for weights the registry pins
  by sha256) must give the same numbers, dataset, split and canonical-subset claims;
- the exact NLL of the whole split must lie within 3 standard errors (of the canonical subset,
  finite-population corrected) of the canonical subset's NLL: a mean over 1,000 of the split's
  images estimates the split's mean.

A card edited by hand (the NLL made 5 nats better, bits/dim left) fails here, on any `--limit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .claims import ClaimCheck
from .summary import EvalSummary, fmt, summarize, verifiable

__all__ = ["check_consistency", "SIGMAS"]

SIGMAS = 3.0  # how many standard errors a subset may be from the split's number
EXACT_RTOL = 1e-9  # the same number written twice (README.md, eval.json, the registry)
BPD_RTOL = 1e-6
TIED = ("nll",)  # metrics whose value is a mean over the split's images (a subset's mean estimates it)


def _check(
    key: str, ok: bool, note: str, claimed: float = math.nan, expected: float = math.nan, tolerance: float = 0.0
) -> ClaimCheck:
    return ClaimCheck(key, claimed, expected, tolerance, ok, kind="consistency", note=note)


def _bits_per_dim(s: EvalSummary, dims: int, where: str) -> list[ClaimCheck]:
    out = []
    for key, bpd in s.metrics.items():
        base, _, detail = key.rpartition(".")
        if detail != "bits_per_dim" or base not in s.metrics:
            continue
        expected = s.metrics[base] / (dims * math.log(2))
        tol = BPD_RTOL * abs(expected) + 1e-12
        ok = abs(bpd - expected) <= tol
        out.append(
            _check(
                f"{where}{key}",
                ok,
                f"claimed {fmt(bpd)}, {base} {fmt(s.metrics[base])} / ({dims} ln 2) = {fmt(expected)}",
                bpd,
                expected,
                tol,
            )
        )
    return out


def _same(a: EvalSummary, b: EvalSummary, a_name: str, b_name: str, where: str) -> list[ClaimCheck]:
    out = []
    for attr in ("dataset", "split", "n", "seed", "limit"):
        if getattr(a, attr) != getattr(b, attr):
            out.append(
                _check(f"{where}{attr}", False, f"{a_name} says {getattr(a, attr)!r}, {b_name} {getattr(b, attr)!r}")
            )
    for key in sorted({k for k in (*a.metrics, *b.metrics) if verifiable(k)}):
        x, y = a.metrics.get(key), b.metrics.get(key)
        ok = x is not None and y is not None and abs(x - y) <= EXACT_RTOL * max(abs(x), abs(y))
        if not ok:
            out.append(
                _check(
                    f"{where}{key}",
                    False,
                    f"{a_name} says {fmt(x)}, {b_name} {fmt(y)}",
                    math.nan if x is None else x,
                    math.nan if y is None else y,
                )
            )
    return out


def _tie(full: EvalSummary, sub: EvalSummary) -> list[ClaimCheck]:
    """The full split's mean NLL against the canonical subset's (only for claims of the whole split)."""
    if full.limit is not None or not full.n or not sub.n or sub.n >= full.n:
        return []
    out = []
    for key, value in full.metrics.items():
        se = sub.stderr.get(key)
        if key.split(".")[0] not in TIED or key not in sub.metrics or not se:
            continue
        tol = SIGMAS * se * math.sqrt(1 - sub.n / full.n)
        diff = abs(value - sub.metrics[key])
        out.append(
            _check(
                f"{key} (split vs canonical subset)",
                diff <= tol,
                f"split {fmt(value)}, canonical subset {fmt(sub.metrics[key])} (|diff| {diff:.3g}, "
                f"{SIGMAS:g} standard errors of the subset {tol:.3g})",
                value,
                sub.metrics[key],
                tol,
            )
        )
    return out


def _pin(card: EvalSummary, config: Mapping[str, Any]) -> list[ClaimCheck]:
    """The registry's claims for these weights (matched by sha256), if it pins them."""
    from ..errors import UnknownNameError, ZooError
    from ..registry import get_spec

    sha = (config.get("weights") or {}).get("sha256")
    try:
        spec = get_spec(str(config.get("architecture")))
    except (UnknownNameError, ValueError):
        return []
    for ws in spec.weights:
        if ws.sha256 != sha:
            continue
        name = f"{spec.name}.{ws.tag}"
        try:
            pinned = {k: float(v) for k, v in ws.metrics.items()}
        except ZooError as e:
            return [
                ClaimCheck(
                    name,
                    math.nan,
                    math.nan,
                    0.0,
                    True,
                    kind="note",
                    note=f"the registry pins these weights as {name}, but its claims cannot be read here: {e}",
                )
            ]
        out = []
        if ws.dataset and card.dataset and ws.dataset != card.dataset:
            out.append(
                _check(
                    "registry: dataset",
                    False,
                    f"README.md says {card.dataset!r}, the registry's pin {name} {ws.dataset!r}",
                )
            )
        for key, value in pinned.items():
            claimed = card.metrics.get(key)
            ok = claimed is not None and abs(claimed - value) <= EXACT_RTOL * max(abs(claimed), abs(value))
            if not ok:
                out.append(
                    _check(
                        f"registry: {key}",
                        False,
                        f"README.md says {fmt(claimed)}, the registry's pin {name} {fmt(value)}",
                        math.nan if claimed is None else claimed,
                        value,
                    )
                )
        return out or [_check(f"registry: {name}", True, "the pinned claims are the card's")]
    return []


def check_consistency(
    card: EvalSummary, config: Mapping[str, Any], results: Mapping[str, Any] | None
) -> list[ClaimCheck]:
    """Every internal-consistency check of a release folder's claims (README.md, config.json, eval.json)."""
    spec = config.get("data_spec") or {}
    dims = int(spec.get("channels", 0)) * int(spec.get("height", 0)) * int(spec.get("width", 0))
    ev = summarize(results) if results else None
    out: list[ClaimCheck] = []
    for where, s in (
        ("", card),
        ("canonical subset: ", card.subset),
        ("eval.json: ", ev),
        ("eval.json canonical subset: ", ev.subset if ev else None),
    ):
        if s is not None and dims:
            out += _bits_per_dim(s, dims, where)
    if ev is not None:
        same = _same(card, ev, "README.md", "eval.json", "README.md vs eval.json: ")
        out += same or [_check("README.md vs eval.json", True, "the same claims")]
        if (card.subset is None) != (ev.subset is None):
            has = "README.md" if card.subset is not None else "eval.json"
            out.append(_check("canonical subset", False, f"only {has} records canonical-subset claims"))
        elif card.subset is not None and ev.subset is not None:
            out += _same(card.subset, ev.subset, "README.md", "eval.json", "canonical subset, README.md vs eval.json: ")
    if card.subset is not None:
        out += _tie(card, card.subset)
    out += _pin(card, config)
    return out
