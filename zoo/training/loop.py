"""`train`: the training loop, written as the steps of a run.

    resolve the recipe -> set up (model, data, trainer, EMA) -> start or resume
    -> epochs (steps; then validate, select, checkpoint) -> finish (released weights,
    test-split evaluation, release folder)

The same code runs on one CPU, on a GPU (`device="cuda"`) and under `torchrun`
(one process per device; gloo on CPU, NCCL on GPU). Each step is a function
below, in the order a run takes them; they share one `Run` (`state.py`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..distributed import Dist, all_reduce_, barrier, finish, init_from_env, shard_indices
from ..errors import ZooError
from ..eval.trainlog import run_history
from ..factory import create
from ..registry import get_spec, parse_name
from ..util import is_positive_int, keep_freed_memory
from .checkpoint import save_checkpoint, state_dict_cpu
from .data import load_data, redraw, validation_nll
from .device import hardware, resolve_device
from .log import MetricsWindow, note, progress_bar, say, truncate_log, write_jsonl
from .recipe import RecipeError, resolve_recipe
from .release import evaluate_on_test, released_weights, write_release
from .resume import restore_run, run_identity, save_run
from .state import BEST, RELEASE, Run, TrainEvent, TrainResult
from .trainer import MaximumLikelihoodTrainer, epoch_samples, trainer_class

__all__ = ["train", "Signals"]

Callback = Callable[[TrainEvent], None]


def train(
    name: str,
    *,
    dataset: Any = None,
    recipe: str | Mapping[str, Any] = "default",
    epochs: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    limit: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    tiny: bool = False,
    seed: int | None = None,
    progress: bool = True,
    evaluate: bool = True,
    samples: int = 16,
    callbacks: Sequence[Callback] = (),
    init_from: str | None = None,
) -> TrainResult:
    """Train the registered model `name` and write a release folder.

    - `dataset`: a registered dataset name or a `zoo.data.Dataset`; default: the
      recipe's `dataset`, else the dataset of the model's released weights, else
      the one registered dataset whose data spec matches the model's.
    - `recipe`: a recipe name from `ModelSpec.recipes` or a dict; `overrides`
      (recipe keys), `epochs` and `seed` replace its entries. See `RECIPE_SCHEMA`.
    - `config`: constructor overrides (after the recipe's `model` and, with
      `tiny`, the spec's `test_config`).
    - `out`: the run folder (default `runs/NAME-DATASET`): `checkpoint.safetensors`,
      `best.safetensors`, `train_log.jsonl`, `release/`. A folder holding a
      checkpoint is only continued with `resume=True`.
    - `limit`: use only the first `limit` images of the train and valid splits.
    - `device`: "cpu", "cuda", "cuda:N"; default CUDA when available.
    - `evaluate`: run the shared harness (`zoo.evaluate`) on the test split at the end.
    - `samples`: images in the release's samples.png (0 = none).
    - `callbacks`: called with a `TrainEvent` after each step and epoch; raising
      `KeyboardInterrupt` there stops training like Ctrl-C (checkpoint first).
    - `init_from`: start from the weights of a release (a `zoo.load` name: `arch.tag`,
      `local-dir:PATH`, `hf-hub:...`) of the same architecture and config, with a fresh
      optimizer and schedule; the first stage records its name and sha256. Not with `resume`
      (the checkpoint holds the weights).

    Ctrl-C or SIGTERM: the step in progress finishes, a checkpoint is written and
    `KeyboardInterrupt` is raised. The validation NLL, best-epoch selection and
    the released weights use the EMA of the weights when `ema_decay > 0`.
    """
    t_start = time.perf_counter()
    keep_freed_memory()  # every step allocates the same large activations: reuse them (zoo.util)
    spec, trainer_cls, rec, recipe_name = _resolve(name, recipe, overrides, epochs=epochs, seed=seed)
    if limit is not None and not is_positive_int(limit):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if init_from is not None and resume:
        raise ZooError("init_from starts a run from released weights and resume continues a checkpoint: give one")
    dev = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    d = init_from_env(dev.type)
    clean = False
    try:
        run = _set_up(
            name,
            spec,
            trainer_cls,
            rec,
            recipe_name,
            d,
            dev,
            dataset=dataset,
            config=config,
            tiny=tiny,
            limit=limit,
            out=out,
            init_from=init_from,
        )
        run.sets = {**dict(overrides or {}), **{f"model.{k}": v for k, v in (config or {}).items()}}
        _start_or_resume(run, resume)
        _run_epochs(run, progress=progress, callbacks=callbacks)
        result = _finish(run, evaluate=evaluate, samples=samples, t_start=t_start, progress=progress)
        clean = True
        return result
    finally:
        finish(d, clean=clean)


def _resolve(
    name: str,
    recipe: str | Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    *,
    epochs: int | None,
    seed: int | None,
) -> tuple[Any, type, dict[str, Any], str]:
    """The spec, its trainer class, the full recipe (with `epochs` and `seed` applied) and the recipe's name."""
    parsed = parse_name(name)
    if parsed.kind != "registry":
        raise ValueError(f"zoo.train trains a registered architecture, got {name!r}")
    spec = get_spec(parsed.arch)
    trainer_cls = trainer_class(spec)
    ov = dict(overrides or {})
    if epochs is not None:
        ov["epochs"] = epochs
    if seed is not None:
        ov["seed"] = seed
    rec = resolve_recipe(spec, recipe, ov, extra_defaults=dict(getattr(trainer_cls, "recipe_defaults", {}) or {}))
    return spec, trainer_cls, rec, recipe if isinstance(recipe, str) else "custom"


def _tiny_network(spec: Any, dataset: Any) -> dict[str, Any]:
    """`--tiny` for training: the test config's network size, on the dataset's own images (its
    channels, height, width and levels are the data's, not the 8x8 of the tests): the given
    dataset's, or else the recipe's (whose config names its image shape)."""
    net = {k: v for k, v in spec.test_config.items() if k not in ("channels", "height", "width", "levels")}
    if dataset is not None:
        from ..data import get_dataset

        images = getattr(get_dataset(dataset), "data_spec", None)
        if images is not None:
            net.update(images.to_dict())
    return net


def _set_up(
    name: str,
    spec: Any,
    trainer_cls: type,
    rec: dict[str, Any],
    recipe_name: str,
    d: Dist,
    dev: torch.device,
    *,
    dataset: Any,
    config: Mapping[str, Any] | None,
    tiny: bool,
    limit: int | None,
    out: str | Path | None,
    init_from: str | None,
) -> Run:
    """The model (same seed on every process, so every rank starts from the same weights, or from the
    release `init_from`), the data, the trainer and the EMA, and the run folder."""
    if d.on and trainer_cls is not MaximumLikelihoodTrainer and not getattr(trainer_cls, "supports_distributed", False):
        raise ZooError(f"{spec.trainer} does not declare supports_distributed = True; run it in one process")
    if rec["batch_size"] % d.world:
        raise RecipeError(
            f"batch_size {rec['batch_size']} is the global batch; it must divide by the {d.world} processes"
        )
    cfg = {**rec["config"], **(_tiny_network(spec, dataset) if tiny else {}), **dict(config or {})}
    torch.manual_seed(rec["seed"])
    model = create(name, **cfg)
    init = _init_weights(model, init_from) if init_from is not None else None
    model = model.to(dev)
    data = load_data(dataset, spec, model, rec, limit, d, dev)
    trainer = trainer_cls(
        model,
        {**rec, "steps_per_epoch": data.steps_per_epoch, "total_steps": data.steps_per_epoch * rec["epochs"]},
        dev,
    )
    ema = None
    if rec["ema_decay"] > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=rec["ema_decay"], use_warmup=rec["ema_warmup"], warmup_power=3 / 4)
    torch.manual_seed(rec["seed"] + d.rank)  # the training draws (dropout, noise) of this process
    out_dir = Path(out) if out is not None else Path("runs") / f"{spec.name}-{data.ds.name}"
    return Run(
        name=name,
        spec=spec,
        rec=rec,
        recipe_name=recipe_name,
        cfg=cfg,
        limit=limit,
        dev=dev,
        d=d,
        model=model,
        ema=ema,
        trainer=trainer,
        data=data,
        out_dir=out_dir,
        identity=run_identity(spec, model, data.ds, limit, d, rec),
        init_from=init,
    )


