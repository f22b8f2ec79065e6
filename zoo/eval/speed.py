"""`speed`: samples/s of the naive and the fast sampler, and eval (log_prob) images/s.

Timings of this process on this machine: not reproducible, excluded from the
"same seed, same numbers" promise, and under `torchrun` rank 0's are reported.
Sampling is timed on one batch of `min(16, num_samples)` images (the size the
zoo's fast-sampler goal is stated at); eval on up to two batches of the split.
"""

from __future__ import annotations

import time

import torch

from .metric import MetricValue


def _time(fn) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def speed(ctx) -> MetricValue:
    from ..sampling import has_fast_sampler, sample

    model = ctx.model
    n = min(16, ctx.num_samples)
    details: dict[str, float | int | None] = {"sample_batch": n, "samples_per_s_naive": None,
                                              "samples_per_s_fast": None, "eval_images_per_s": None}
    best = None
    if callable(getattr(model, "sample", None)):
        g = ctx.generator("speed")
        if callable(getattr(model, "logits", None)):
            details["samples_per_s_naive"] = n / _time(lambda: sample(model, n, method="naive", generator=g))
            best = details["samples_per_s_naive"]
            if has_fast_sampler(model):
                details["samples_per_s_fast"] = n / _time(lambda: sample(model, n, method="fast", generator=g))
                best = details["samples_per_s_fast"]
        else:  # not autoregressive: the model's own sampler
            best = details["samples_per_s_model"] = n / _time(lambda: sample(model, n, generator=g))
    if callable(getattr(model, "log_prob", None)):
        x = ctx.split_images()[: 2 * ctx.batch_size]
        batches = [x[i:i + ctx.batch_size].to(ctx.device).long() for i in range(0, x.shape[0], ctx.batch_size)]
        model.log_prob(batches[0])  # warm-up
        dt = _time(lambda: [model.log_prob(b) for b in batches])
        details["eval_images_per_s"] = x.shape[0] / dt
    if best is None:
        return MetricValue("speed", details["eval_images_per_s"], "images/s", None, details, "eval only: not a sampler")
    return MetricValue("speed", best, "samples/s", None, details)
