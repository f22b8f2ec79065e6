"""`zoo eval`: the shared harness from the shell (also under `torchrun --nproc-per-node N -m zoo eval ...`)."""

from __future__ import annotations

import json
import os
import warnings

import click

from .models import threads_option


def _names_for_all(dataset: str | None) -> tuple[str, list[str]]:
    """The dataset and every registered model with weights released for it, as `arch.tag` (the
    leaderboard's rows). Without `dataset`: the dataset most releases are for (binarized MNIST, the
    zoo's benchmark), saying so when others have releases too; a tie needs `--dataset`."""
    from collections import Counter

    from ..eval.harness import get_dataset
    from ..plugins import get_registry

    if dataset is None:
        counts = Counter(w.dataset for spec in get_registry().models.values() for w in spec.weights if w.dataset)
        ranked = counts.most_common()
        if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
            raise click.UsageError(
                f"--all: pass --dataset (weights are released for: {', '.join(sorted(counts)) or 'none'})"
            )
        dataset = ranked[0][0]
        if len(ranked) > 1:
            click.echo(
                f"--all: scoring the {dataset} releases (weights are also released for "
                f"{', '.join(sorted(counts.keys() - {dataset}))}: pass --dataset for those)",
                err=True,
            )
    ds = get_dataset(dataset)
    names = []
    for arch, spec in sorted(get_registry().models.items()):
        tags = [w.tag for w in spec.weights if w.dataset == ds.name]
        if tags:
            names.append(f"{arch}.{tags[0]}")
        else:
            click.echo(
                f"skipping {arch}: no weights released for {ds.name} "
                f"(`zoo eval {arch} --dataset {ds.name}` scores a random init)",
                err=True,
            )
    if not names:
        raise click.UsageError(f"no registered model has weights released for {ds.name}")
    return ds.name, names


def _command(names: tuple[str, ...], all_models: bool, **options) -> str:
    """The `zoo eval` command line that reproduces a report (options at their defaults left out)."""
    import shlex

    defaults = {p.name: p.default for p in eval_cmd.params}
    words = ["zoo", "eval", *(["--all"] if all_models else names)]
    renamed = {"samples": "num_samples", "report": "report_dir"}
    for key, value in options.items():
        if value is None or value is False or value == defaults.get(renamed.get(key, key)):
            continue  # (a flag's default is click's UNSET sentinel, not False)
        flag = "--" + key.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


@click.command("eval")
@click.argument("names", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every model with weights released for the dataset.")
@click.option(
    "--dataset",
    default=None,
    help="Default: the dataset the model's weights were trained on, else the one whose images fit the "
    "model; with --all, the one dataset with released weights.",
)
@click.option("--split", default="test", show_default=True)
@click.option(
    "--metrics",
    default="nll",
    show_default=True,
    help="Comma-separated: nll, fid, precision, recall, parzen, speed, any a plugin adds, or 'all'.",
)
@click.option(
    "--limit",
    type=int,
    default=None,
    help="Score a seeded random subset of N images of the split (same --seed, same images).",
)
@click.option(
    "--samples",
    "num_samples",
    type=int,
    default=1000,
    show_default=True,
    help="Samples drawn for fid, precision, recall and parzen.",
)
@click.option(
    "--iw-samples",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Importance samples k of a bounded model's nll (a VAE: an upper bound on the NLL, marked ≤). "
    "Costs k decoder passes per image: docs/eval.md.",
)
@click.option("--batch-size", type=int, default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK).",
)
@click.option("--random-init", is_flag=True, help="Score random weights even where released weights exist.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON list to FILE.")
@click.option(
    "--parts",
    type=click.Path(file_okay=False),
    default=None,
    help="Write each batch's nll to a file in DIR as it is done, and reuse the ones there: a long score (a bound "
    "at k=5000) that is stopped goes on where it left off, with the same numbers. One NAME.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write DIR/leaderboard.md, DIR/results.json and a sample grid PNG per model.",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@threads_option
def eval_cmd(
    names: tuple[str, ...],
    all_models: bool,
    dataset: str,
    split: str,
    metrics: str,
    limit: int | None,
    num_samples: int,
    iw_samples: int,
    batch_size: int,
    seed: int,
    device: str,
    random_init: bool,
    as_json: bool,
    out: str | None,
    parts: str | None,
    report_dir: str | None,
    no_progress: bool,
) -> None:
    """Score models on a dataset split: NLL (exact, or an upper bound for a VAE), FID, precision/recall, Parzen, speed.

    \b
    zoo eval pixelcnn                           # nll on the binarized-MNIST test split
    zoo eval --all --metrics nll,fid --report out/
    torchrun --nproc-per-node 2 -m zoo eval pixelcnn   # the split sharded over 2 processes
    """
    from ..distributed import finish, init_from_env
    from ..eval.harness import evaluate, resolve_metrics
    from ..eval.report import write_report
    from ..eval.result import format_table
    from ..util import check_writable, write_atomic

    if bool(names) == all_models:
        raise click.UsageError("give model NAMEs or --all (not both)")
    resolve_metrics(metrics)  # unknown metric names fail before any model loads
    if out:  # so do output paths that cannot be written
        check_writable(out, "--out")
    if parts:
        if len(names) != 1:
            raise click.UsageError("--parts holds one evaluation's batches: give one model NAME")
        check_writable(parts, "--parts", directory=True)
    if report_dir:
        check_writable(report_dir, "--report", directory=True)
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    group = init_from_env(device)
    clean = False
    try:
        main = group.main
        asked = dataset  # the report's command repeats what was asked
        if not names:
            dataset, todo = _names_for_all(dataset)
        else:
            todo = list(names)
        results, failed = [], []
        for name in todo:
            if main and not as_json:
                click.echo(f"evaluating {name} on {dataset or 'its dataset'}[{split}] ...", err=True)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    r = evaluate(
                        name,
                        dataset,
                        split,
                        metrics,
                        batch_size=batch_size,
                        seed=seed,
                        limit=limit,
                        num_samples=num_samples,
                        iw_samples=iw_samples,
                        device=device,
                        random_init=random_init,
                        grid=64 if report_dir else 0,
                        progress=main and not no_progress,
                        parts=parts,
                    )
            except Exception as e:
                if not all_models:
                    raise
                failed.append(name)
                if main:
                    click.echo(f"error: {name}: {type(e).__name__}: {e}", err=True)
                continue
            if main:
                for w in caught:
                    click.echo(f"note: {w.message}", err=True)
            results.append(r)
        clean = True
        if not main:
            return
        payload = json.dumps([r.to_dict() for r in results], indent=2)
        if as_json:
            click.echo(payload)
        else:
            for r in results:
                click.echo(str(r))
            if len(results) > 1:
                click.echo("")
                click.echo(format_table(results))
        if out:
            write_atomic(out, payload + "\n")
        if report_dir and results:
            paths = write_report(
                results,
                report_dir,
                command=_command(
                    names,
                    all_models,
                    dataset=asked,
                    split=split,
                    metrics=metrics,
                    limit=limit,
                    samples=num_samples,
                    iw_samples=iw_samples,
                    batch_size=batch_size,
                    seed=seed,
                    device=device,
                    random_init=random_init,
                    report=report_dir,
                ),
            )
            click.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)
        if failed:
            raise SystemExit(1)
    finally:
        finish(group, clean=clean)


COMMANDS = [eval_cmd]
