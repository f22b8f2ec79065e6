"""Pieces shared by PixelCNN and gated PixelCNN: the first layer's
convolution of the image as one matrix product, the logits layout and class labels (the
convolution at a single pixel that the fast samplers use is `zoo.nn.PixelConv`).

Memory layout: the models keep every feature map in `torch.channels_last` (NHWC in
memory, still indexed `(B, F, H, W)`): oneDNN's convolutions run faster on it than
on NCHW, a 1x1 convolution is a plain matrix product over it, and the logits come out
with the levels contiguous for the softmax."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["autocast_dtype", "image_patches", "inference_chunks", "to_logits", "check_labels"]


def autocast_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype that autocast runs convolutions in on `x`'s device (if enabled there), else `x.dtype`.
    For the hand-written autograd functions, which run their convolutions with autocast off."""
    device = x.device.type
    try:
        if torch.is_autocast_enabled(device):
            return torch.get_autocast_dtype(device)
    except TypeError:  # torch < 2.4: no device argument
        if device == "cpu" and torch.is_autocast_cpu_enabled():
            return torch.get_autocast_cpu_dtype()
        if device == "cuda" and torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
    return x.dtype


def image_patches(x: torch.Tensor, rows: int, left: int, right: int) -> torch.Tensor:
    """The causal patch of every pixel, for a first layer computed as one matrix product.

    `x` `(B, C, H, W)` -> `(B, H, W, C*rows*(left+1+right))`: at `(i, j)`, the input rows
    `i-rows+1 .. i` and columns `j-left .. j+right` (zero outside the image), flattened in
    the order `(C, rows, cols)` of a conv weight `(out, C, rows, cols)`. With `C` small (the
    image), this copy is small, and `patches @ weight.T` is the convolution with its output
    already channels-last (conv2d of a 1-channel input returns NCHW, which would cost a
    full-size copy to convert) and only weight gradients in its backward.
    """
    B, C, H, W = x.shape
    cols = left + 1 + right
    xp = F.pad(x, (left, right, rows - 1, 0))  # (B, C, H + rows-1, W + cols-1)
    p = xp.unfold(2, rows, 1).unfold(3, cols, 1)  # (B, C, H, W, rows, cols), a view
    return p.permute(0, 2, 3, 1, 4, 5).reshape(B, H, W, C * rows * cols)


# Scoring without autograd runs a large batch in chunks whose widest activation is at most about
# this size. Measured on 2 cores: a forward pass at batch 256 is 1.2-1.8x slower per image than in
# chunks of 64 (28x28 images, 64 features: 51 MB tensors fall out of cache, and every fresh one
# costs page faults); 16 MiB (64 such images) beat 4, 8, 32 and 64 MiB.
INFERENCE_CHUNK_BYTES = 16 * 2**20


def inference_chunks(x: torch.Tensor, widest: int, dtype: torch.dtype) -> int:
    """How many chunks to split the batch `x` `(B, C, H, W)` into for a forward pass without autograd
    (1 with autograd: the batch is then the caller's choice), given the widest activation's features."""
    if torch.is_grad_enabled():
        return 1
    B, _, H, W = x.shape
    per_image = widest * H * W * torch.finfo(dtype).bits // 8
    return max(1, min(B, -(-B * per_image // INFERENCE_CHUNK_BYTES)))  # ceil


def to_logits(out: torch.Tensor, channels: int, levels: int) -> torch.Tensor:
    """`(B, C*levels, H, W)` (channel c owns features `c*levels ... (c+1)*levels - 1`) -> `(B, C, H, W, levels)`.

    A view; from a channels-last `out` the levels are contiguous (fast `log_softmax`)."""
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
