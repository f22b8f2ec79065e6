"""Training: recipes, the loop, EMA, checkpoints and exact resume, DistributedDataParallel, the release.

    import zoo
    result = zoo.train("pixelcnn", dataset="binarized-mnist", recipe="default", out="runs/pixelcnn")
    result.model          # the released weights (best on validation, EMA), eval mode
    result.release_dir    # config.json, model.safetensors, training_curve.png, train_log.jsonl, ...

The package, one job per module (each imports only those above it, plus the core):

    recipe.py      the recipe schema, resolving and checking a recipe, --set overrides
    optim.py       the optimizer and the per-step learning-rate schedule
    checkpoint.py  the state codec and atomic checkpoint files; RNG state
    trainer.py     MaximumLikelihoodTrainer; finding and checking a family's trainer
    data.py        the dataset and its splits, per-epoch redraws, validation NLL
    state.py       the run folder's layout, Progress, Run, TrainEvent, TrainResult
    log.py         train_log.jsonl, the progress bar, console messages
    device.py      --device, and the hardware line of the card
    plot.py        training_curve.png
    resume.py      what a checkpoint holds; --resume
    release.py     released weights, test-split evaluation, the release folder
    loop.py        train(): the steps of a run

What a family implements to train a model without a likelihood is
`zoo.protocols.Trainer`. The names below are this package's public API; names
that used to live at `zoo.training` top level and moved to a module or to
`zoo.distributed` still resolve here for one release, with a DeprecationWarning.
"""

from __future__ import annotations

from ..util import lazy_getattr
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import train
from .optim import build_optimizer, build_scheduler
from .plot import plot_training_curves
from .recipe import RECIPE_SCHEMA, RecipeError, recipe_keys, resolve_recipe, split_overrides
from .release import save_release_weights
from .state import TrainEvent, TrainResult
from .trainer import MaximumLikelihoodTrainer, wrap_ddp

__all__ = [
    "RECIPE_SCHEMA",
    "RecipeError",
    "resolve_recipe",
    "recipe_keys",
    "split_overrides",
    "MaximumLikelihoodTrainer",
    "build_optimizer",
    "build_scheduler",
    "wrap_ddp",
    "TrainEvent",
    "TrainResult",
    "train",
    "save_checkpoint",
    "load_checkpoint",
    "plot_training_curves",
    "save_release_weights",
]

# old top-level name -> the module that holds it now (for one release)
_MOVED = {
    "shard_indices": "zoo.distributed",
    "CHECKPOINT": "zoo.training.state",
    "BEST": "zoo.training.state",
    "LOG": "zoo.training.state",
    "RELEASE": "zoo.training.state",
    "LOOP_KEYS": "zoo.training.recipe",
    "OPTIMIZERS": "zoo.training.recipe",
    "SCHEDULES": "zoo.training.recipe",
    "PRECISIONS": "zoo.training.recipe",
    "flatten_state": "zoo.training.checkpoint",
    "unflatten_state": "zoo.training.checkpoint",
    "lr_factor": "zoo.training.optim",
    "validation_nll": "zoo.training.data",
    "is_conditional": "zoo.training.data",
}

__getattr__ = lazy_getattr(__name__, {}, moved={name: f"{module}:{name}" for name, module in _MOVED.items()})
