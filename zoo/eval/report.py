"""`zoo eval --report DIR`: a Markdown leaderboard and a sample grid per model."""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..images import save_image
from ..util import write_atomic
from .metric import MetricValue
from .result import EvalResult, published_mark

__all__ = ["write_report", "write_overview", "leaderboard_markdown"]


NOTES = (
    (
        ("nll",),
        "nll: negative log-likelihood, mean over the split ± standard error; bits/dim = nats / (C·H·W·ln 2). "
        "Exact for the exact-likelihood models; for the bounded ones (a VAE) an upper bound, marked ≤, from the "
        "importance-weighted bound with the k samples shown (a larger k gives a tighter bound: a release card "
        "may give one), ranked only within its group.",
    ),
    (
        ("fid", "precision", "recall"),
        "fid, precision, recall: in the features of the zoo's reference classifier for "
        "the dataset (not Inception); the fid floor is the FID of as many real train "
        "images as samples.",
    ),
    (
        ("parzen",),
        "parzen: Gaussian Parzen-window log-density (Goodfellow et al. 2014 protocol), a weak estimator; "
        "not comparable with nll.",
    ),
    (
        ("speed",),
        "speed: timings of one run on the device above; train images/s: loss, backward and an Adam step "
        "at the model's recipe batch size.",
    ),
    (
        ("train-time",),
        "train-time: the release's training wall time to 85 nats on the validation split, from its "
        "train_log.jsonl, on the hardware its card names (not this run's).",
    ),
)


def _cell(v: MetricValue | None, detail: str | None = None) -> str:
    if v is None:
        return "-"
    if v.value is None:
        return f"n/a ({v.note})" if v.note and detail is None else "n/a"
    if detail is not None:
        x = v.details.get(detail)
        return "-" if x is None else f"{x:.4f}"
    text = v.short().removesuffix(v.unit).strip()
    if v.bound and v.details.get("k") is not None:
        text += f" (k={v.details['k']})"  # a bound is only as tight as its k: a card may give a larger one
    if v.name == "fid" and v.details.get("floor") is not None:
        text += f" (floor {v.details['floor']:.2f})"
    return text


# The three families of generative models the harness tells apart, in the leaderboard's order.
DENSITY_GROUPS = (
    ("exact", "Exact likelihood (autoregressive): nll is the exact value"),
    ("bound", "Bounded likelihood (latent variable): nll ≤ the value shown, an upper bound"),
    ("implicit", "Implicit (samples only): no nll"),
)


def density_of(r: EvalResult) -> str:
    """ "exact", "bound" or "implicit": from the harness's provenance, else (older results) from the nll."""
    if r.provenance.get("density"):
        return str(r.provenance["density"])
    v = r.metrics.get("nll")
    if v is None:
        return "exact"
    if v.value is None:
        return "implicit" if v.note.startswith("implicit") else "exact"
    return "bound" if v.bound else "exact"


def _rate(x: Any) -> str:
    return "-" if x is None else (f"{x:.3g}" if x < 10 else f"{x:,.0f}")


def _speed_cells(v: MetricValue | None) -> list[str]:
    """samples/s fast (or a non-autoregressive model's own sampler, marked †), samples/s naive, eval images/s,
    train images/s."""
    if v is None:
        return ["-", "-", "-", "-"]
    d = v.details
    fast = _rate(d.get("samples_per_s_fast"))
    if d.get("samples_per_s_model") is not None:
        fast = _rate(d["samples_per_s_model"]) + " †"
    return [
        fast,
        _rate(d.get("samples_per_s_naive")),
        _rate(d.get("eval_images_per_s")),
        _rate(d.get("train_images_per_s")),
    ]


def _reference_cell(r: EvalResult, metric: str) -> str:
    ref = r.provenance.get("reference") or {}
    v = r.metrics.get(metric)
    mark = published_mark(ref, bound=v is not None and v.bound == "upper")
    return "-" if ref.get(metric) is None else f"{mark}{ref[metric]:.2f}"


