"""`precision` and `recall`: k-NN manifold estimates (Kynkäänniemi et al. 2019, "Improved
Precision and Recall Metric for Assessing Generative Models").

Each set of feature vectors defines a manifold: the union of balls around its
points, each ball reaching the point's k-th nearest neighbour in the same set
(k = 3 as in the paper). Precision is the fraction of samples inside the real
manifold; recall is the fraction of real images inside the sample manifold.
The real side is `num_samples` images of the split (a seeded subset), so both
sides have the same size, as the paper asks.
"""

from __future__ import annotations

import torch

from ..errors import ArgumentError
from .harness import EvalContext
from .metric import MetricValue

K = 3


def knn_radii(x: torch.Tensor, k: int = K, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row of `x` to its k-th nearest other row: `(N,)`."""
    if x.shape[0] <= k:
        raise ArgumentError(f"k-NN radii need more than k={k} points, got {x.shape[0]}")
    out = []
    for i in range(0, x.shape[0], chunk):
        d = torch.cdist(x[i : i + chunk], x)  # (c, N); the point itself is at distance 0
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of `points` inside at least one ball (`centres`, `radii`)."""
    inside = []
    for i in range(0, points.shape[0], chunk):
        d = torch.cdist(points[i : i + chunk], centres)  # (c, M)
        inside.append((d <= radii.unsqueeze(0)).any(1))
    return float(torch.cat(inside).double().mean())


def precision_recall_features(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    real, fake = real.double(), fake.double()
    return coverage(fake, real, knn_radii(real, k)), coverage(real, fake, knn_radii(fake, k))


def precision_recall(ctx: EvalContext) -> dict[str, MetricValue]:
    if "precision_recall" not in ctx.cache:
        real_images = ctx.subset(ctx.split, ctx.num_samples, "manifold")
        real = ctx.features(f"{ctx.split}-manifold", real_images)
        fake = ctx.features("samples", ctx.samples())
        p, r = precision_recall_features(real, fake)
        details = {"k": K, "num_samples": fake.shape[0], "n_real": real.shape[0]}
        ctx.cache["precision_recall"] = {
            "precision": MetricValue("precision", p, "", None, dict(details)),
            "recall": MetricValue("recall", r, "", None, dict(details)),
        }
    return ctx.cache["precision_recall"]
