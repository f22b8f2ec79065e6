"""Image grids and image files, as integer levels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .errors import ArgumentError
from .protocols import DataSpec

__all__ = ["to_uint8", "make_grid", "save_grid", "read_image"]


def to_uint8(x: torch.Tensor, levels: int) -> np.ndarray:
    """Levels `(B, C, H, W)` in [0, levels) to uint8 intensities `(B, H, W, C)`."""
    x = x.detach().cpu().long().clamp(0, levels - 1)
    return (x.double() * (255.0 / (levels - 1))).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(x: torch.Tensor, levels: int, *, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile images `(B, C, H, W)` into one uint8 array `(rows, cols, C)` with a grey border."""
    imgs = to_uint8(x, levels)
    b, h, w, c = imgs.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(b)))
    ncol = math.ceil(b / nrow)
    grid = np.full((pad + ncol * (h + pad), pad + nrow * (w + pad), c), 128, dtype=np.uint8)
    for k in range(b):
        r, q = divmod(k, nrow)
        y, xx = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, xx:xx + w] = imgs[k]
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid


def save_grid(x: torch.Tensor, path: str | Path, levels: int, *, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a PNG grid of images `(B, C, H, W)` of integer levels."""
    from PIL import Image

    grid = make_grid(x, levels, nrow=nrow, scale=scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


def read_image(path: str | Path, spec: DataSpec) -> torch.Tensor:
    """Read an image file as levels `(C, H, W)` of `spec`; its size must match the spec."""
    from PIL import Image

    try:
        img = Image.open(path)
        img = img.convert("L" if spec.channels == 1 else "RGB")
    except (OSError, ValueError) as e:
        raise ArgumentError(f"cannot read image {str(path)!r}: {e}") from None
    if img.size != (spec.width, spec.height):
        raise ArgumentError(f"image {str(path)!r} is {img.size[0]}x{img.size[1]}; the model expects {spec.width}x{spec.height}")
    a = np.asarray(img, dtype=np.float64).reshape(spec.height, spec.width, spec.channels)
    levels = np.rint(a / 255.0 * (spec.levels - 1)).astype(np.int64)
    return torch.from_numpy(levels).permute(2, 0, 1).contiguous()
