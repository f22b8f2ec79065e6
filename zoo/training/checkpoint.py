"""Checkpoint files: a state codec (tensors to safetensors, the rest to JSON) and atomic save/load.

Nested state dicts (optimizers, schedulers, a family's own trainer) are split into
tensors and a JSON skeleton (`flatten_state` / `unflatten_state`), so a checkpoint
never pickles arbitrary objects. `save_checkpoint` writes tensors plus JSON
metadata into one safetensors file through a temporary file and a rename, so a
crash leaves either the old file or the new one. The RNG helpers capture and
restore a process's random streams for an exact resume.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed import Dist, all_gather_object
from ..errors import ZooError
from ..util import atomic_write

__all__ = [
    "flatten_state",
    "unflatten_state",
    "save_checkpoint",
    "load_checkpoint",
    "prefixed",
    "state_dict_cpu",
    "rng_state",
    "set_rng_state",
    "gather_rng",
]

_MARKERS = ("__tensor__", "__tuple__", "__items__")


def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able skeleton of `obj`; its tensors go into `tensors` under keys starting with `prefix`."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        while key in tensors:
            key += "'"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: flatten_state(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            if not (k is None or isinstance(k, (str, int, float, bool))):
                raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__} at {prefix}")
            items.append([k, flatten_state(v, f"{prefix}/{i}", tensors)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"cannot checkpoint a {type(obj).__name__} at {prefix!r}: state dicts may hold tensors, numbers, "
        "strings, None, lists, tuples and dicts"
    )


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of `flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__items__"}:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def save_checkpoint(path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """Write tensors and JSON `meta` into one safetensors file, atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_write(path) as tmp:
        save_file(
            {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
            tmp,
            metadata={"zoo_checkpoint": json.dumps(meta, sort_keys=True)},
        )
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by `save_checkpoint`: (tensors, meta)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_json = (f.metadata() or {}).get("zoo_checkpoint")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ZooError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if meta_json is None:
        raise ZooError(f"{path} is a safetensors file but not a zoo training checkpoint (no 'zoo_checkpoint' metadata)")
    try:
        return tensors, json.loads(meta_json)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ZooError(f"{path}: its 'zoo_checkpoint' metadata is not JSON: {e}") from None


def prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `tensors` under `prefix`, with the prefix removed."""
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's random state: torch's CPU generator, and the CUDA one on a GPU."""
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(states: Mapping[str, torch.Tensor], device: torch.device) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def gather_rng(d: Dist, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every process's RNG states, in rank order (a checkpoint holds them all)."""
    everyone = all_gather_object({k: v.tolist() for k, v in rng_state(device).items()}, d)
    return [{k: torch.tensor(v, dtype=torch.uint8) for k, v in s.items()} for s in everyone]


def state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of `module`'s state dict."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
