"""A run's checkpoint: what it holds (weights, EMA, every process's RNG, trainer state, progress), and
`--resume`, which continues a run exactly where its checkpoint stopped.

A run may only be resumed as the same run: its identity (model, config,
dataset and its checksum, limit, world size, trainer, recipe except `epochs`)
must match the checkpoint's. A dataset without checksums cannot prove it is the
same data; resuming on one says so on stderr instead of skipping the check silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import __version__
from ..distributed import Dist, barrier
from ..errors import ZooError
from ..util import is_int
from .checkpoint import (
    flatten_state,
    gather_rng,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    set_rng_state,
    state_dict_cpu,
    unflatten_state,
)
from .log import note, say
from .recipe import RECIPE_SCHEMA
from .state import Progress, Run

__all__ = ["run_identity", "save_run", "restore_run", "DEFAULT_TRAINER"]

DEFAULT_TRAINER = "zoo.training:MaximumLikelihoodTrainer"  # the identity's name for it (kept in checkpoints)


def run_identity(spec: Any, model: Any, ds: Any, limit: int | None, d: Dist, rec: Mapping[str, Any]) -> dict[str, Any]:
    """What must not change when a run is resumed; `dataset_checksum` is None for a dataset without checksums."""
    identity = {
        "model": spec.name,
        "config": dict(model.zoo_config),
        "dataset": ds.name,
        "limit": limit,
        "world_size": d.world,
        "trainer": spec.trainer or DEFAULT_TRAINER,
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
            "format": 1,
            "zoo_version": __version__,
            "identity": run.identity,
            "epochs": run.rec["epochs"],
            "epoch": st.epoch,
            "step_in_epoch": st.step_in_epoch,
            "step": st.step,
            "best_nll": st.best_nll,
            "best_epoch": st.best_epoch,
            "elapsed": run.elapsed(),
            "trainer_state": skeleton,
            "recipe_name": run.recipe_name,
            "stages": st.stages,
        }
        save_checkpoint(run.ckpt_path, tensors, meta)
    barrier(run.d)


def restore_run(run: Run) -> Progress:
    """Load the run's checkpoint into its model, EMA, trainer and RNG; return the progress it recorded.

    A damaged or foreign checkpoint (metadata that is not JSON, a counter missing or of the wrong
    type, a tensor missing or of another shape, optimizer state missing) raises one `ZooError`:
    "cannot resume from FILE: why".
    """
    try:
        return _restore(run)
    except ZooError as e:
        if str(e).startswith("cannot resume"):
            raise
        raise ZooError(f"cannot resume from {run.ckpt_path}: {e}") from None
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        why = f"missing entry {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ZooError(f"cannot resume from {run.ckpt_path}: {why.splitlines()[0]}") from None


# the progress counters a checkpoint must hold: name -> (smallest value, None allowed)
_COUNTERS = {
    "epochs": (1, False),
    "epoch": (0, False),
    "step_in_epoch": (0, False),
    "step": (0, False),
    "best_epoch": (1, True),
}


def _checked_meta(meta: Any, steps_per_epoch: int) -> dict[str, Any]:
    """The checkpoint's metadata, after checking its counters (a `ZooError` saying what is wrong)."""
    if not isinstance(meta, dict):
        raise ZooError(f"its metadata is a JSON {type(meta).__name__}, expected an object")
    for key, (least, optional) in _COUNTERS.items():
        value = meta.get(key)
        if value is None and optional:
            continue
        if key not in meta:
            raise ZooError(f"its metadata lacks {key!r}")
        if not is_int(value) or value < least:
            raise ZooError(f"{key!r} must be an int >= {least}, got {value!r}")
    if meta["epoch"] > meta["epochs"]:
        raise ZooError(f"it records epoch {meta['epoch']} of a {meta['epochs']}-epoch run")
    if meta["step_in_epoch"] > steps_per_epoch:  # == : the steps done, the validation not yet
        raise ZooError(f"it records step {meta['step_in_epoch']} within an epoch of {steps_per_epoch} steps")
    best = meta.get("best_nll")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise ZooError(f"'best_nll' must be a number or null, got {best!r}")
    for key, kind in (("identity", dict), ("trainer_state", (dict, list))):
        if not isinstance(meta.get(key), kind):
            raise ZooError(f"its metadata lacks {key!r} or it is not a JSON object")
    return meta


