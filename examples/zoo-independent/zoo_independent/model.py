"""The independent-pixels baseline: p(x) = prod_k p_k(x_k), one categorical per sub-pixel."""

import torch
from torch import nn

import zoo


class IndependentPixels(zoo.AutoregressiveModel):
    """A table of logits `(C, H, W, levels)`; every sub-pixel ignores all the others."""

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28, levels: int = 2):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        self.table = nn.Parameter(torch.zeros(channels, height, width, levels))  # uniform at start

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.data_spec.validate(x)
        return self.table.unsqueeze(0).expand(x.shape[0], *self.table.shape)  # (B, C, H, W, levels)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, alpha: float = 1.0) -> "IndependentPixels":
        """Set the table to the maximum-likelihood estimate on `x`, with add-`alpha` smoothing."""
        x = self.data_spec.validate(x)
        counts = nn.functional.one_hot(x, self.data_spec.levels).sum(0).to(self.table)  # (C, H, W, levels)
        self.table.copy_(torch.log(counts + alpha))
        return self
