"""The base class of autoregressive models: a plugin writes `logits`, the core derives the rest.

A subclass sets `self.data_spec` in its constructor and implements
`logits(x) -> (B, C, H, W, levels)`: the unnormalised log-probabilities of each
sub-pixel given every sub-pixel before it, pixels in raster order and R before
G before B within a pixel. From that alone it gets:

- `log_prob(x)`: the exact log-likelihood in nats per image,
- `sample(n, ...)`: `zoo.sample`, the raster-order sampler of `zoo.sampling`, with
  temperature and image completion; it runs the model's incremental steps when the model
  defines `fast_sampler` (the FAST SAMPLER CONTRACT in zoo/sampling.py),
- `loss(x)`: mean negative log-likelihood in nats per image, for training.

`zoo check` verifies the promise made by `logits` (no sub-pixel sees itself or
a later one) by perturbation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .protocols import DataSpec
from .sampling import SampleMethod

__all__ = ["AutoregressiveModel", "categorical_log_prob"]


def categorical_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum over sub-pixels of `log_softmax(logits)` at the observed levels: `(B,)` in nats."""
    if logits.dtype != torch.float64:
        logits = logits.float()  # half precision would lose the sum
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, x.unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)


class AutoregressiveModel(SampleMethod, nn.Module):
    """Base class for models whose likelihood factorises over sub-pixels in raster order."""

    data_spec: DataSpec

    def logits(self, x: torch.Tensor, **cond: Any) -> torch.Tensor:  # pragma: no cover - abstract
        """`(B, C, H, W, levels)` unnormalised log-probabilities; see the module docstring."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, **cond: Any) -> torch.Tensor:
        return self.logits(x, **cond)

    def log_prob(self, x: torch.Tensor, **cond: Any) -> torch.Tensor:
        """Exact log-likelihood of each image of `x` (integer levels `(B, C, H, W)`), in nats: `(B,)`."""
        x = self.data_spec.validate(x)
        return categorical_log_prob(self.logits(x, **cond), x)

    def loss(self, x: torch.Tensor, **cond: Any) -> torch.Tensor:
        """Mean negative log-likelihood in nats per image (a scalar to minimise)."""
        return -self.log_prob(x, **cond).mean()
