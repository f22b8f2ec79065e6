"""`zoo plugin new NAME`: write a working plugin skeleton to start from.

The skeleton is the files of `plugin_template/` with the names filled in:

    zoo-NAME/
      pyproject.toml          the `zoo` entry point, package data for bundled release folders
      README.md, .gitignore
      zoo_NAME/plugin.py      the hook: a ModelSpec naming the builder by import path
      zoo_NAME/model.py       a small masked-convolution model with a fast sampler
      zoo_NAME/cards/         bundled release folders go here (WeightsSpec.cards)
      tests/test_contract.py  the zoo's contract in one line (zoo.testing)

It passes its own tests and `zoo check NAME --tiny` right after `pip install -e`.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

TEMPLATE = Path(__file__).resolve().parent / "plugin_template"
NAME_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

# template file -> where it goes in the new plugin ({package} is the import package)
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "gitignore.tmpl": ".gitignore",
    "__init__.py.tmpl": "{package}/__init__.py",
    "plugin.py.tmpl": "{package}/plugin.py",
    "model.py.tmpl": "{package}/model.py",
    "test_contract.py.tmpl": "tests/test_contract.py",
}


def names(name: str) -> dict[str, str]:
    """The names a plugin for model `name` uses: model, distribution, package, class."""
    if not NAME_RE.fullmatch(name):
        raise click.BadParameter(
            f"expected a model name of lower-case letters, digits and single dashes, "
            f"starting with a letter (e.g. 'made' or 'local-window'), got {name!r}",
            param_hint="NAME",
        )
    return {
        "name": name,
        "dist": f"zoo-{name}",
        "package": "zoo_" + name.replace("-", "_"),
        "Class": "".join(part.capitalize() for part in name.split("-")),
    }


def write_plugin(name: str, parent: Path) -> Path:
    """Write the skeleton of a plugin for model `name` into `parent/zoo-NAME/`; returns that folder."""
    n = names(name)
    root = parent / n["dist"]
    if root.exists() and any(root.iterdir()):
        raise click.ClickException(f"{root} exists and is not empty; choose another NAME or --dir")
    for template, target in FILES.items():
        text = (TEMPLATE / template).read_text()
        for key, value in n.items():
            text = text.replace("{{" + key + "}}", value)
        path = root / target.format(package=n["package"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    cards = root / n["package"] / "cards"
    cards.mkdir()
    (cards / "README.md").write_text(
        f'Release folders `{name}.<tag>/` bundled with the plugin (WeightsSpec(cards="{n["package"]}:cards")).\n'
    )
    return root


@click.group("plugin")
def plugin_group() -> None:
    """Write plugins: `zoo plugin new NAME`."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to create the plugin's folder zoo-NAME/.",
)
def new_cmd(name: str, parent: str) -> None:
    """Write a plugin skeleton for model NAME: pyproject with the entry point, hook module, a small model
    with a fast sampler, a test file using zoo.testing, and a README."""
    root = write_plugin(name, Path(parent))
    click.echo(f"wrote {root}/")
    click.echo("next:")
    click.echo(f"  cd {root} && pip install -e '.[test]'")
    click.echo(f"  zoo check {name} --tiny && python -m pytest -q -m 'not slow'")


COMMANDS = [plugin_group]
