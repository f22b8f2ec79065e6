"""The device a run trains on (`--device`), and the words that describe the hardware in its card."""

from __future__ import annotations

import os

import torch

from ..distributed import check_device
from ..errors import ArgumentError

__all__ = ["resolve_device", "hardware"]


def resolve_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    """`device` ("auto", "cpu", "cuda", "cuda:N") as a torch device; "cuda" under torchrun is `cuda:LOCAL_RANK`."""
    kind = str(device) if device is not None else "auto"
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    dev = check_device(kind, "--device")
    if dev.type == "mps":
        raise ArgumentError(f"--device must be cpu or cuda[:N] for training, got {kind!r}")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(
            "cuda", local_rank if int(os.environ.get("WORLD_SIZE", "1")) > 1 else torch.cuda.current_device()
        )
    return dev


def hardware(dev: torch.device, world: int) -> str:
    """E.g. "NVIDIA H100 80GB HBM3", "2 x CPU (x86_64, 16 cores, 1 thread)"."""
    if dev.type == "cuda":
        what = torch.cuda.get_device_name(dev)
    else:
        import platform

        threads = torch.get_num_threads()
        what = f"CPU ({platform.machine()}, {os.cpu_count()} cores, {threads} thread{'' if threads == 1 else 's'})"
    return f"{world} x {what}" if world > 1 else what
