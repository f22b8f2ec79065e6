"""One raster-order sampling driver for every autoregressive model, naive and fast.

All randomness is drawn up front: one uniform number per sub-pixel, taken from `generator`
before any network runs (`draw_uniforms`). A sub-pixel's level is the inverse CDF of its
conditional distribution at that number (`choose`). The driver visits the sub-pixels in
raster order (rows top to bottom, pixels left to right, channels R, G, B within a pixel),
keeps the known sub-pixels of a completion, and applies the temperature; a model only says
what the logits of the next sub-pixel are. The naive sampler asks `model.logits` (one full
pass per sub-pixel); a fast sampler asks the model's incremental steps. Both go through
the same loop with the same uniforms, so they draw the same images.

FAST SAMPLER CONTRACT

A model with a fast sampler defines `fast_sampler(x, **cond)` and claims the capability
`"fast_sampler"`. The driver (`sample_fast`, used by `zoo.sample` and `model.sample`) calls:

    steps = model.fast_sampler(x, **cond)    # once, under no_grad, in eval mode: IncrementalSteps
    steps.logits(i, j, c) -> (n, levels)     # in raster order, see below
    steps.put(i, j, c, level)                # after each drawn sub-pixel
    steps.row_done(i)                        # after the last pixel of row i

- `x`: `(n, C, H, W)` long, on the model's device: the image sampling starts from, the
  known sub-pixels of a completion set and 0 elsewhere. The steps read it at the start
  (e.g. into their own scaled, padded copy) and never write to it; the driver writes the
  drawn levels into it. `cond`: the conditioning keywords given to `zoo.sample` (e.g. a
  class label `y`); a model raises ValueError for any it does not take.
- `logits(i, j, c)`: float logits `(n, levels)` (any float dtype, on the model's device)
  of sub-pixel `c` of pixel `(i, j)` given every sub-pixel before it: what
  `model.logits(x)[:, c, i, j]` gives for the current `x`, up to float rounding. It is
  called once per drawn sub-pixel, after every earlier sub-pixel is set. A sub-pixel known
  in every image is not drawn and not asked for, except the last channel `C-1` of each
  pixel: `logits(i, j, C-1)` is called for every pixel, known or not, after its channels
  `< C-1` are set, so that the steps can finish their caches of the pixel there (no
  feature of a pixel depends on its own last channel: mask A, then mask B).
- `put(i, j, c, level)`: `level` `(n,)` long on the model's device: sub-pixel `(c, i, j)`
  of every image is now this (drawn, or known where the mask says so). Not called for
  sub-pixels known in every image: they are in `x` from the start.
- `row_done(i)`: every sub-pixel of rows `<= i` is set.

The driver owns the order, the uniforms, the temperature, `choose`, completion, progress,
eval mode and `no_grad`. What must hold: for the same `u` (and `known`, `mask`, `cond`)
the fast sampler returns exactly `sample_naive`'s images. With logits equal up to float
rounding it does, because `choose` builds its CDF in float64 and a uniform almost never
falls within rounding of a CDF step. The test kit checks it for every model that claims
`"fast_sampler"` (zoo.testing's `fast-equals-naive`, run by tests/test_models.py and by a
plugin's own tests; docs/plugins.md documents this contract for plugin authors), with completion,
colour, labels and temperature 0 (tests/test_pixelcnn.py, tests/test_pixelrnn.py, tests/test_sampling.py).

A model that still brings a whole sampler of the previous contract,
`sample_fast(u, *, temperature, known, mask, progress, **cond)`, is called as before, with
a DeprecationWarning (for one release).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch

from .protocols import DataSpec
from .util import is_positive_int

__all__ = [
    "sample",
    "sample_naive",
    "sample_fast",
    "draw_uniforms",
    "prepare_completion",
    "choose",
    "has_fast_sampler",
    "after_first_subpixels",
    "check_sample_args",
    "SampleMethod",
    "IncrementalSteps",
]

METHODS = ("auto", "naive", "fast")


class IncrementalSteps(Protocol):
    """What `model.fast_sampler(x, **cond)` returns: the FAST SAMPLER CONTRACT above, as a type."""

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        """`(n, levels)`: the logits of sub-pixel `(c, i, j)` given every sub-pixel before it."""
        ...

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        """Sub-pixel `(c, i, j)` of every image is now `level` `(n,)` long."""
        ...

    def row_done(self, i: int) -> None:
        """Every sub-pixel of rows `<= i` is set."""
        ...


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
    `temperature=0` picks the most likely level, and so does a temperature so small
    that the scaled logits overflow (1e-310): then the logits are shifted to a maximum
    of 0 before they are divided, so the most likely level keeps probability 1.
    """
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits.double() / temperature
    if not bool(torch.isfinite(scaled).all()):
        shifted = logits.double() - logits.double().max(dim=-1, keepdim=True).values  # 0 at the most likely level
        scaled = shifted / temperature
    probs = torch.softmax(scaled, dim=-1)
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
    """Whether the model brings incremental steps (`fast_sampler`, the contract above), or a
    whole sampler of the previous contract (`sample_fast`)."""
    return callable(getattr(model, "fast_sampler", None)) or callable(getattr(model, "sample_fast", None))


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