def leaderboard_markdown(
    results: Iterable[EvalResult], *, title: str | None = "# Leaderboard", command: str | None = None
) -> str:
    """One row per model: each metric with its unit, the published number beside nll (and parzen),
    and the speed metric as three columns. Everything comes from the results (and their provenance).
    Results of more than one family (exact, bound, implicit: `density_of`) go in one table per family,
    under its name, so that a bound is never ranked in one column with exact values."""
    results = list(results)
    names: list[str] = []
    for r in results:
        names += [m for m in r.metrics if m not in names]
    has_ref = {
        m: any((r.provenance.get("reference") or {}).get(m) is not None for r in results) for m in ("nll", "parzen")
    }
    header = ["model", "weights"]
    cells: list[Callable[..., str]] = []  # one function per column, result -> text
    for m in names:
        unit = next(r.metrics[m].unit for r in results if m in r.metrics)
        if m == "speed":
            header += ["samples/s (fast)", "samples/s (naive)", "eval images/s", "train images/s"]
            cells += [lambda r, i=i: _speed_cells(r.metrics.get("speed"))[i] for i in range(4)]
            continue
        header.append(f"{m} ({unit})" if unit else m)
        cells.append(lambda r, m=m: _cell(r.metrics.get(m)))
        if has_ref.get(m):
            header.append(f"{m} published")
            cells.append(lambda r, m=m: _reference_cell(r, m))
        if m == "nll":
            header.append("nll (bits/dim)")
            cells.append(lambda r: _cell(r.metrics.get("nll"), "bits_per_dim"))
    groups = [(label, [r for r in results if density_of(r) == key]) for key, label in DENSITY_GROUPS]
    groups = [(label, rows) for label, rows in groups if rows]
    known = {key for key, _ in DENSITY_GROUPS}
    groups += (
        [("Other", [r for r in results if density_of(r) not in known])]
        if any(density_of(r) not in known for r in results)
        else []
    )
    lines = []
    for label, group in groups:
        if len(groups) > 1:
            lines += [f"**{label}**", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in group:
            w = str(r.provenance.get("weights", ""))
            row = [f"`{r.model}`", w if w == "random init" else f"`{w[:12]}`", *(f(r) for f in cells)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines.pop()
    first = results[0].provenance if results else {}
    day = str(first.get("finished_at", ""))[:10] or _dt.date.today().isoformat()
    about = (
        f"Dataset `{first.get('dataset')}`, split `{first.get('split')}` (n = {first.get('n')}, "
        f"checksum `{str(first.get('dataset_checksum', ''))[:12]}`), seed {first.get('seed')}, "
        f"{first.get('num_samples') or 0} samples per model for the sample metrics, "
        f"zoo {first.get('versions', {}).get('zoo')}, torch {first.get('versions', {}).get('torch')}, "
        f"device {first.get('device')}, {day}."
    )
    notes = [text for keys, text in NOTES if set(names) & set(keys)]
    sources = sorted(
        {
            f"{m} published, `{r.model}`: {ref['source']}" + ("" if ref.get("comparable", True) else ", not comparable")
            for r in results
            for ref in [r.provenance.get("reference") or {}]
            for m in ("nll", "parzen")
            if ref.get(m) is not None and ref.get("source")
        }
    )
    if sources:
        notes.append("published numbers: " + "; ".join(sources) + ".")
    if "speed" in names:
        notes.append(
            "samples/s (naive): one full forward pass per sub-pixel, timed on the first "
            "sub-pixels and extrapolated; † the model's own sampler (a GAN's or a VAE's), which has no fast/naive pair."
        )
    out = [title, ""] if title else []
    if command:
        notes.append(f"regenerate: `{command}`")
    return "\n".join([*out, about, "", *lines, "", *(f"- {n}" for n in notes), ""])


def _label_strip(text: str, height: int, width: int) -> Any:
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, height // 2 - 6), text, fill=(0, 0, 0))
    return strip


def write_overview(results: Iterable[EvalResult], path: str | Path, *, per_row: int = 8, scale: int = 2) -> Path | None:
    """One picture: per model, a row of samples and a row of lower-half completions (the upper half
    is a split image, given; a red line marks where the model takes over). None if nothing to show."""
    import numpy as np
    from PIL import Image

    from ..images import make_grid
    from ..protocols import DataSpec

    rows: list[tuple[str, Any]] = []
    for r in results:
        levels = DataSpec.from_dict(r.provenance["data_spec"]).levels
        if getattr(r, "samples", None) is not None:
            rows.append((f"{r.model}\nsamples", make_grid(r.samples[:per_row], levels, nrow=per_row, scale=scale)))
        if getattr(r, "completions", None) is not None:
            given, done = r.completions
            g = make_grid(done[:per_row], levels, nrow=per_row, scale=scale)
            if g.shape[-1] == 1:
                g = g.repeat(3, -1)
            pad, h = 2 * scale, given.shape[-2] * scale
            g[pad + h // 2, :, :] = (220, 0, 0)  # the boundary: above it given, below it drawn
            rows.append((f"{r.model}\ncompletions", g))
    if not rows:
        return None
    label_w = 170
    width = label_w + max(g.shape[1] for _, g in rows)
    height = sum(g.shape[0] for _, g in rows)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for text, g in rows:
        img = Image.fromarray(np.ascontiguousarray(g[..., 0] if g.shape[-1] == 1 else g)).convert("RGB")
        canvas.paste(_label_strip(text, g.shape[0], label_w), (0, y))
        canvas.paste(img, (label_w, y))
        y += g.shape[0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(canvas, path)
    return path


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_report(results: Iterable[EvalResult], out_dir: str | Path, *, command: str | None = None) -> list[Path]:
    """Write `leaderboard.md`, `results.json`, `<model>.png` (when samples were kept) and `overview.png`
    (a row of samples and a row of lower-half completions per model) into `out_dir`."""
    from ..images import save_grid
    from ..protocols import DataSpec

    results = list(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "leaderboard.md", out / "results.json"]
    write_atomic(written[0], leaderboard_markdown(results, command=command))
    write_atomic(written[1], json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    for r in results:
        samples = getattr(r, "samples", None)
        if samples is None:
            continue
        levels = DataSpec.from_dict(r.provenance["data_spec"]).levels
        written.append(save_grid(samples, out / f"{_slug(r.model)}.png", levels, scale=2))
    overview = write_overview(results, out / "overview.png")
    if overview is not None:
        written.append(overview)
    return written