def _init_weights(model: Any, init_from: str) -> dict[str, Any]:
    """Copy the weights of the release `init_from` (verified by sha256, loaded strictly by `zoo.load`)
    into `model`, which must be the same architecture with the same config; returns its name and sha256, and
    the release's own training history where its folder has one (`zoo.eval.trainlog.run_history`)."""
    from ..factory import load
    from ..specs import full_config

    source = load(init_from)
    if source.zoo_name != model.zoo_name:
        raise ZooError(f"init_from={init_from!r} is a {source.zoo_name}, not the {model.zoo_name} being trained")
    ours, theirs = full_config(model), full_config(source)
    diff = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if diff:
        raise ZooError(
            f"init_from={init_from!r} has another config than the {model.zoo_name} being trained ("
            + ", ".join(f"{k}: {theirs.get(k, '(unset)')} there, {ours.get(k, '(unset)')} here" for k in diff)
            + "); give the same options (--set model.KEY=VALUE) or another release"
        )
    model.load_state_dict(source.state_dict(), strict=True)
    init: dict[str, Any] = {"name": init_from, "sha256": source.zoo_weights.sha256}
    try:
        history = run_history(Path(source.zoo_weights.path).parent) if source.zoo_weights.path else None
    except (OSError, ValueError, KeyError, TypeError) as e:  # the weights are verified; their records are not
        note(f"init_from={init_from!r}: its training records are unreadable ({e}); the card will count this run only")
        history = None
    if history is not None:  # the cards then count the epochs and hours of every run behind these weights
        init["history"] = history
    return init


