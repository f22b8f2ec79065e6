"""`nll`: the exact negative log-likelihood of the split, in nats per image and bits per dimension.

Every image's log-likelihood is computed in float32 by the model, then the mean
and its standard error are taken in float64 over the gathered per-image values
(in the order of the split, whatever the number of processes).
"""

from __future__ import annotations

import math

import torch

from ..distributed import map_batches
from .metric import MetricValue


def log_prob_per_image(model, images: torch.Tensor, *, batch_size: int, device: torch.device,
                       labels: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """`log p(x)` in nats of each of `images` (given `labels` for a class-conditional model): `(N,)` float64.

    The one NLL loop of the zoo (the harness's `nll` and training's validation use it):
    batches of `batch_size` sharded over the processes and gathered in order.
    """

    def lp(b: int, start: int, stop: int) -> torch.Tensor:
        x = images[start:stop].to(device).long()
        if labels is None:
            out = model.log_prob(x)
        else:
            out = model.log_prob(x, y=labels[start:stop].to(device))
        if out.shape != (stop - start,):
            raise ValueError(f"log_prob returned shape {tuple(out.shape)}; expected ({stop - start},), one value per image")
        return out.double()

    return map_batches(lp, images.shape[0], batch_size, desc="nll", progress=progress)


def per_image_log_prob(ctx) -> torch.Tensor:
    """`log p(x)` in nats of every image of the split: `(N,)` float64, cached in the context."""
    if "log_prob" not in ctx.cache:
        ctx.cache["log_prob"] = log_prob_per_image(ctx.model, ctx.split_images(), batch_size=ctx.batch_size,
                                                   device=ctx.device, progress=ctx.progress)
    return ctx.cache["log_prob"]


def summarize(log_prob: torch.Tensor, dims: int) -> dict[str, float]:
    """Mean NLL (nats/image), its standard error, and both in bits/dim."""
    nll = -log_prob.double()
    n = nll.numel()
    mean = float(nll.mean())
    stderr = float(nll.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    scale = 1.0 / (dims * math.log(2))
    return {"nats": mean, "stderr": stderr, "bits_per_dim": mean * scale, "stderr_bits_per_dim": stderr * scale, "n": n}


def nll(ctx) -> MetricValue:
    lp = per_image_log_prob(ctx)
    if not torch.isfinite(lp).all():
        bad = int((~torch.isfinite(lp)).sum())
        raise ValueError(f"the model gave a non-finite log-likelihood for {bad} of {lp.numel()} images")
    s = summarize(lp, ctx.data_spec.dims)
    return MetricValue("nll", s["nats"], "nats", s["stderr"],
                       {"bits_per_dim": s["bits_per_dim"], "stderr_bits_per_dim": s["stderr_bits_per_dim"], "n": s["n"]})
