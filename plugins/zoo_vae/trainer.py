"""Training a latent variable model on its bound: `zoo train vae` (ModelSpec.trainer).

Maximum likelihood is out of reach (log p(x) is an integral over z); the model is trained by
maximising a lower bound instead: the ELBO (Kingma & Welling 2014) with `iw_samples: 1`, or the
importance-weighted bound with k = `iw_samples` samples (Burda et al. 2016, section 3), which is
tighter and costs k decoder passes per image. Everything else (optimizer, schedule, clipping,
bf16, DDP) is the zoo's maximum-likelihood trainer's; only the scalar it minimises differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from zoo.training import MaximumLikelihoodTrainer, wrap_ddp

from .latent import LatentVariableModel

__all__ = ["BoundTrainer"]


class _NegativeBound(nn.Module):
    """`model.loss(x, k)` through `forward`, so DistributedDataParallel sees it."""

    def __init__(self, model: LatentVariableModel, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            raise ValueError(f"{type(self.model).__name__} takes no class labels")
        return self.model.loss(x, k=self.k)


class BoundTrainer(MaximumLikelihoodTrainer):
    """Minimises the negative bound with `iw_samples` samples (logged as `loss`, nats per image)."""

    recipe_defaults: Mapping[str, Any] = {"iw_samples": 1}

    def __init__(self, model: nn.Module, recipe: Mapping[str, Any], device: torch.device):
        k = recipe["iw_samples"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"recipe['iw_samples'] must be a positive int (1: the ELBO), got {k!r}")
        super().__init__(model, recipe, device)
        # the trainer of the latent-variable models only (their ModelSpec.trainer, plugin.py)
        self.forward = wrap_ddp(_NegativeBound(cast(LatentVariableModel, model), k), device)