def _start_or_resume(run: Run, resume: bool) -> None:
    """Continue the run's checkpoint (`resume`) or start afresh; record a new stage when `epochs` changed."""
    if run.ckpt_path.is_file() and not resume:
        raise ZooError(
            f"{run.out_dir} already holds a training checkpoint; pass --resume to continue it or choose another --out"
        )
    if resume:
        if not run.ckpt_path.is_file():
            raise ZooError(f"--resume: no checkpoint at {run.ckpt_path}")
        run.state = restore_run(run)
        if run.state.epoch > run.rec["epochs"]:
            raise ZooError(
                f"cannot resume from {run.ckpt_path}: it has done {run.state.epoch} epochs already, so "
                f"epochs={run.rec['epochs']} would train nothing; give more than {run.state.epoch} "
                "epochs to train on, or use the run's release as it is"
            )
    st = run.state
    # a new stage when the epochs change, or when a resume runs on other hardware (threads, devices)
    here = hardware(run.dev, run.d.world)
    if not st.stages or st.stages[-1]["epochs"] != run.rec["epochs"] or st.stages[-1].get("hardware") != here:
        st.stages.append({"epochs": run.rec["epochs"], "from_epoch": st.epoch, "from_step": st.step, "hardware": here})
        if run.init_from is not None and len(st.stages) == 1:
            st.stages[0]["init_from"] = run.init_from
    if run.d.main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            truncate_log(run.log_path, st.step)
        else:
            run.log_path.unlink(missing_ok=True)
    barrier(run.d)


def _run_epochs(run: Run, *, progress: bool, callbacks: Sequence[Callback]) -> None:
    """The epochs from where the run stands to `epochs`. Ctrl-C / SIGTERM: finish the step, checkpoint, stop."""
    signals = Signals().install()
    run.t_run = time.perf_counter()
    window = MetricsWindow(run.log_path, write=run.d.main)
    try:
        for epoch in range(run.state.epoch, run.rec["epochs"]):
            _train_epoch(run, epoch, window, signals, progress=progress, callbacks=callbacks)
            record = _end_epoch(run, epoch, progress=progress)
            for cb in callbacks:
                cb(
                    TrainEvent(
                        "epoch", epoch, run.state.step, 0, {k: v for k, v in record.items() if isinstance(v, float)}
                    )
                )
            if signals.received is not None:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        _on_interrupt(run)
        raise
    finally:
        signals.restore()
    run.state.elapsed += time.perf_counter() - run.t_run


def _train_epoch(
    run: Run, epoch: int, window: MetricsWindow, signals: Signals, *, progress: bool, callbacks: Sequence[Callback]
) -> None:
    """The optimizer steps of `epoch` (from `step_in_epoch` when resuming inside it), with EMA and logging."""
    rec, st, data, d = run.rec, run.state, run.data, run.d
    if rec["dynamic_binarization"]:
        data.train_x = redraw(data.ds, rec, epoch, run.limit, data.data_spec).to(data.train_x.device)
    order = shard_indices(len(data.train_x), seed=rec["seed"], epoch=epoch, rank=d.rank, world=d.world).to(
        data.train_x.device
    )
    b = data.per_rank_batch
    bar = progress_bar(
        total=data.steps_per_epoch,
        initial=st.step_in_epoch,
        desc=f"epoch {epoch + 1}/{rec['epochs']}",
        disable=not (progress and d.main),
    )
    try:
        for k in range(st.step_in_epoch, data.steps_per_epoch):
            idx = order[k * b : (k + 1) * b]
            x = data.train_x[idx].to(run.dev, non_blocking=True).long()
            y = data.train_y[idx].to(run.dev, non_blocking=True) if data.train_y is not None else None
            run.in_step = True
            metrics = run.trainer.step(x, y)
            if run.ema is not None:
                run.ema.update(run.model, step=st.step + 1)
            st.step, st.step_in_epoch = st.step + 1, k + 1
            run.in_step = False
            window.add(metrics, len(x) * d.world)
            bar.update(1)
            bar.set_postfix(
                {key: f"{v:.4g}" for key, v in metrics.items() if key in ("loss", "bpd")}
                or {key: f"{v:.4g}" for key, v in list(metrics.items())[:3]},
                refresh=False,
            )
            if st.step % rec["log_every"] == 0 or st.step_in_epoch == data.steps_per_epoch:
                window.flush(epoch + 1, st.step)  # the mean of each metric since the last record
            for cb in callbacks:
                cb(TrainEvent("step", epoch, st.step, st.step_in_epoch, dict(metrics)))
            stop = torch.tensor([1.0 if signals.received is not None else 0.0], device=run.dev)
            if float(all_reduce_(stop, d, "max")) > 0:  # any process signalled: all stop at this step
                raise KeyboardInterrupt
    finally:
        bar.close()


