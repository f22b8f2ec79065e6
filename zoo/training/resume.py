"""A run's checkpoint: what it holds (weights, EMA, every process's RNG, trainer state, progress), and
`--resume`, which continues a run exactly where its checkpoint stopped.

A run may only be resumed as the same run: its identity (model, config,
dataset and its checksum, limit, world size, trainer, recipe except `epochs`)
must match the checkpoint's. A dataset without checksums cannot prove it is the
same data; resuming on one says so on stderr instead of skipping the check silently.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from .. import __version__
from ..distributed import Dist, barrier
from ..errors import ZooError
from .checkpoint import (
    flatten_state, gather_rng, load_checkpoint, prefixed, save_checkpoint, set_rng_state, state_dict_cpu,
    unflatten_state,
)
from .log import note, say
from .state import Progress, Run

__all__ = ["run_identity", "save_run", "restore_run", "DEFAULT_TRAINER"]

DEFAULT_TRAINER = "zoo.training:MaximumLikelihoodTrainer"  # the identity's name for it (kept in checkpoints)


def run_identity(spec: Any, model: Any, ds: Any, limit: int | None, d: Dist, rec: Mapping[str, Any]) -> dict[str, Any]:
    """What must not change when a run is resumed; `dataset_checksum` is None for a dataset without checksums."""
    identity = {
        "model": spec.name, "config": dict(model.zoo_config), "dataset": ds.name, "limit": limit,
        "world_size": d.world, "trainer": spec.trainer or DEFAULT_TRAINER,
        "recipe": {k: v for k, v in rec.items() if k != "epochs"},
    }
    try:
        identity["dataset_checksum"] = ds.checksum(rec["train_split"])
    except (NotImplementedError, AttributeError):  # a dataset object without checksums (ad-hoc data)
        identity["dataset_checksum"] = None
    return identity


def save_run(run: Run) -> None:
    """Write the run's checkpoint (rank 0 writes; every rank contributes its RNG state and waits)."""
    rngs = gather_rng(run.d, run.dev)
    if run.d.main:
        st = run.state
        tensors = {f"model/{k}": v for k, v in state_dict_cpu(run.model).items()}
        if run.ema is not None:
            tensors.update({f"ema/{k}": v for k, v in state_dict_cpu(run.ema.module).items()})
        for r, states in enumerate(rngs):
            tensors.update({f"rng/{r}/{k}": v for k, v in states.items()})
        skeleton = flatten_state(run.trainer.state_dict(), "trainer", tensors)
        meta = {
            "format": 1, "zoo_version": __version__, "identity": run.identity, "epochs": run.rec["epochs"],
            "epoch": st.epoch, "step_in_epoch": st.step_in_epoch, "step": st.step,
            "best_nll": st.best_nll, "best_epoch": st.best_epoch, "elapsed": run.elapsed(),
            "trainer_state": skeleton, "recipe_name": run.recipe_name, "stages": st.stages,
        }
        save_checkpoint(run.ckpt_path, tensors, meta)
    barrier(run.d)


def restore_run(run: Run) -> Progress:
    """Load the run's checkpoint into its model, EMA, trainer and RNG; return the progress it recorded."""
    tensors, meta = load_checkpoint(run.ckpt_path)
    _check_identity(run, meta.get("identity", {}))
    rec = run.rec
    if meta["epochs"] != rec["epochs"] and run.d.main:
        # only the cosine schedule depends on the run's length; constant and per-epoch decay do not
        more = f"; the cosine schedule now spans {rec['epochs']} epochs" if rec["lr_schedule"] == "cosine" else ""
        say(f"resuming a {meta['epochs']}-epoch run with epochs={rec['epochs']}{more}")
    run.model.load_state_dict(prefixed(tensors, "model/"), strict=True)
    if run.ema is not None:
        ema_state = prefixed(tensors, "ema/")
        if not ema_state:
            raise ZooError(f"{run.ckpt_path} has no EMA weights but the recipe has ema_decay > 0")
        run.ema.module.load_state_dict(ema_state, strict=True)
    run.trainer.load_state_dict(unflatten_state(meta["trainer_state"], tensors))
    rng = prefixed(tensors, f"rng/{run.d.rank}/")
    if not rng:
        raise ZooError(f"{run.ckpt_path} has no RNG state for rank {run.d.rank}")
    set_rng_state(rng, run.dev)
    return Progress(epoch=meta["epoch"], step_in_epoch=meta["step_in_epoch"], step=meta["step"],
                    best_nll=meta["best_nll"], best_epoch=meta["best_epoch"], elapsed=meta.get("elapsed", 0.0),
                    stages=meta.get("stages") or [{"epochs": meta["epochs"], "from_epoch": 0, "from_step": 0}])


def _check_identity(run: Run, saved: Mapping[str, Any]) -> None:
    now = run.identity
    unchecked = saved.get("dataset_checksum") is None or now.get("dataset_checksum") is None
    if unchecked and run.d.main:
        note(f"dataset {now.get('dataset')!r} has no checksum (at least one side of this --resume lacks one), "
             f"so resuming {run.ckpt_path} cannot check that it continues on the same data")
    diffs = []
    for key in sorted(set(saved) | set(now)):
        if key == "dataset_checksum" and unchecked:
            continue
        if json.loads(json.dumps(saved.get(key))) != json.loads(json.dumps(now.get(key))):
            diffs.append(f"{key}: checkpoint {json.dumps(saved.get(key))}, now {json.dumps(now.get(key))}")
    if diffs:
        raise ZooError(f"cannot resume {run.ckpt_path}: the run differs from the checkpoint's:\n  " + "\n  ".join(diffs)
                       + "\n(only epochs may change; start a new --out to train differently)")
