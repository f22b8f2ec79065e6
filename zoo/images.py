"""Image grids and image files, as integer levels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ArgumentError
from .protocols import DataSpec

__all__ = ["to_uint8", "make_grid", "save_grid", "save_image", "check_image_path", "read_image"]


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
        grid[y : y + h, xx : xx + w] = imgs[k]
    if scale > 1:
        grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid


def check_image_path(path: str | Path, what: str = "output image") -> Path:
    """`path` if an image can be written there (checked before sampling, so a bad path fails at once): a
    writable place (`zoo.util.check_writable`) and a file extension Pillow writes (.png, .jpg, ...)."""
    from PIL import Image

    from .util import check_writable

    p = check_writable(path, what)
    Image.init()
    ext = p.suffix.lower()
    writable = sorted(e for e, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)
    if ext not in writable:
        raise ArgumentError(
            f"{what} {str(path)!r}: expected an image file name ending in .png (or another "
            f"extension Pillow writes: {', '.join(e for e in writable if e in ('.jpg', '.bmp', '.tif', '.webp'))}...), "
            f"got {ext or 'no extension'!r}"
        )
    return p


def save_grid(x: torch.Tensor, path: str | Path, levels: int, *, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a PNG grid of images `(B, C, H, W)` of integer levels."""
    from PIL import Image

    grid = make_grid(x, levels, nrow=nrow, scale=scale)
    return save_image(Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid), path)


def save_image(img: Any, path: str | Path) -> Path:
    """Save a Pillow image atomically (`zoo.util.atomic_write`), in the format its extension names."""
    from PIL import Image

    from .util import atomic_write

    path = Path(path)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ArgumentError(
            f"cannot save an image as {str(path)!r}: expected a file name ending in .png (or another image extension)"
        )
    with atomic_write(path) as tmp:
        img.save(tmp, format=fmt)
    return path


# Pillow modes whose samples are 16-bit unsigned (a 16-bit PNG opens as one of these); "I" (32-bit) is
# accepted when its values fit 16 bits, as a 16-bit greyscale PNG's do in older Pillows
_MODES_16 = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_image(path: str | Path, spec: DataSpec) -> torch.Tensor:
    """Read an image file as levels `(C, H, W)` of `spec`; its size must match the spec.

    How file values map to levels: an 8-bit image (greyscale, RGB, palette; alpha is dropped) has
    values v in [0, 255] and becomes level round(v / 255 * (levels - 1)); a 16-bit image (a 16-bit
    PNG) has v in [0, 65535] and becomes round(v / 65535 * (levels - 1)). So 0 is level 0 and the
    file's top value the top level, whatever its depth. A greyscale image given to a colour model
    is repeated into each channel; a colour image given to a greyscale model is converted to
    luminance (8-bit). Anything else (floating-point samples, 32-bit values beyond 16 bits,
    16-bit colour Pillow cannot read as such) raises `ArgumentError`.
    """
    from PIL import Image

    where = f"image {str(path)!r}"
    try:
        img = Image.open(path)
        if img.size != (spec.width, spec.height):  # checked before decoding: a huge file is never decoded
            raise ArgumentError(f"{where} is {img.size[0]}x{img.size[1]}; the model expects {spec.width}x{spec.height}")
        if img.mode in _MODES_16:
            a = np.asarray(img).astype(np.float64)
            top = 65535.0
            if a.size and (a.min() < 0 or a.max() > top):
                raise ArgumentError(
                    f"{where} has {img.mode!r} values in [{a.min():.0f}, {a.max():.0f}]; "
                    "expected 8-bit values or 16-bit ones in [0, 65535]"
                )
            a = np.repeat(a.reshape(spec.height, spec.width, 1), spec.channels, axis=2)
        elif img.mode == "F":
            raise ArgumentError(f"{where} has floating-point samples (mode 'F'); expected an 8- or 16-bit image")
        else:
            a = np.asarray(img.convert("L" if spec.channels == 1 else "RGB"), dtype=np.float64)
            top = 255.0
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, ArgumentError):
            raise
        raise ArgumentError(f"cannot read {where}: {e}") from None
    a = a.reshape(spec.height, spec.width, spec.channels)
    levels = np.rint(a / top * (spec.levels - 1)).astype(np.int64)
    return torch.from_numpy(levels).permute(2, 0, 1).contiguous()
