"""`zoo train`: parse, call `zoo.train`, print. Also runs under `torchrun ... -m zoo train`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .models import parse_overrides, threads_option, tiny_option

if TYPE_CHECKING:
    from ..registry import ModelSpec


def _check_model_options(spec: ModelSpec, keys: list[str], extra: dict) -> None:
    """A bare `--set KEY` that is neither a recipe key nor a model option: say what both are."""
    from ..errors import ArgumentError
    from ..specs import builder_options
    from ..training import recipe_keys
    from ..util import did_you_mean

    options = builder_options(spec)
    if options is None:  # the builder takes any keyword
        return
    unknown = [k for k in keys if k not in options]
    if unknown:
        recipe = recipe_keys(extra)
        raise ArgumentError(
            f"--set {unknown[0]}: neither a recipe key nor an option of {spec.name}"
            f"{did_you_mean(unknown[0], recipe + options)}\n  recipe keys: {', '.join(recipe)}"
            f"\n  model options: {', '.join(options)}"
        )


@click.command("train")
@click.argument("name")
@click.option("--dataset", help="A registered dataset (default: the recipe's, or the one matching the model).")
@click.option("--recipe", default="default", show_default=True, help="A recipe registered with the model.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the recipe's epochs.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME-DATASET).")
@click.option("--resume", is_flag=True, help="Continue the checkpoint in --out exactly where it stopped.")
@click.option(
    "--init-from",
    metavar="NAME",
    help="Start from a release's weights (arch.tag, local-dir:PATH): same config, a fresh optimizer.",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or cuda:N; auto = cuda when available.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N images of the train and valid splits.")
@click.option("--seed", type=int, help="Override the recipe's seed.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="A recipe key (lr=3e-4) or a model option (hidden=32); recipe.KEY= / model.KEY= force one.",
)
@tiny_option
@threads_option
@click.option("--no-eval", is_flag=True, help="Skip the harness on the test split at the end.")
@click.option("--samples", default=16, show_default=True, help="Images in the release's samples.png (0: none).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train_cmd(
    name: str,
    dataset: str | None,
    recipe: str,
    epochs: int | None,
    out: str | None,
    resume: bool,
    init_from: str | None,
    device: str,
    limit: int | None,
    seed: int | None,
    overrides: tuple[str, ...],
    tiny: bool,
    no_eval: bool,
    samples: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train NAME: recipe, EMA, validation every epoch, checkpoints, a release folder.

    --set KEY=VALUE sets a recipe key (lr, batch_size, ema_decay, ...) or, when
    KEY is not one, a model option; force either with recipe.KEY or model.KEY.
    Ctrl-C writes a checkpoint; --resume continues it. --init-from starts from
    a release's weights (a fresh optimizer), e.g. to train a release further. Under
    `torchrun --nproc-per-node N -m zoo train ...` it trains with DDP.
    """
    from ..factory import import_builder
    from ..registry import get_spec, parse_name
    from ..training import split_overrides, train
    from ..util import check_writable

    if out:
        check_writable(out, "--out", directory=True)  # before any data or model loads
    spec = get_spec(parse_name(name).arch)
    extra = getattr(import_builder(spec.trainer), "recipe_defaults", {}) if spec.trainer else {}

    pairs = parse_overrides(overrides)
    rec_over, cfg_over = split_overrides(name, pairs, recipe_extra=extra)
    _check_model_options(spec, [k for k in cfg_over if k in pairs], extra)
    try:
        result = train(
            name,
            dataset=dataset,
            recipe=recipe,
            epochs=epochs,
            out=out,
            resume=resume,
            init_from=init_from,
            device=device,
            limit=limit,
            overrides=rec_over,
            config=cfg_over,
            tiny=tiny,
            seed=seed,
            progress=not quiet,
            evaluate=not no_eval,
            samples=samples,
        )
    except KeyboardInterrupt:
        click.echo("interrupted; continue with the same command and --resume", err=True)
        raise SystemExit(130) from None
    if result.release_dir is None:  # ranks other than 0 print nothing
        return
    summary = {
        "out": str(result.out),
        "release": str(result.release_dir),
        "epochs": result.epochs,
        "steps": result.steps,
        "best_epoch": result.best_epoch,
        "best_valid_nll": result.best_valid_nll,
        "best_valid_bpd": (
            result.model.data_spec.bits_per_dim(result.best_valid_nll) if result.best_valid_nll is not None else None
        ),
        "wall_time_s": round(result.wall_time_s, 1),
        "eval": result.eval,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    if result.best_valid_nll is not None:
        click.echo(
            f"best valid NLL {result.best_valid_nll:.3f} nats/image ({summary['best_valid_bpd']:.4f} bits/dim) "
            f"at epoch {result.best_epoch}"
        )
    click.echo(
        f"{result.epochs} epochs, {result.steps} steps, {summary['wall_time_s']} s; release in {result.release_dir}"
    )


COMMANDS = [train_cmd]
