"""`nll`: the negative log-likelihood of the split, in nats per image and bits per dimension.

Exact for a `Likelihood` (`log_prob`). For a `BoundedLikelihood` (`log_prob_bound`, a VAE) it is
the importance-weighted bound with `k` samples, reported as an UPPER bound on the NLL: the
value carries `details["bound"] = "upper"` and `details["k"]`, and prints as `≤ 86.3`.

Every image's (bound on the) log-likelihood is computed in float32 by the model, then the mean
and its standard error are taken in float64 over the gathered per-image values (in the order of
the split, whatever the number of processes). A bound is a Monte Carlo estimate: batch b draws
its samples from a generator seeded by `(seed, "bound", k, b)`, so a seed gives the same number
in one process and under torchrun; its standard error over images includes the sampling noise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..distributed import map_batches
from ..errors import ArgumentError
from ..protocols import is_bounded
from ..util import write_atomic
from .distributed import derive_seed
from .harness import EvalContext
from .metric import MetricValue

# importance samples of `zoo eval --iw-samples` by default: Burda et al. 2016 report their bounds at k=5000
DEFAULT_IW_SAMPLES = 5000


def log_prob_per_image(
    model: Any,
    images: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
    progress: bool = False,
    iw_samples: int = DEFAULT_IW_SAMPLES,
    seed: int = 0,
    parts: Path | None = None,
) -> torch.Tensor:
    """`log p(x)` in nats of each of `images` (given `labels` for a class-conditional model): `(N,)` float64;
    for a bounded model, its lower bound with `iw_samples` importance samples (seeded by `seed`).

    The one NLL loop of the zoo (the harness's `nll` and training's validation use it):
    batches of `batch_size` sharded over the processes and gathered in order. With `parts` (a folder
    `pin_parts` has checked), batch b's values are read from `parts/batch-{b:05d}.json` when that file
    exists, else computed and written there at once: a score stopped part-way goes on where it left off.
    """
    bounded = is_bounded(model)

    def lp(b: int, start: int, stop: int) -> torch.Tensor:
        part = None if parts is None else parts / f"batch-{b:05d}.json"
        if part is not None and part.is_file():
            return read_part(part, start, stop - start)
        y = None if labels is None else labels[start:stop].to(device)
        out = batch_log_prob(model, images[start:stop].to(device), b, labels=y, iw_samples=iw_samples, seed=seed)
        if part is not None:
            write_atomic(part, json.dumps({"batch": b, "start": start, "log_prob": out.tolist()}) + "\n")
        return out

    return map_batches(
        lp, images.shape[0], batch_size, desc=f"nll (bound, k={iw_samples})" if bounded else "nll", progress=progress
    )


def pin_parts(parts: str | Path, pin: dict[str, Any]) -> Path:
    """Make `parts` the folder of one evaluation's per-batch values: `pin` (what names the numbers: the weights,
    data, subset, seed, batch size, k) is written to `parts/pin.json`, or must equal the one there."""
    parts = Path(parts)
    pin_file = parts / "pin.json"
    if pin_file.is_file():
        there = _read_json(pin_file, "pin")
        changed = pin_difference(pin, there)
        if changed:
            raise ArgumentError(
                f"{parts} holds the parts of another evaluation ({', '.join(f'{k}: {there.get(k)!r}' for k in changed)}"
                f"; this one has {', '.join(f'{k}: {pin.get(k)!r}' for k in changed)}); pick another folder"
            )
        return parts
    parts.mkdir(parents=True, exist_ok=True)
    write_atomic(pin_file, json.dumps(pin, indent=1) + "\n")
    return parts


def pin_difference(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The names on which two pins of `pin_parts` differ, sorted."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def read_part(part: Path, start: int, count: int | None = None) -> torch.Tensor:
    """The values of one batch file of a parts folder, `(count,)` float64; it must begin at image `start` (and,
    with `count`, hold that many)."""
    saved = _read_json(part, "batch")
    values = saved.get("log_prob")
    if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
        raise ArgumentError(f"{part} holds no list of values under 'log_prob'; remove it to score its images again")
    if saved.get("start") != start or count not in (None, len(values)):
        held = "" if count is None else f"..{start + count - 1}"
        raise ArgumentError(f"{part} does not hold images {start}{held}; remove it to score them again")
    return torch.tensor(values, dtype=torch.float64)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A `--parts` folder's JSON object `path` (its pin, or a batch's values), or a clear error."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArgumentError(f"cannot read the {what} file {path} of a parts folder: {e}") from None
    if not isinstance(data, dict):
        raise ArgumentError(f"the {what} file {path} of a parts folder holds no JSON object")
    return data


def read_parts(parts: str | Path) -> tuple[dict[str, Any], torch.Tensor]:
    """A finished parts folder: its pin and every image's `log p(x)` (or bound), `(N,)` float64 in the order of the
    split. Refuses a folder with a batch missing or of the wrong size, or with fewer images than its `--limit`
    (a whole split's folder is taken as finished at its last file: the split's size is the dataset's)."""
    parts = Path(parts)
    if not (parts / "pin.json").is_file():
        raise ArgumentError(f"{parts} is not a parts folder of `zoo eval --parts` (it has no pin.json)")
    pin = _read_json(parts / "pin.json", "pin")
    files = sorted(parts.glob("batch-*.json"))
    values: list[torch.Tensor] = []
    start = 0
    for b, part in enumerate(files):
        if part.name != f"batch-{b:05d}.json":
            raise ArgumentError(f"{parts}: batch {b} (images from {start}) is missing; finish it with its zoo eval")
        values.append(read_part(part, start, pin["batch_size"] if b + 1 < len(files) else None))
        start += values[-1].numel()
    if start == 0 or (pin.get("limit") is not None and start != pin["limit"]):
        held = f"{start} of the {pin['limit']}" if pin.get("limit") is not None else "none of the"
        raise ArgumentError(f"{parts} holds {held} images; finish it with its zoo eval --parts")
    return pin, torch.cat(values)


def batch_log_prob(
    model: Any,
    x: torch.Tensor,
    b: int,
    *,
    labels: torch.Tensor | None = None,
    iw_samples: int = DEFAULT_IW_SAMPLES,
    seed: int = 0,
) -> torch.Tensor:
    """`log p(x)` in nats of the images `x` `(B, C, H, W)` of batch number `b` of a split: `(B,)` float64.
    For a bounded model, its lower bound with `iw_samples` samples from a generator seeded by
    `(seed, "bound", iw_samples, b)`: the same batch number gives the same draw in any process."""
    x = x.long()
    if is_bounded(model):
        if labels is not None:
            raise ValueError(f"{type(model).__name__} is scored by a bound and takes no labels")
        g = torch.Generator().manual_seed(derive_seed(seed, "bound", iw_samples, b))
        out = model.log_prob_bound(x, iw_samples, generator=g)
        kind = "log_prob_bound"
    else:
        out = model.log_prob(x) if labels is None else model.log_prob(x, y=labels)
        kind = "log_prob"
    if out.shape != (x.shape[0],):
        raise ValueError(f"{kind} returned shape {tuple(out.shape)}; expected ({x.shape[0]},), one value per image")
    return out.double()


def per_image_log_prob(ctx: EvalContext) -> torch.Tensor:
    """`log p(x)` (or its bound) in nats of every image of the split: `(N,)` float64, cached in the context."""
    if "log_prob" not in ctx.cache:
        ctx.cache["log_prob"] = log_prob_per_image(
            ctx.model,
            ctx.split_images(),
            batch_size=ctx.batch_size,
            device=ctx.device,
            progress=ctx.progress,
            iw_samples=ctx.iw_samples,
            seed=ctx.seed,
            parts=ctx.parts,
        )
    return ctx.cache["log_prob"]


def summarize(log_prob: torch.Tensor, dims: int) -> dict[str, float]:
    """Mean NLL (nats/image), its standard error, and both in bits/dim."""
    mean, stderr = mean_stderr(-log_prob)
    scale = 1.0 / (dims * math.log(2))
    return {
        "nats": mean,
        "stderr": stderr,
        "bits_per_dim": mean * scale,
        "stderr_bits_per_dim": stderr * scale,
        "n": log_prob.numel(),
    }


def mean_stderr(v: torch.Tensor) -> tuple[float, float]:
    """The mean of the values `v` `(N,)` and its standard error (nan for one value), in float64."""
    v = v.double()
    n = v.numel()
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")


def nll(ctx: EvalContext) -> MetricValue:
    lp = per_image_log_prob(ctx)
    if not torch.isfinite(lp).all():
        bad = int((~torch.isfinite(lp)).sum())
        raise ValueError(f"the model gave a non-finite log-likelihood for {bad} of {lp.numel()} images")
    s = summarize(lp, ctx.data_spec.dims)
    details: dict[str, Any] = {
        "bits_per_dim": s["bits_per_dim"],
        "stderr_bits_per_dim": s["stderr_bits_per_dim"],
        "n": s["n"],
    }
    if is_bounded(ctx.model):
        details.update({"bound": "upper", "k": ctx.iw_samples})
    return MetricValue("nll", s["nats"], "nats", s["stderr"], details)