def _end_epoch(run: Run, epoch: int, *, progress: bool) -> dict[str, Any]:
    """Validate (EMA weights), keep the best, log, save the trainer's epoch samples, checkpoint."""
    st, data = run.state, run.data
    record: dict[str, Any] = {"kind": "valid", "epoch": epoch + 1, "step": st.step, "ema": run.ema is not None}
    if data.valid_x is not None:
        nll = validation_nll(
            run.eval_model,
            data.valid_x,
            batch_size=run.rec["eval_batch_size"],
            device=run.dev,
            labels=data.valid_y,
            iw_samples=run.rec["valid_iw_samples"],
        )
        improved = st.best_nll is None or nll < st.best_nll
        record.update({"nll": nll, "bpd": data.data_spec.bits_per_dim(nll), "best": improved})
        if improved:
            st.best_nll, st.best_epoch = nll, epoch + 1
            if run.d.main:
                save_checkpoint(
                    run.out_dir / BEST,
                    state_dict_cpu(run.eval_model),
                    {"epoch": epoch + 1, "step": st.step, "valid_nll": nll, "ema": run.ema is not None},
                )
    if run.d.main:
        record["elapsed_s"] = run.elapsed()
        write_jsonl(run.log_path, record)
        if progress:
            msg = (
                f"epoch {epoch + 1}: valid NLL {record['nll']:.3f} nats ({record['bpd']:.4f} bits/dim)"
                if "nll" in record
                else f"epoch {epoch + 1} done"
            )
            say(msg + (" *best*" if record.get("best") else ""))
        images = epoch_samples(run.trainer)
        if images is not None:
            from ..images import save_grid

            save_grid(images, run.out_dir / "samples" / f"epoch{epoch + 1:03d}.png", data.data_spec.levels, scale=2)
    st.epoch, st.step_in_epoch = epoch + 1, 0
    save_run(run)
    return record


def _on_interrupt(run: Run) -> None:
    """Checkpoint where the run stands, unless the interrupt came inside a step (then the last one stays)."""
    if run.in_step:
        if run.d.main:
            say(f"interrupted inside a step; keeping the last checkpoint in {run.out_dir}")
        return
    save_run(run)
    if run.d.main:
        st = run.state
        say(
            f"interrupted at epoch {st.epoch + (st.step_in_epoch > 0)}, step {st.step}; "
            f"checkpoint written to {run.ckpt_path}; continue with --resume"
        )


def _finish(run: Run, *, evaluate: bool, samples: int, t_start: float, progress: bool) -> TrainResult:
    """The released weights, the test-split evaluation (every rank) and the release folder (rank 0)."""
    best = released_weights(run)
    result = evaluate_on_test(best, run, progress=progress) if evaluate else None
    release_dir = None
    if run.d.main:
        release_dir = run.out_dir / RELEASE
        write_release(release_dir, best, run, result, samples)
    barrier(run.d)
    st = run.state
    return TrainResult(
        out=run.out_dir,
        model=best,
        last=run.model,
        ema=run.ema.module if run.ema is not None else None,
        epochs=st.epoch,
        steps=st.step,
        best_epoch=st.best_epoch,
        best_valid_nll=st.best_nll,
        release_dir=release_dir,
        eval=(result.to_dict() if hasattr(result, "to_dict") else result) if result is not None else None,
        wall_time_s=time.perf_counter() - t_start,
    )


class Signals:
    """First Ctrl-C or SIGTERM: finish the step, checkpoint, stop. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> Signals:
        if threading.current_thread() is not threading.main_thread():
            return self

        def handler(signum: int, frame: Any) -> None:
            if self.received is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.received = signum

        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.getsignal(s)
            signal.signal(s, handler)
        return self

    def restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()
