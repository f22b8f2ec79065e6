"""The `zoo` command line. Thin: it parses, calls the library, prints.

One module per command group; plugins add their own through the
`zoo_register_commands(cli)` hook.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..errors import ZooError
from ..util import keep_freed_memory, short_openmp_spin


class ZooGroup(click.Group):
    """Turns the zoo's own errors (`ZooError`, `ArgumentError` among them) and a missing file into one
    readable line and exit status 1. Any other exception is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ZooError, FileNotFoundError) as e:
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(str(e)) from e


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoo")
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """A zoo of likelihood-based image generative models."""
    ctx.ensure_object(dict)["debug"] = debug
    keep_freed_memory()  # the same large tensors at every step: reuse them, do not map them again
    short_openmp_spin()  # before torch loads: idle OpenMP threads leave the cores to the C kernels sooner


def _add_builtin_commands(group: click.Group) -> None:
    from . import models, plugins

    for module in (models, plugins):
        for cmd in module.COMMANDS:
            group.add_command(cmd)
    for name in ("data", "eval", "train", "publish", "scaffold", "demo"):
        try:
            module = __import__(f"zoo.cli.{name}", fromlist=["COMMANDS"])
        except ModuleNotFoundError as e:
            if e.name != f"zoo.cli.{name}":
                raise
            continue
        for cmd in module.COMMANDS:
            group.add_command(cmd)


def build_cli() -> click.Group:
    from ..plugins import get_host

    _add_builtin_commands(cli)
    get_host().register_commands(cli)
    return cli


def main(argv: list[str] | None = None) -> None:
    build_cli().main(args=argv, prog_name="zoo")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