def _restore(run: Run) -> Progress:
    tensors, meta = load_checkpoint(run.ckpt_path)
    meta = _checked_meta(meta, run.data.steps_per_epoch)
    _check_identity(run, meta["identity"])
    rec = run.rec
    if meta["epochs"] != rec["epochs"] and run.d.main:
        # only the cosine schedule depends on the run's length; constant and per-epoch decay do not
        more = f"; the cosine schedule now spans {rec['epochs']} epochs" if rec["lr_schedule"] == "cosine" else ""
        say(f"resuming a {meta['epochs']}-epoch run with epochs={rec['epochs']}{more}")
    _load_strict(run.model, prefixed(tensors, "model/"), "model weights")
    if run.ema is not None:
        ema_state = prefixed(tensors, "ema/")
        if not ema_state:
            raise ZooError("it has no EMA weights but the recipe has ema_decay > 0")
        _load_strict(run.ema.module, ema_state, "EMA weights")
    run.trainer.load_state_dict(unflatten_state(meta["trainer_state"], tensors))
    rng = prefixed(tensors, f"rng/{run.d.rank}/")
    if not rng:
        raise ZooError(f"it has no RNG state for rank {run.d.rank}")
    set_rng_state(rng, run.dev)
    return Progress(
        epoch=meta["epoch"],
        step_in_epoch=meta["step_in_epoch"],
        step=meta["step"],
        best_nll=meta.get("best_nll"),
        best_epoch=meta.get("best_epoch"),
        elapsed=meta.get("elapsed", 0.0),
        stages=meta.get("stages") or [{"epochs": meta["epochs"], "from_epoch": 0, "from_step": 0}],
    )


def _load_strict(module: Any, state: Mapping[str, Any], what: str) -> None:
    """Load `state` into `module` strictly; name what is missing, unexpected or reshaped."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or reshaped:
        parts = [
            f"{label} {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("reshaped", reshaped))
            if keys
        ]
        raise ZooError(f"its {what} do not fit the model ({'; '.join(parts)})")
    module.load_state_dict(state, strict=True)


def _with_new_defaults(saved: Any, now: Any) -> Any:
    """A checkpoint's recipe plus the schema keys added since it was written, where the run now keeps their
    default (e.g. `precision: fp32`): the same training as before, so resuming it is not refused."""
    if not isinstance(saved, Mapping) or not isinstance(now, Mapping):
        return saved
    added = {k: v for k, v in now.items() if k not in saved and k in RECIPE_SCHEMA and v == RECIPE_SCHEMA[k][0]}
    return {**saved, **added}


def _check_identity(run: Run, saved: Mapping[str, Any]) -> None:
    now = run.identity
    unchecked = saved.get("dataset_checksum") is None or now.get("dataset_checksum") is None
    if unchecked and run.d.main:
        note(
            f"dataset {now.get('dataset')!r} has no checksum (at least one side of this --resume lacks one), "
            f"so resuming {run.ckpt_path} cannot check that it continues on the same data"
        )
    saved = {**saved, "recipe": _with_new_defaults(saved.get("recipe"), now.get("recipe"))}
    diffs = []
    for key in sorted(set(saved) | set(now)):
        if key == "dataset_checksum" and unchecked:
            continue
        if json.loads(json.dumps(saved.get(key))) != json.loads(json.dumps(now.get(key))):
            diffs.append(f"{key}: checkpoint {json.dumps(saved.get(key))}, now {json.dumps(now.get(key))}")
    if diffs:
        raise ZooError(
            f"cannot resume {run.ckpt_path}: the run differs from the checkpoint's:\n  "
            + "\n  ".join(diffs)
            + "\n(only epochs may change; start a new --out to train differently)"
        )
