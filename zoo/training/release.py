"""The end of a run: the released weights (best on validation), the harness on the test split, and the
release folder (config.json, model.safetensors, card, samples.png, eval.json, training.json, log, curve).

The card and `save_pretrained` come from the release layer; this module only decides
what goes into the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..eval.trainlog import continued
from ..factory import create
from ..release.folder import CURVE_NAME
from ..util import write_atomic
from .checkpoint import load_checkpoint
from .device import hardware
from .log import read_jsonl, say
from .plot import plot_training_curves
from .state import BEST, LOG, Run

__all__ = ["released_weights", "evaluate_on_test", "release_samples", "write_release", "save_release_weights"]


def released_weights(run: Run) -> nn.Module:
    """The weights to release, in eval mode: the best on validation, else the last evaluated ones (EMA when enabled)."""
    best = create(run.name, **run.cfg).to(run.dev)
    if run.data.valid_x is not None and (run.out_dir / BEST).is_file():
        best_tensors, _ = load_checkpoint(run.out_dir / BEST)
        best.load_state_dict(best_tensors, strict=True)
    else:
        best.load_state_dict(run.eval_model.state_dict(), strict=True)
    return best.eval()


def evaluate_on_test(model: Any, run: Run, *, progress: bool = True) -> Any:
    """The shared harness on the test split (a seeded subset of `limit` images with --limit): NLL for a
    likelihood model, the sample metrics (FID, precision, recall, Parzen) for a sampler without one (a GAN),
    with the same evaluation on the canonical subset of the test split (`zoo.release.canonical`).

    Every rank calls it (the harness shards the split itself); `progress` shows the scoring's bars (on rank 0
    only; `zoo train --quiet` turns them off). Skipped with a
    message, returning None, when the dataset has no test split.
    """
    from ..eval import evaluate
    from ..plugins import get_registry

    ds = run.data.ds
    splits = tuple(getattr(ds, "splits", ()) or ())
    if splits and "test" not in splits:
        if run.d.main:
            say(f"evaluation skipped: dataset {ds.name!r} has no test split; run `zoo eval` on the release folder")
        return None
    from ..release.canonical import CANONICAL_LIMIT, canonical_subset

    registered = get_registry().datasets.get(ds.name) is ds
    likelihood = callable(getattr(model, "log_prob", None)) or callable(getattr(model, "log_prob_bound", None))
    metrics = "nll" if likelihood else "fid,precision,recall,parzen"
    dataset = ds.name if registered else ds
    bars = progress and run.d.main
    result = evaluate(
        model, dataset=dataset, split="test", metrics=metrics, limit=run.limit, device=run.dev, progress=bars
    )
    # the claims on the canonical subset, for a quick exact `zoo publish --limit` check (not for quick --limit runs
    # that score fewer images: `zoo card DIR` adds them); a dataset that is not registered could not verify them
    if registered and (run.limit is None or run.limit >= CANONICAL_LIMIT):
        result.canonical_subset = canonical_subset(model, result, dataset=dataset, device=run.dev, progress=bars)
    return result


def save_release_weights(model: Any, folder: str | Path, **card: Any) -> Path:
    """config.json + model.safetensors (+ README.md card and samples.png) through `zoo.save_pretrained`.

    `card` goes to `zoo.release.save_pretrained` (results, samples, recipe, tag, dataset,
    hardware, limitations).
    """
    from ..release import save_pretrained

    return Path(save_pretrained(model, folder, **card))


def release_samples(model: Any, n: int, seed: int, device: Any = "cpu") -> torch.Tensor | None:
    """The release's `n` samples, drawn from a generator seeded with the recipe's seed (None: none asked, or a
    model that cannot sample)."""
    if n <= 0 or not callable(getattr(model, "sample", None)):
        return None
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        return model.sample(n, generator=g)


def write_release(folder: Path, model: Any, run: Run, result: Any, samples: int) -> None:
    """Write the release folder from scratch (rank 0 only); `result` is the harness's, or None."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if result is not None:
        results = result.to_dict() if hasattr(result, "to_dict") else result
        write_atomic(folder / "eval.json", json.dumps(results, indent=2, default=str) + "\n")
    x = release_samples(model, samples, run.rec["seed"], run.dev)
    summary = _training_summary(model, run)
    st, rec, ds = run.state, run.rec, run.data.ds
    limitations = []
    if run.limit is not None:
        limitations.append(f"trained on the first {run.limit} images of the {rec['train_split']} split only (--limit)")
    save_release_weights(
        model,
        folder,
        results=result,
        samples=x,
        recipe={"name": run.recipe_name, **rec},
        tag=ds.name,
        dataset=ds.name,
        hardware=f"{summary['hardware']}, {st.elapsed / 60:.1f} min, {st.epoch} epochs",
        limitations=limitations or None,
        training=summary,
    )
    if x is not None and not (folder / "samples.png").is_file():
        from ..images import save_grid

        save_grid(x, folder / "samples.png", model.data_spec.levels, scale=2)
    write_atomic(folder / LOG, Path(run.log_path).read_bytes())
    plot_training_curves(  # on the clock of every run behind these weights (`--init-from` a release with a history)
        continued(read_jsonl(run.log_path), summary), folder / CURVE_NAME, title=f"{run.spec.name} on {ds.name}"
    )
    write_atomic(folder / "training.json", json.dumps(summary, indent=2) + "\n")
    if result is not None:  # the card as `zoo card` renders it from the folder (with the training command)
        from ..release import render_release_card

        render_release_card(folder, canonical=False)  # computed with the result, by every process


def _training_summary(model: Any, run: Run) -> dict[str, Any]:
    """training.json: what was trained, how, for how long, on what."""
    st = run.state
    return {
        "model": run.spec.name,
        "config": dict(model.zoo_config),
        "dataset": run.data.ds.name,
        "recipe_name": run.recipe_name,
        "recipe": dict(run.rec),
        "set": dict(run.sets),
        "epochs": st.epoch,
        "steps": st.step,
        "stages": st.stages,
        "best_epoch": st.best_epoch,
        "best_valid_nll": st.best_nll,
        "best_valid_bpd": model.data_spec.bits_per_dim(st.best_nll) if st.best_nll is not None else None,
        "weights": "EMA of the weights" if run.ema is not None else "raw weights",
        "limit": run.limit,
        "wall_time_s": round(st.elapsed, 1),
        "hardware": hardware(run.dev, run.d.world),
        "world_size": run.d.world,
        "torch": torch.__version__,
        "zoo": __version__,
    }
