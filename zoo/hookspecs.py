"""The hooks a zoo plugin may implement.

A plugin is a module (or object) with functions decorated by `zoo.hookimpl`,
declared in its package metadata under the entry-point group `zoo`:

    [project.entry-points.zoo]
    my_plugin = "my_package.plugin"

Every hook takes a `register` callback (or the CLI group) and returns nothing;
the host calls each plugin's hooks separately, so a plugin that raises is
reported and skipped while the others load. Hooks are called by keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_register_models(register: Callable[[Any], None]) -> None:
    """Register model architectures.

    :param register: call it once per architecture with a `zoo.ModelSpec`.
        The spec names its builder by import path (`"pkg.module:Class"`);
        do not import model code (or torch) in the plugin module itself, so
        that `zoo list` stays fast. Registering a name that another plugin
        registered is an error that names both plugins.
    """


@hookspec
def zoo_register_datasets(register: Callable[[Any], None]) -> None:
    """Register datasets.

    :param register: call it once per dataset with an object that has a
        unique `name` attribute and follows the `zoo.data.Dataset` contract
        (splits, a `DataSpec`, a checksum of the prepared arrays).
    """


@hookspec
def zoo_register_metrics(register: Callable[[Any], None]) -> None:
    """Register evaluation metrics for the shared harness.

    :param register: call it once per metric with an object that has a
        unique `name` attribute and follows the `zoo.eval.Metric` contract.
    """


@hookspec
def zoo_register_commands(cli: Any) -> None:
    """Add commands to the `zoo` command line.

    :param cli: the root `click.Group`; add commands with `cli.add_command(cmd)`.
    """
