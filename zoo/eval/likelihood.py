"""`nll`: the exact negative log-likelihood of the split, in nats per image and bits per dimension.

Every image's log-likelihood is computed in float32 by the model, then the mean
and its standard error are taken in float64 over the gathered per-image values
(in the order of the split, whatever the number of processes).
"""

from __future__ import annotations

import math

import torch

from .metric import MetricValue


def per_image_log_prob(ctx) -> torch.Tensor:
    """`log p(x)` in nats of every image of the split: `(N,)` float64, cached in the context."""
    if "log_prob" not in ctx.cache:
        x = ctx.split_images()
        model = ctx.model

        def lp(b: int, start: int, stop: int) -> torch.Tensor:
            out = model.log_prob(x[start:stop].to(ctx.device).long())
            if out.shape != (stop - start,):
                raise ValueError(f"log_prob returned shape {tuple(out.shape)}; expected ({stop - start},), one value per image")
            return out.double()

        ctx.cache["log_prob"] = ctx.map_batches(lp, x.shape[0], desc="nll")
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
