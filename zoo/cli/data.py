"""`zoo data list` and `zoo data prepare`: the registered datasets and their caches."""

from __future__ import annotations

import json

import click


@click.group("data")
def data_group() -> None:
    """Datasets: list them, prepare them into the cache."""


@data_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """List the registered datasets, their splits and what is ready to load."""
    from ..data import cache_dir, get_dataset, list_datasets

    datasets = [get_dataset(n) for n in list_datasets()]
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in datasets], indent=2))
        return
    if not datasets:
        click.echo("no datasets registered (`zoo plugins` shows which plugins loaded)")
        return
    click.echo(f"{'name':<22} {'data spec':<24} {'splits (* = ready)':<28} source")
    for d in datasets:
        splits = " ".join(s + ("*" if d.available(s) else "") for s in d.splits)
        click.echo(f"{d.name:<22} {str(d.data_spec):<24} {splits:<28} {d.source}")
    click.echo(f"cache: {cache_dir()} (set ZOO_DATA_DIR to move it)")


@data_group.command("prepare")
@click.argument("name")
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Folder or file holding the raw data (default: where the dataset finds it).",
)
@click.option("--split", "splits", multiple=True, help="Only this split (repeatable; default: all).")
@click.option("--force", is_flag=True, help="Prepare again even if the cache has the split.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare_cmd(name: str, source: str | None, splits: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Read dataset NAME from its source, check it and write it to the cache."""
    from ..data import get_dataset

    dataset = get_dataset(name)
    sums = dataset.prepare(list(splits) or None, source=source, progress=not quiet, force=force)
    for split, digest in sums.items():
        click.echo(f"{dataset.name} {split}: ready, sha256 {digest}")


COMMANDS = [data_group]
