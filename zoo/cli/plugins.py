"""`zoo plugins`: what loaded, from where, and what failed."""

from __future__ import annotations

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show the traceback of a plugin that failed.")
def plugins_cmd(as_json: bool, verbose: bool) -> None:
    """List plugins, their status and what they registered."""
    from ..plugins import get_host

    infos = get_host().plugins()
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo("no plugins found (entry-point group 'zoo')")
    for i in infos:
        what = ", ".join(f"{k}: {' '.join(v)}" for k, v in i.registered.items() if v) or "-"
        click.echo(f"{i.name:<18} {i.status:<9} {what}")
        click.echo(f"{'':<18} {i.source} ({i.module})")
        if i.error:
            click.echo(f"{'':<18} error: {i.error}" + ("" if verbose else " (-v: traceback)"))
        if i.traceback and verbose:
            click.echo("".join(f"{'':<18} | {line}\n" for line in i.traceback.rstrip().splitlines()), nl=False)
        for skipped in i.skipped:
            click.echo(f"{'':<18} skipped: {skipped}")


COMMANDS = [plugins_cmd]
