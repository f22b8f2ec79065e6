"""Deprecated home of the masked convolutions: they moved to `zoo.nn` (a public building block
for every plugin). `from zoo_pixelcnn.masks import MaskedConv2d` keeps working for one release
and warns; import from `zoo.nn` instead."""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("colour_groups", "causal_mask", "MaskedConv2d", "MASK_TYPES")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'zoo_pixelcnn.masks' has no attribute {name!r}")
    warnings.warn(
        f"zoo_pixelcnn.masks.{name} moved to zoo.nn.{name}; import it from there "
        "(the old path goes away in the next release)",
        DeprecationWarning,
        stacklevel=2,
    )
    import zoo.nn

    return getattr(zoo.nn, name)


def __dir__() -> list[str]:
    return list(_MOVED)
