"""`speed`: samples/s of the naive and the fast sampler, eval (log_prob) images/s and training images/s.

Timings of this process on this machine: not reproducible, excluded from the
"same seed, same numbers" promise, and under `torchrun` rank 0's are reported.
Sampling is timed on one batch of `min(16, num_samples)` images (the size the
zoo's fast-sampler goal is stated at); eval on up to two batches of the split.
The naive sampler runs one full forward pass per sub-pixel, every pass the same
work, so it is timed on its first `NAIVE_SUBPIXELS` sub-pixels (the rest given
as known) and extrapolated linearly to the whole image; `naive_timed_subpixels`
in the details says on how many. Training is timed on a copy of the model (the
scored weights are untouched): `loss`, backward and an Adam step on two batches of
the split, after one untimed step, at the batch size of the model's default recipe
(`train_batch`; 64 for a model of no registered architecture).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from .harness import EvalContext
from .metric import MetricValue

NAIVE_SUBPIXELS = 56  # two rows of a 28x28 image


def _naive_seconds(model: Any, n: int, g: torch.Generator) -> tuple[float, int]:
    """Seconds the naive sampler takes for `n` whole images, from a run over its first sub-pixels."""
    from ..sampling import after_first_subpixels, device_of, sample

    spec = model.data_spec
    total = spec.channels * spec.height * spec.width
    k = min(NAIVE_SUBPIXELS, total)
    if k == total:
        return _time(lambda: sample(model, n, method="naive", generator=g)), k
    mask = after_first_subpixels(spec, k).to(device_of(model))  # the first k are drawn, the rest known (zeros)
    known = torch.zeros((1, *spec.shape), dtype=torch.long, device=mask.device)
    return _time(lambda: sample(model, n, method="naive", generator=g, known=known, mask=mask)) * total / k, k


def _time(fn: Callable[[], object]) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _recipe_batch(model: Any) -> int:
    from ..errors import UnknownNameError
    from ..registry import get_spec

    try:
        return int(get_spec(model.zoo_name).recipes.get("default", {}).get("batch_size", 64))
    except (AttributeError, UnknownNameError, TypeError):
        return 64


def _train_images_per_s(model: Any, ctx: EvalContext, batch: int) -> float:
    """Images/s of training steps (loss, backward, Adam) on a copy of `model`, on batches of the split."""
    import copy

    x = ctx.split_images()
    x = x.repeat((2 * batch + len(x) - 1) // len(x), 1, 1, 1)[: 2 * batch].to(ctx.device).long()
    twin = copy.deepcopy(model).train()
    opt = torch.optim.Adam(twin.parameters(), lr=1e-4)

    def step(b: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        twin.loss(b).backward()
        opt.step()

    def two_steps() -> None:
        for i in (0, batch):
            step(x[i : i + batch])

    with torch.enable_grad():
        step(x[:batch])  # warm-up
        dt = _time(two_steps)
    return 2 * batch / dt


def speed(ctx: EvalContext) -> MetricValue:
    from ..sampling import has_fast_sampler, sample

    model = ctx.model
    n = min(16, ctx.num_samples)
    details: dict[str, float | int | None] = {
        "sample_batch": n,
        "samples_per_s_naive": None,
        "samples_per_s_fast": None,
        "eval_images_per_s": None,
    }
    best = None
    if callable(getattr(model, "sample", None)):
        g = ctx.generator("speed")
        if callable(getattr(model, "logits", None)):
            seconds, details["naive_timed_subpixels"] = _naive_seconds(model, n, g)
            details["samples_per_s_naive"] = n / seconds
            best = details["samples_per_s_naive"]
            if has_fast_sampler(model):
                details["samples_per_s_fast"] = n / _time(lambda: sample(model, n, method="fast", generator=g))
                best = details["samples_per_s_fast"]
        else:  # not autoregressive: the model's own sampler
            best = details["samples_per_s_model"] = n / _time(lambda: sample(model, n, generator=g))
    if callable(getattr(model, "log_prob", None)):
        x = ctx.split_images()[: 2 * ctx.batch_size]
        batches = [x[i : i + ctx.batch_size].to(ctx.device).long() for i in range(0, x.shape[0], ctx.batch_size)]
        model.log_prob(batches[0])  # warm-up
        dt = _time(lambda: [model.log_prob(b) for b in batches])
        details["eval_images_per_s"] = x.shape[0] / dt
    if callable(getattr(model, "loss", None)):
        batch = details["train_batch"] = _recipe_batch(model)
        details["train_images_per_s"] = _train_images_per_s(model, ctx, batch)
    if best is None:
        return MetricValue("speed", details["eval_images_per_s"], "images/s", None, details, "eval only: not a sampler")
    return MetricValue("speed", best, "samples/s", None, details)
