"""The harness's random streams: `derive_seed` names each one, so numbers do not depend on the process count.

The process-group helpers this module used to hold (`map_batches`, `broadcast`,
`rank_world`, `init_from_env`) live in `zoo.distributed`, shared with training;
the old names here still work for one release, with a DeprecationWarning.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

__all__ = ["derive_seed"]


def derive_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed for the random stream named by `keys` (stable across machines and runs)."""
    text = ":".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _init_from_env(device: str | None = None) -> bool:
    """The old interface: True when this call started the process group."""
    from .. import distributed

    return distributed.init_from_env(device).started_here


def _is_main() -> bool:
    from ..distributed import rank_world

    return rank_world()[0] == 0


def __getattr__(name: str) -> Any:
    from .. import distributed

    moved = {
        "map_batches": distributed.map_batches,
        "broadcast": distributed.broadcast,
        "rank_world": distributed.rank_world,
        "init_from_env": _init_from_env,
        "is_main": _is_main,
    }
    if name not in moved:
        raise AttributeError(f"module 'zoo.eval.distributed' has no attribute {name!r}")
    warnings.warn(
        f"zoo.eval.distributed.{name} moved to zoo.distributed (init_from_env now returns a "
        "zoo.distributed.Dist); the old name goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return moved[name]