def _raster(
    steps: IncrementalSteps,
    x: torch.Tensor,
    u: torch.Tensor,
    temperature: float,
    known: torch.Tensor | None,
    mask: torch.Tensor | None,
    *,
    every_pixel: bool,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    """The one sampling loop: fill `x` `(n, C, H, W)` in raster order from `steps` (the contract above).

    `every_pixel`: also ask for the last channel of a pixel that every image knows (the fast
    samplers finish a pixel's caches there; the naive sampler needs nothing for it).
    """
    n, C, H, W = u.shape
    everywhere = mask.all(0).tolist() if mask is not None else None  # [C][H][W]: known in every image
    with _progress(C * H * W, progress, desc) as bar:
        for i in range(H):
            for j in range(W):
                for c in range(C):
                    all_known = everywhere is not None and everywhere[c][i][j]
                    if all_known and not (every_pixel and c == C - 1):
                        continue
                    logits = steps.logits(i, j, c)  # (n, levels)
                    if all_known:
                        continue
                    level = choose(logits, u[:, c, i, j], temperature)  # (n,)
                    if mask is not None and known is not None:  # (both or neither: checked above)
                        level = torch.where(mask[:, c, i, j], known[:, c, i, j], level)
                    x[:, c, i, j] = level
                    steps.put(i, j, c, level)
                bar.update(C)
            steps.row_done(i)
    return x


def _start_image(
    u: torch.Tensor, device: torch.device, known: torch.Tensor | None, mask: torch.Tensor | None
) -> torch.Tensor:
    """`(n, C, H, W)` long on `device`: the known sub-pixels, 0 elsewhere."""
    x = torch.zeros(u.shape, dtype=torch.long, device=device)
    return x if mask is None or known is None else torch.where(mask, known, x)


class _NaiveSteps:
    """The contract above met by one full `model.logits` pass per sub-pixel."""

    def __init__(self, model: Any, x: torch.Tensor, cond: dict[str, Any]):
        self.model, self.x, self.cond = model, x, cond  # `x` is the driver's image, filled as it goes

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        return self.model.logits(self.x, **self.cond)[:, c, i, j]  # (n, levels)

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        pass  # already in `x`

    def row_done(self, i: int) -> None:
        pass


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
    """Ancestral sampling with one full `logits` pass per sub-pixel: `(n, C, H, W)` long.

    `u` is `(n, C, H, W)` from `draw_uniforms`; `known`/`mask` come from
    `prepare_completion`. Sub-pixels known in every image are skipped.
    """
    x = _start_image(u, device_of(model), known, mask)
    return _raster(
        _NaiveSteps(model, x, cond),
        x,
        u,
        temperature,
        known,
        mask,
        every_pixel=False,
        progress=progress,
        desc="naive sampling",
    )


@torch.no_grad()
def sample_fast(
    model: Any,
    u: torch.Tensor,
    *,
    temperature: float = 1.0,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    progress: bool = False,
    **cond: Any,
) -> torch.Tensor:
    """The model's fast sampler (the contract above) on the same arguments as `sample_naive`,
    with the same result."""
    if not callable(getattr(model, "fast_sampler", None)):
        if not callable(getattr(model, "sample_fast", None)):
            raise ValueError(f"{type(model).__name__} has no fast sampler; use method='naive' or 'auto'")
        warnings.warn(
            f"{type(model).__name__}.sample_fast (a whole sampler) is the previous fast-sampler "
            "contract; implement fast_sampler(x, **cond) (zoo/sampling.py) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        return model.sample_fast(u, temperature=temperature, known=known, mask=mask, progress=progress, **cond)
    x = _start_image(u, device_of(model), known, mask)
    steps = model.fast_sampler(x, **cond)
    return _raster(steps, x, u, temperature, known, mask, every_pixel=True, progress=progress, desc="fast sampling")


def check_sample_args(n: Any, temperature: Any) -> None:
    """The checks every sampler makes: `n` a positive int, `temperature` a finite number >= 0
    (nan and inf raise `ValueError` too)."""
    if not is_positive_int(n):
        raise ValueError(f"n must be a positive int, got {n!r}")
    if (
        not isinstance(temperature, (int, float))
        or isinstance(temperature, bool)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")


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

    A model without `logits` (e.g. a GAN) draws its own images: its `draw(n, *, generator,
    temperature, known, mask, **cond)` is called, or else its own `sample`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_sample_args(n, temperature)
    if not callable(getattr(model, "logits", None)):
        if method == "fast" or method == "naive":
            raise ValueError(
                f"method={method!r} applies to autoregressive models; {type(model).__name__} has no logits()"
            )
        draw = getattr(model, "draw", None)
        if draw is None:
            if isinstance(model, SampleMethod):
                raise TypeError(f"{type(model).__name__} has neither logits() nor draw(): it cannot sample")
            draw = model.sample  # a Sampler with a `sample` of its own
        return draw(n, generator=generator, temperature=temperature, known=known, mask=mask, **cond)
    fast = has_fast_sampler(model)
    if method == "fast" and not fast:
        raise ValueError(f"{type(model).__name__} has no fast sampler; use method='naive' or 'auto'")
    spec: DataSpec = model.data_spec
    device = device_of(model)
    u = draw_uniforms(n, spec, generator).to(device)
    known_t, mask_t = prepare_completion(spec, n, known, mask, device)
    sampler: Callable[..., torch.Tensor] = sample_naive if method == "naive" or not fast else sample_fast
    with eval_mode(model), torch.no_grad():
        return sampler(model, u, temperature=temperature, known=known_t, mask=mask_t, progress=progress, **cond)


class SampleMethod:
    """Gives a model class the public `model.sample(n, ...)`: `zoo.sample(model, n, ...)`.

    Autoregressive models get it through `zoo.AutoregressiveModel`; a model that draws
    its own way (a GAN) inherits it and implements `draw` (see `sample`).
    """

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        method: str = "auto",
        progress: bool = False,
        **cond: Any,
    ) -> torch.Tensor:
        """`n` images `(n, C, H, W)` of integer levels; see `zoo.sample`."""
        return sample(
            self,
            n,
            method=method,
            generator=generator,
            temperature=temperature,
            known=known,
            mask=mask,
            progress=progress,
            **cond,
        )
