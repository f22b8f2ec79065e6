"""The training-curve plot of a run's log (PIL; matplotlib is not a dependency)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..images import save_image

__all__ = ["plot_training_curves"]

_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def plot_training_curves(
    records: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "", size: tuple[int, int] = (720, 440)
) -> Path:
    """A PNG of the training curve: train and valid bits/dim against steps (other metrics when there are none).

    `records` are the lines of train_log.jsonl (`zoo.eval.trainlog.continued` puts a run that continued earlier
    weights on the lineage's clock: the first of its records marked `continued` gets a line).
    """
    from PIL import Image, ImageDraw, ImageFont

    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    series: dict[str, list[tuple[float, float]]] = {}
    if any("bpd" in r for r in train) or any("bpd" in r for r in valid):
        series["train bits/dim"] = [(r["step"], r["bpd"]) for r in train if r.get("bpd") is not None]
        series["valid bits/dim"] = [(r["step"], r["bpd"]) for r in valid if r.get("bpd") is not None]
        ylabel = "bits/dim"
    else:
        keys = sorted(
            {
                k
                for r in train
                for k, v in r.items()
                if isinstance(v, (int, float)) and k not in ("step", "epoch", "lr", "images_per_s", "grad_norm")
            }
        )
        for k in keys[:6]:
            series[f"train {k}"] = [(r["step"], r[k]) for r in train if isinstance(r.get(k), (int, float))]
        ylabel = "loss"
    series = {k: [(x, y) for x, y in v if math.isfinite(y)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}

    W, H = size
    left, right, top, bottom = 78, 24, 40, 52
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)  # a scalable font where Pillow has FreeType
    except TypeError:  # older Pillow
        font = ImageFont.load_default()
    draw.text((left, 12), title or "training curve", fill="black", font=font)
    points = [p for v in series.values() for p in v]
    if not points:
        draw.text((left, H // 2), "no data logged yet", fill="black", font=font)
        return save_image(img, path)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = 0.05 * (y1 - y0) if y1 > y0 else max(abs(y0) * 0.05, 1e-3)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (W - left - right)

    def py(y: float) -> float:
        return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom)

    for t in _nice_ticks(y0, y1):
        if y0 <= t <= y1:
            draw.line([(left, py(t)), (W - right, py(t))], fill=(230, 230, 230))
            draw.text((6, py(t) - 6), f"{t:.4g}", fill="black", font=font)
    for t in _nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            draw.line([(px(t), H - bottom), (px(t), H - bottom + 4)], fill="black")
            draw.text((px(t) - 10, H - bottom + 8), f"{t:.6g}", fill="black", font=font)
    for r in records:  # where a run continued earlier weights with a fresh optimizer (`--init-from`)
        if r.get("continued") and isinstance(r.get("step"), (int, float)) and x0 <= r["step"] <= x1:
            draw.line([(px(r["step"]), top), (px(r["step"]), H - bottom)], fill=(150, 150, 150))
            draw.text((px(r["step"]) + 4, H - bottom - 18), "restart", fill=(110, 110, 110), font=font)
    draw.rectangle([left, top, W - right, H - bottom], outline="black")
    draw.text(((W - left - right) // 2 + left - 12, H - 20), "step", fill="black", font=font)
    draw.text((6, top - 16), ylabel, fill="black", font=font)
    for i, (label, pts) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        xy = [(px(x), py(y)) for x, y in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for a, b in xy if label.startswith("valid") or len(xy) == 1 else []:
            draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=colour)
        ly = top + 8 + 14 * i
        draw.line([(W - right - 150, ly + 6), (W - right - 130, ly + 6)], fill=colour, width=3)
        draw.text((W - right - 125, ly), label, fill="black", font=font)
    return save_image(img, path)
