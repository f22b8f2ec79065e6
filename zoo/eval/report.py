"""`zoo eval --report DIR`: a Markdown leaderboard and a sample grid per model."""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Iterable

from .metric import MetricValue
from .result import EvalResult

__all__ = ["write_report", "leaderboard_markdown"]


NOTES = (
    (("nll",), "nll: exact negative log-likelihood, mean over the split ± standard error; "
               "bits/dim = nats / (C·H·W·ln 2)."),
    (("fid", "precision", "recall"), "fid, precision, recall: in the features of the zoo's reference classifier for "
                                     "the dataset (not Inception); the fid floor is the FID of as many real train "
                                     "images as samples."),
    (("parzen",), "parzen: Gaussian Parzen-window log-density (Goodfellow et al. 2014 protocol), a weak estimator; "
                  "not comparable with nll."),
    (("speed",), "speed: timings of one run on the device above."),
)


def _cell(v: MetricValue | None, detail: str | None = None) -> str:
    if v is None:
        return "-"
    if v.value is None:
        return f"n/a ({v.note})" if v.note else "n/a"
    if detail is not None:
        x = v.details.get(detail)
        return "-" if x is None else f"{x:.4f}"
    text = v.short().removesuffix(v.unit).strip()
    if v.name == "fid" and v.details.get("floor") is not None:
        text += f" (floor {v.details['floor']:.2f})"
    return text


def leaderboard_markdown(results: Iterable[EvalResult]) -> str:
    """One row per model, one column per metric with its unit."""
    results = list(results)
    columns: list[tuple[str, str, str | None]] = []  # (metric, header, detail key)
    for r in results:
        for name, v in r.metrics.items():
            if any(c[0] == name for c in columns):
                continue
            columns.append((name, f"{name} ({v.unit})" if v.unit else name, None))
            if name == "nll":
                columns.append((name, "nll (bits/dim)", "bits_per_dim"))
    header = ["model", "weights", *(c[1] for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        w = str(r.provenance.get("weights", ""))
        row = [f"`{r.model}`", w if w == "random init" else f"`{w[:12]}`"]
        row += [_cell(r.metrics.get(m), d) for m, _, d in columns]
        lines.append("| " + " | ".join(row) + " |")
    first = results[0].provenance if results else {}
    about = (f"Dataset `{first.get('dataset')}`, split `{first.get('split')}` (n = {first.get('n')}, "
             f"checksum `{str(first.get('dataset_checksum', ''))[:12]}`), seed {first.get('seed')}, "
             f"zoo {first.get('versions', {}).get('zoo')}, torch {first.get('versions', {}).get('torch')}, "
             f"device {first.get('device')}, {_dt.date.today().isoformat()}.")
    used = {c[0] for c in columns}
    notes = [text for keys, text in NOTES if used & set(keys)]
    return "\n".join(["# Leaderboard", "", about, "", *lines, "", *(f"- {n}" for n in notes), "",
                      "Reproduce: `zoo eval <model> --dataset {} --split {} --seed {}`".format(
                          first.get("dataset"), first.get("split"), first.get("seed")), ""])


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_report(results: Iterable[EvalResult], out_dir: str | Path) -> list[Path]:
    """Write `leaderboard.md`, `results.json` and `<model>.png` (when samples were kept) into `out_dir`."""
    from ..images import save_grid
    from ..protocols import DataSpec

    results = list(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "leaderboard.md", out / "results.json"]
    written[0].write_text(leaderboard_markdown(results))
    written[1].write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    for r in results:
        samples = getattr(r, "samples", None)
        if samples is None:
            continue
        levels = DataSpec.from_dict(r.provenance["data_spec"]).levels
        written.append(save_grid(samples, out / f"{_slug(r.model)}.png", levels, scale=2))
    return written
