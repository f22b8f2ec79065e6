"""Sampling for every autoregressive model, derived from `logits` alone.

All randomness is drawn up front: one uniform number per sub-pixel, taken from
`generator` before any network runs. A sub-pixel's level is the inverse CDF of
its conditional distribution at that number. A fast sampler that computes the
same conditionals another way therefore draws exactly the same images as the
naive sampler here, whatever order it evaluates things in.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from .protocols import DataSpec

__all__ = ["sample", "sample_naive", "draw_uniforms", "prepare_completion", "choose", "has_fast_sampler",
           "after_first_subpixels"]

METHODS = ("auto", "naive", "fast")


def draw_uniforms(n: int, spec: DataSpec, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniform in [0, 1) per sub-pixel: `(n, C, H, W)`, float64, on the CPU.

    Drawn on the CPU so that a seed gives the same images on every device.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
    return torch.rand((n, *spec.shape), generator=generator, dtype=torch.float64)


def choose(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Pick a level for each row of `logits` `(N, L)` by inverse CDF at `u` `(N,)`.

    The CDF is computed in float64 so that tiny differences between two ways of
    computing the same logits almost never change the level picked.
    `temperature=0` picks the most likely level.
    """
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    levels = (cdf < u.to(cdf.device, torch.float64).unsqueeze(-1)).sum(-1)
    return levels.clamp_(max=logits.shape[-1] - 1)


def prepare_completion(
    spec: DataSpec, n: int, known: Any, mask: Any, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Check `known`/`mask` and broadcast them to `(n, C, H, W)`.

    `known`: integer levels `(n, C, H, W)` or one image `(C, H, W)`.
    `mask`: boolean, True where a sub-pixel is known; any shape that broadcasts
    to `(n, C, H, W)`, e.g. `(H, W)` for whole pixels.
    """
    if known is None and mask is None:
        return None, None
    if known is None or mask is None:
        raise ValueError("image completion needs both `known` (integer levels) and `mask` (bool, True = known)")
    if not isinstance(known, torch.Tensor):
        raise ValueError(f"known: expected an integer tensor, got {type(known).__name__}")
    if known.ndim == 3:
        spec.validate(known, name="known", batch=False)
        known = known.unsqueeze(0).expand(n, *spec.shape)
    else:
        spec.validate(known, name="known")
        if known.shape[0] not in (1, n):
            raise ValueError(f"known: expected a batch of 1 or n={n} images, got {known.shape[0]}")
        known = known.expand(n, *spec.shape)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask: expected a bool tensor (True = known sub-pixel), got {got}")
    try:
        mask = torch.broadcast_to(mask, (n, *spec.shape))
    except RuntimeError:
        raise ValueError(
            f"mask: shape {tuple(mask.shape)} does not broadcast to {(n, *spec.shape)}; "
            "use (H, W) for whole pixels or (n, C, H, W)"
        ) from None
    return known.to(device=device, dtype=torch.long).contiguous(), mask.to(device).contiguous()


def after_first_subpixels(spec: DataSpec, k: int) -> torch.Tensor:
    """A (C, H, W) bool mask, True from the (k+1)-th sub-pixel on in the sampling order (row, column,
    then channel): as a completion mask it samples the first k sub-pixels and keeps the rest known.
    The naive sampler's time is timed this way on a few sub-pixels and extrapolated."""
    order = torch.arange(spec.height * spec.width * spec.channels).view(spec.height, spec.width, spec.channels)
    return order.permute(2, 0, 1) >= k


def has_fast_sampler(model: Any) -> bool:
    """Whether the model brings its own incremental sampler (`sample_fast`)."""
    return callable(getattr(model, "sample_fast", None))


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Put `model` in eval mode for the block and restore its mode afterwards."""
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def device_of(model: Any) -> torch.device:
    """The device of a model's first parameter (CPU for a model without any)."""
    for p in getattr(model, "parameters", lambda: ())():
        return p.device
    return torch.device("cpu")


def _progress(total: int, show: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, desc=desc, unit="sub-pixel", leave=False)


@torch.no_grad()
def sample_naive(
    model: Any,
    u: torch.Tensor,
    *,
    temperature: float = 1.0,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    progress: bool = False,
    **cond: Any,
) -> torch.Tensor:
    """Ancestral sampling with one full `logits` pass per sub-pixel.

    `u` is `(n, C, H, W)` from `draw_uniforms`; `known`/`mask` come from
    `prepare_completion`. Pixels known in every image are skipped.
    """
    n, C, H, W = u.shape
    device = device_of(model)
    x = torch.zeros((n, C, H, W), dtype=torch.long, device=device)
    if mask is not None:
        x = torch.where(mask, known, x)
    with _progress(C * H * W, progress, "naive sampling") as bar:
        for i in range(H):
            for j in range(W):
                for c in range(C):
                    bar.update(1)
                    if mask is not None and bool(mask[:, c, i, j].all()):
                        continue
                    logits = model.logits(x, **cond)[:, c, i, j]  # (n, levels)
                    level = choose(logits, u[:, c, i, j], temperature)
                    if mask is not None:
                        level = torch.where(mask[:, c, i, j], known[:, c, i, j], level)
                    x[:, c, i, j] = level
    return x


def sample(
    model: Any,
    n: int,
    *,
    method: str = "auto",
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    progress: bool = False,
    **cond: Any,
) -> torch.Tensor:
    """Draw `n` images `(n, C, H, W)` of integer levels from `model`.

    `method`: "naive" (one pass per sub-pixel, any autoregressive model),
    "fast" (the model's own incremental sampler) or "auto" (fast when the
    model has one). Both give the same images for the same `generator`.
    With `known` and a boolean `mask` (True = known) the known sub-pixels are
    kept and the rest completed. Extra keyword arguments (e.g. a class label
    `y`) go to the model.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    if not callable(getattr(model, "logits", None)):
        # Not autoregressive (e.g. a GAN): the model samples its own way.
        if method == "fast" or method == "naive":
            raise ValueError(f"method={method!r} applies to autoregressive models; {type(model).__name__} has no logits()")
        return model.sample(n, generator=generator, temperature=temperature, known=known, mask=mask, **cond)
    fast = has_fast_sampler(model)
    if method == "fast" and not fast:
        raise ValueError(f"{type(model).__name__} has no fast sampler; use method='naive' or 'auto'")
    spec: DataSpec = model.data_spec
    device = device_of(model)
    u = draw_uniforms(n, spec, generator).to(device)
    known_t, mask_t = prepare_completion(spec, n, known, mask, device)
    with eval_mode(model), torch.no_grad():
        if method == "naive" or not fast:
            return sample_naive(model, u, temperature=temperature, known=known_t, mask=mask_t, progress=progress, **cond)
        return model.sample_fast(u, temperature=temperature, known=known_t, mask=mask_t, progress=progress, **cond)
