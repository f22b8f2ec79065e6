"""Sharding and gathering for the harness under `torchrun` (gloo on CPU, NCCL on GPU).

The unit of work is a batch. Batch `b` of a list of work goes to rank
`b % world_size`; every rank computes its batches exactly as a single process
would (same boundaries, same random streams), then the results are gathered
in batch order. The reduced numbers are therefore the single-process numbers,
not merely close to them.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any, Callable

import torch

__all__ = ["rank_world", "map_batches", "broadcast", "derive_seed", "init_from_env"]


def rank_world() -> tuple[int, int]:
    """`(rank, world_size)` of the default process group, `(0, 1)` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str | None = None) -> bool:
    """Start the default process group when launched by `torchrun` (WORLD_SIZE > 1).

    Returns True when this call started it (the caller then destroys it).
    Backend: NCCL when the device is CUDA, gloo otherwise.
    """
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if device and str(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend)
    return True


def derive_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed for the random stream named by `keys` (stable across machines and runs)."""
    text = ":".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def map_batches(
    fn: Callable[[int, int, int], torch.Tensor],
    n: int,
    batch_size: int,
    *,
    desc: str = "",
    progress: bool = False,
    unit: str = "img",
) -> torch.Tensor:
    """`torch.cat([fn(b, start, stop) for each batch b])`, sharded over ranks and gathered.

    `fn(b, start, stop)` computes rows `start:stop` (batch index `b`) and
    returns a CPU tensor whose first dimension is `stop - start`.
    """
    if n == 0:
        raise ValueError("map_batches: nothing to do (n = 0)")
    rank, world = rank_world()
    n_batches = math.ceil(n / batch_size)
    mine = range(rank, n_batches, world)
    from tqdm.auto import tqdm

    out: dict[int, torch.Tensor] = {}
    with tqdm(total=sum(min(n, (b + 1) * batch_size) - b * batch_size for b in mine), desc=desc, unit=unit,
              disable=not progress or rank != 0, leave=False) as bar:
        for b in mine:
            start, stop = b * batch_size, min(n, (b + 1) * batch_size)
            y = fn(b, start, stop).detach().cpu()
            if y.shape[0] != stop - start:
                raise RuntimeError(f"{desc or 'map_batches'}: batch {b} gave {y.shape[0]} rows, expected {stop - start}")
            out[b] = y
            bar.update(stop - start)
    if world > 1:
        import torch.distributed as dist

        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, out)
        out = {b: t for part in parts for b, t in part.items()}
    return torch.cat([out[b] for b in range(n_batches)])


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (identity in one process)."""
    _, world = rank_world()
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
