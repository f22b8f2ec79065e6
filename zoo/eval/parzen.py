"""`parzen`: the Gaussian Parzen-window log-likelihood of the split under samples.

The protocol of Goodfellow et al. 2014 (Generative Adversarial Nets, Table 1),
for any sampler, the GAN included: put an isotropic Gaussian of width sigma on
each of N samples (pixel intensities scaled to [0, 1]), choose sigma on the
validation split from the grid 10^linspace(-1, 0, 10), then report the mean
log-density of the evaluated split and its standard error:

    log p(x) = logsumexp_i(-|x - s_i|^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2)

This is a log-*density* of continuous vectors, in nats, not a probability of
the discrete images: it is not comparable with `nll`, and can be positive.

It is a weak estimator (Theis, van den Oord & Bethge 2016, "A note on the
evaluation of generative models"): in 784 dimensions it needs far more samples
than anyone draws, it is biased low for a good model and can rank a model that
memorises k-means centroids of the training set above the true distribution.
The zoo reports it only to compare with the GAN literature.
"""

from __future__ import annotations

import math

import torch

from .harness import EvalContext
from .metric import MetricValue

SIGMAS = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))


def _flat(images: torch.Tensor, levels: int) -> torch.Tensor:
    return images.reshape(images.shape[0], -1).double() / (levels - 1)


def log_density(x: torch.Tensor, s: torch.Tensor, sigmas: tuple[float, ...]) -> torch.Tensor:
    """Parzen log-density of each row of `x` `(B, D)` under centres `s` `(N, D)`: `(B, len(sigmas))`."""
    d2 = (x.pow(2).sum(1, keepdim=True) + s.pow(2).sum(1) - 2 * x @ s.T).clamp_(min=0)  # (B, N)
    n, dim = s.shape
    out = []
    for sigma in sigmas:
        out.append(
            torch.logsumexp(-d2 / (2 * sigma * sigma), dim=1)
            - math.log(n)
            - 0.5 * dim * math.log(2 * math.pi * sigma * sigma)
        )
    return torch.stack(out, 1)


def parzen(ctx: EvalContext) -> MetricValue:
    levels = ctx.data_spec.levels
    s = _flat(ctx.samples(), levels)
    valid_split = "valid" if ctx.split != "valid" else "train"
    if valid_split not in ctx.dataset.splits:
        from .harness import NotApplicable

        raise NotApplicable(f"sigma is chosen on a {valid_split!r} split, and dataset {ctx.dataset.name!r} has none")
    n_valid = ctx.limit or 10_000
    valid = _flat(ctx.subset(valid_split, n_valid, "parzen-sigma"), levels)
    v = ctx.map_batches(lambda b, i, j: log_density(valid[i:j], s, SIGMAS), valid.shape[0], desc="parzen sigma")
    mean_by_sigma = v.mean(0)
    best = int(mean_by_sigma.argmax())
    sigma = SIGMAS[best]
    x = _flat(ctx.split_images(), levels)
    ll = ctx.map_batches(lambda b, i, j: log_density(x[i:j], s, (sigma,))[:, 0], x.shape[0], desc="parzen")
    stderr = float(ll.std(unbiased=True) / math.sqrt(ll.numel())) if ll.numel() > 1 else float("nan")
    note = "sigma at the edge of the grid" if best in (0, len(SIGMAS) - 1) else ""
    return MetricValue(
        "parzen",
        float(ll.mean()),
        "nats",
        stderr,
        {
            "sigma": sigma,
            "sigma_split": valid_split,
            "n_sigma": valid.shape[0],
            "num_samples": s.shape[0],
            "valid_ll_by_sigma": [float(t) for t in mean_by_sigma],
        },
        note,
    )
