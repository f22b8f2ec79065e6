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

    def fast_sampler(self, x: torch.Tensor) -> "TableSteps":
        """Incremental sampling (the FAST SAMPLER CONTRACT, docs/plugins.md): no sub-pixel depends
        on another, so the next sub-pixel's logits are a row of the table."""
        return TableSteps(self.table, len(x))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, alpha: float = 1.0) -> "IndependentPixels":
        """Set the table to the maximum-likelihood estimate on `x`, with add-`alpha` smoothing."""
        x = self.data_spec.validate(x)
        counts = nn.functional.one_hot(x, self.data_spec.levels).sum(0).to(self.table)  # (C, H, W, levels)
        self.table.copy_(torch.log(counts + alpha))
        return self


class TableSteps:
    """What `fast_sampler` returns: `logits(i, j, c)`, `put(i, j, c, level)`, `row_done(i)`."""

    def __init__(self, table: torch.Tensor, n: int):
        self.table, self.n = table, n  # table (C, H, W, levels); n images

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        return self.table[c, i, j].expand(self.n, -1)  # (n, levels)

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        pass  # nothing depends on the drawn level

    def row_done(self, i: int) -> None:
        pass
