"""Pieces shared by PixelCNN and gated PixelCNN: input scaling, the logits layout,
class labels, and convolutions evaluated at a single pixel (for the fast samplers)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .masks import MaskedConv2d

__all__ = ["scale_input", "to_logits", "check_labels", "PixelConv"]


def scale_input(x: torch.Tensor, levels: int, dtype: torch.dtype) -> torch.Tensor:
    """Integer levels in `[0, levels)` to floats in `[-1, 1]` (same shape)."""
    return x.to(dtype) * (2.0 / (levels - 1)) - 1.0


def to_logits(out: torch.Tensor, channels: int, levels: int) -> torch.Tensor:
    """`(B, C*levels, H, W)` (channel c owns features `c*levels ... (c+1)*levels - 1`) -> `(B, C, H, W, levels)`."""
    B, _, H, W = out.shape
    return out.view(B, channels, levels, H, W).permute(0, 1, 3, 4, 2)


def check_labels(y: Any, n: int, num_classes: int | None, device: torch.device) -> torch.Tensor | None:
    """Class labels for `n` images: None (unconditional), an int, or an integer tensor `(n,)` or `(1,)`.

    Returns a long tensor `(n,)` on `device`, or None for an unconditional model.
    """
    if num_classes is None:
        if y is not None:
            raise ValueError("this model is unconditional (num_classes=None); it takes no class label y")
        return None
    expected = f"class labels y: an int or an integer tensor of shape ({n},) or (1,) with values in [0, {num_classes})"
    if y is None:
        raise ValueError(f"this model is class-conditional (num_classes={num_classes}); pass {expected}")
    if isinstance(y, int) and not isinstance(y, bool):
        y = torch.tensor([y])
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"expected {expected}, got {type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"expected {expected}, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] not in (1, n):
        raise ValueError(f"expected {expected}, got shape {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"expected {expected}, got values in [{int(y.min())}, {int(y.max())}]")
    return y.to(device=device, dtype=torch.long).expand(n)


class PixelConv:
    """A convolution evaluated at one output pixel, reading its input from a padded cache.

    For a `MaskedConv2d` (or a 1x1 `nn.Conv2d`) with kernel `kh x kw` and centre
    `(ci, cj)`: the cache holds the layer's input padded like the layer pads it,
    `(n, in, H + ci + kh-1-ci, W + cj + kw-1-cj)`; the output at image pixel
    `(i, j)` reads rows `i .. i+ci` and columns `j .. j+kw-1` of the cache (rows
    below the centre are masked out, so they are not read). One matrix product
    `(n, in*(ci+1)*kw) @ (in*(ci+1)*kw, out)`. Built in eval mode for sampling.
    """

    def __init__(self, conv: nn.Conv2d):
        if isinstance(conv, MaskedConv2d):
            w, (ci, _) = conv.masked_weight(), conv.centre
        else:
            w, ci = conv.weight, conv.kernel_size[0] - 1
        w = w[:, :, : ci + 1].detach()  # (out, in, ci+1, kw)
        self.rows, self.cols = ci + 1, w.shape[-1]
        self.weight = w.reshape(w.shape[0], -1).t().contiguous()  # (in*rows*cols, out)
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.pointwise = self.rows == 1 and self.cols == 1

    def __call__(self, cache: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """`(n, out)` at image pixel `(i, j)` from `cache` `(n, in, Hp, Wp)`."""
        patch = cache[:, :, i : i + self.rows, j : j + self.cols].reshape(cache.shape[0], -1)
        return self.vector(patch)

    def vector(self, v: torch.Tensor) -> torch.Tensor:
        """`(n, out)` from the flattened patch (for a 1x1 conv: the input features) `v`."""
        if self.bias is None:
            return v @ self.weight
        return torch.addmm(self.bias, v, self.weight)
