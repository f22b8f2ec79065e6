"""Process groups under `torchrun`: joining one, the devices its processes use (`check_device`), and the
few collective operations the zoo uses.

One process per device, launched by `torchrun` (which sets WORLD_SIZE, RANK and
LOCAL_RANK); gloo on CPU, NCCL on CUDA. Every function here is a no-op (or the
identity) in a single process, so callers never branch on "am I distributed?".
Used by the training loop (`zoo.training`) and the evaluation harness (`zoo.eval`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Dist",
    "check_device",
    "init_from_env",
    "finish",
    "rank_world",
    "all_reduce_",
    "barrier",
    "all_gather_object",
    "broadcast",
    "shard_indices",
    "map_batches",
]


@dataclass
class Dist:
    """This process's place in the group: `rank` of `world` processes (0 of 1 without a group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started_here: bool = False  # True: `init_from_env` started the group, and `finish` ends it

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


DEVICE_KINDS = ("cpu", "cuda", "mps")


def check_device(device: Any, what: str = "device") -> torch.device:
    """`device` (a `torch.device` or a string: "cpu", "cuda", "cuda:N", "mps") as a `torch.device` that is
    usable here; anything else, or a device this machine lacks, raises `ArgumentError` saying which."""
    from .errors import ArgumentError

    if not isinstance(device, (str, torch.device)):
        raise ArgumentError(f"{what} must be a string such as 'cpu' or 'cuda:0' or a torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_KINDS:
        raise ArgumentError(f"{what} must be cpu, cuda, cuda:N or mps, got {str(device)!r}")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ArgumentError(f"{what} {str(device)!r}: no CUDA device is available here; use 'cpu'")
        if dev.index is not None and dev.index >= count:
            raise ArgumentError(
                f"{what} {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ArgumentError(f"{what} {str(device)!r}: no MPS device is available here; use 'cpu'")
    return dev


def init_from_env(device: str | torch.device | None = None) -> Dist:
    """Join the process group `torchrun` describes in the environment (WORLD_SIZE > 1).

    Without WORLD_SIZE > 1 this is a single process (`Dist()`); with a group already
    up it reports that group. Otherwise it starts one: NCCL when `device` is CUDA
    (and makes `cuda:LOCAL_RANK` the current device), gloo otherwise; the timeout is
    ZOO_DIST_TIMEOUT_MIN minutes (default 30).
    """
    import torch.distributed as dist

    if device is not None:
        check_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), local_rank)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    if not dist.is_available():
        from .errors import ZooError

        raise ZooError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    from datetime import timedelta

    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        "nccl" if cuda else "gloo", timeout=timedelta(minutes=int(os.environ.get("ZOO_DIST_TIMEOUT_MIN", "30")))
    )
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, started_here=True)


def finish(d: Dist, *, clean: bool = True) -> None:
    """End the process group if `init_from_env` started it (else leave it to whoever did).

    `clean=True` (leaving normally): every process first waits at a barrier, so no
    process tears its connections down while a peer still uses them (gloo aborts
    the peer then). `clean=False` (leaving on an error): no barrier, which could
    wait for a peer that never arrives.
    """
    if d.started_here:
        import torch.distributed as dist

        if clean and d.on:
            dist.barrier()
        dist.destroy_process_group()


def rank_world() -> tuple[int, int]:
    """`(rank, world_size)` of the default process group, `(0, 1)` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_(t: torch.Tensor, d: Dist, op: str = "sum") -> torch.Tensor:
    """Sum (or `op="max"`) `t` over the processes, in place; returns `t`."""
    if d.on:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t


def barrier(d: Dist) -> None:
    """Wait until every process gets here."""
    if d.on:
        import torch.distributed as dist

        dist.barrier()


def all_gather_object(obj: Any, d: Dist) -> list[Any]:
    """Every process's `obj`, in rank order (`[obj]` in one process)."""
    if not d.on:
        return [obj]
    import torch.distributed as dist

    everyone: list[Any] = [None] * d.world
    dist.all_gather_object(everyone, obj)
    return everyone


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (identity in one process)."""
    _, world = rank_world()
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_indices(
    n: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1, shuffle: bool = True
) -> torch.Tensor:
    """This process's image indices for `epoch`, as torch's DistributedSampler picks them.

    A permutation drawn from a generator seeded with `seed + epoch`, padded by
    wrapping around to a multiple of `world`, then every `world`-th index from
    `rank`. Consecutive slices of `batch_size // world` therefore form, across
    ranks, exactly the batches a single process would take.
    """
    if n < world:
        from .errors import ZooError

        raise ZooError(f"cannot shard {n} images over {world} processes")
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    else:
        order = torch.arange(n)
    total = math.ceil(n / world) * world
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank:total:world]


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

    Batch `b` (rows `b * batch_size` up to the next batch) goes to rank `b % world`;
    each rank computes its batches exactly as one process would, and the results are
    gathered in batch order, so the output equals the single-process one.
    `fn(b, start, stop)` returns a tensor whose first dimension is `stop - start`.
    """
    if n == 0:
        raise ValueError("map_batches: nothing to do (n = 0)")
    rank, world = rank_world()
    n_batches = math.ceil(n / batch_size)
    mine = range(rank, n_batches, world)
    from tqdm.auto import tqdm

    out: dict[int, torch.Tensor] = {}
    with tqdm(
        total=sum(min(n, (b + 1) * batch_size) - b * batch_size for b in mine),
        desc=desc,
        unit=unit,
        disable=not progress or rank != 0,
        leave=False,
    ) as bar:
        for b in mine:
            start, stop = b * batch_size, min(n, (b + 1) * batch_size)
            y = fn(b, start, stop).detach().cpu()
            if y.shape[0] != stop - start:
                raise RuntimeError(
                    f"{desc or 'map_batches'}: batch {b} gave {y.shape[0]} rows, expected {stop - start}"
                )
            out[b] = y
            bar.update(stop - start)
    if world > 1:
        parts = all_gather_object(out, Dist(rank, world))
        out = {b: t for part in parts for b, t in part.items()}
    return torch.cat([out[b] for b in range(n_batches)])
