"""`fid`: the Fréchet distance between samples and the split in the reference classifier's features.

    FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))       (Heusel et al. 2017)

computed in float64, with tr((S_a S_b)^(1/2)) as the sum of the square roots of
the eigenvalues of S_a^(1/2) S_b S_a^(1/2) (symmetric, so `eigh` is stable).

The features are the pooled penultimate activations of the dataset's reference
classifier (see `zoo.eval.classifier`), not Inception: numbers are comparable
within the zoo, not with FIDs published for other feature spaces.

The real-data floor: the same distance between `num_samples` images of the
train split and the evaluated split, the number a perfect model would get with
that many samples (FID is biased upwards for small N).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ArgumentError
from .harness import EvalContext, NotApplicable
from .metric import MetricValue


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between feature sets `a` `(N, D)` and `b` `(M, D)` (Gaussian fits, float64)."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ArgumentError(f"FID needs at least 2 feature vectors on each side, got {a.shape[0]} and {b.shape[0]}")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    r = _psd_sqrt(s_a)
    m = r @ s_b @ r
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    return float(((mu_a - mu_b) ** 2).sum() + torch.trace(s_a) + torch.trace(s_b) - 2 * tr_sqrt)


def floor_features(ctx: EvalContext) -> tuple[str, torch.Tensor]:
    """Features of `num_samples` train images (seeded subset), or raises NotApplicable."""
    ref_split = "train" if ctx.split != "train" else "valid"
    train = ctx.subset(ref_split, ctx.num_samples, "floor")
    return ref_split, ctx.features(f"{ref_split}-floor", train)


def fid(ctx: EvalContext) -> MetricValue:
    real = ctx.features(ctx.split, ctx.split_images())
    fake = ctx.features("samples", ctx.samples())
    value = frechet_distance(fake, real)
    details: dict[str, Any] = {"num_samples": fake.shape[0], "n_real": real.shape[0], "features": real.shape[1]}
    try:
        ref_split, floor = floor_features(ctx)
        details["floor"] = frechet_distance(floor, real)
        details["floor_split"] = f"{ref_split} vs {ctx.split}"
    except NotApplicable as e:
        details["floor"] = None
        details["floor_note"] = str(e)
    return MetricValue("fid", value, "", None, details)
