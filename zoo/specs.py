"""Spec checks: does a registered `ModelSpec` agree with the code it names?

The registry reads a spec without importing model code (so `zoo list` stays fast), which
means a mistyped builder path, a config key the constructor does not take, or a `data_spec`
that disagrees with the model the builder makes would show only when a model is built.
`check_spec` builds what the spec describes and says what disagrees, one readable line per
problem. `zoo check` and the plugin test kit (`zoo.testing`) run it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .errors import ZooError
from .factory import build, import_builder
from .protocols import DataSpec
from .registry import ModelSpec, get_spec
from .weights import plugin_cards_dir

__all__ = ["check_spec", "builder_options", "full_config", "filled_config"]


def _parameters(builder: Any) -> list[inspect.Parameter] | None:
    """The builder's parameters; None when Python cannot tell them (a builtin)."""
    try:
        return list(inspect.signature(builder).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return None


def _keywords(builder: Any) -> tuple[list[str], list[str], bool]:
    """The builder's keyword names, those without a default, and whether it takes **kwargs."""
    params = _parameters(builder)
    if params is None:  # pragma: no cover - builtins
        return [], [], True
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty]
    return names, required, any(p.kind is p.VAR_KEYWORD for p in params)


def builder_options(spec: ModelSpec) -> list[str] | None:
    """The keyword options the spec's builder takes (None: it takes any, with **kwargs)."""
    names, _, var_kw = _keywords(import_builder(spec.builder))
    return None if var_kw else names


def full_config(model: Any) -> dict[str, Any]:
    """A model's `zoo_config` with the builder's defaults filled in: the options it was really built with."""
    return filled_config(model.zoo_name, model.zoo_config)


def filled_config(arch: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` for the architecture `arch` with its builder's defaults filled in."""
    params = _parameters(import_builder(get_spec(arch).builder)) or []
    defaults = {p.name: p.default for p in params if p.default is not p.empty and p.kind is not p.VAR_KEYWORD}
    return {**defaults, **dict(config)}


def _config_problems(where: str, config: Mapping[str, Any], names: list[str], var_kw: bool) -> list[str]:
    unknown = [k for k in config if k not in names]
    if unknown and not var_kw:
        return [
            f"{where} has key(s) {', '.join(map(repr, unknown))} that the builder does not take "
            f"(it takes: {', '.join(names) or 'nothing'})"
        ]
    return []


def _data_spec_problems(where: str, model: Any, config: Mapping[str, Any], expected: DataSpec | None) -> list[str]:
    built = getattr(model, "data_spec", None)
    if not isinstance(built, DataSpec):
        return [f"{where}: the built model has no zoo.DataSpec `data_spec` (got {type(built).__name__})"]
    if expected is not None and built != expected:
        return [f"{where}: the spec declares data_spec {expected}, but the builder made a model with {built}"]
    clash = [
        f"{f.name}={config[f.name]!r}"
        for f in fields(DataSpec)
        if f.name in config and getattr(built, f.name) != config[f.name]
    ]
    if clash:
        return [f"{where}: the config says {', '.join(clash)}, but the built model's data_spec is {built}"]
    return []


def check_spec(spec: ModelSpec | str) -> list[str]:
    """What is wrong with a spec (`[]`: nothing): the builder path imports; every config the spec
    carries (the default, `test_config`, each recipe's and each weights' `config`) names only
    arguments the builder takes; the builder's required arguments are in the default config;
    the default and the tiny model are built and their `data_spec` agrees with the spec and the
    config; a `WeightsSpec.cards` folder is found."""
    if isinstance(spec, str):
        spec = get_spec(spec)
    try:
        builder = import_builder(spec.builder)
    except ZooError as e:
        return [f"builder {spec.builder!r} does not import: {e}"]
    if not callable(builder):
        return [f"builder {spec.builder!r} is a {type(builder).__name__}, not a class or function"]
    names, required, var_kw = _keywords(builder)
    problems = _config_problems("config", spec.config, names, var_kw)
    problems += _config_problems("test_config", spec.test_config, names, var_kw)
    for recipe, values in spec.recipes.items():
        problems += _config_problems(f"recipe {recipe!r}'s config", values.get("config", {}), names, var_kw)
    for ws in spec.weights:
        problems += _config_problems(f"the config of weights {ws.tag!r}", ws.config, names, var_kw)
    missing = [k for k in required if k not in spec.config]
    if missing:
        problems.append(f"config lacks {', '.join(map(repr, missing))}, which the builder requires")
    if problems:
        return problems
    for where, config, expected in (
        ("default config", dict(spec.config), spec.data_spec),
        ("test_config", {**spec.config, **spec.test_config}, None),
    ):
        try:
            model = build(spec, config)
        except Exception as e:  # the spec's own config must build: any failure is the finding
            problems.append(f"{where}: the builder raised {type(e).__name__}: {e}")
            continue
        problems += _data_spec_problems(where, model, config, expected)
    for ws in spec.weights:
        if ws.cards:
            try:
                folder = plugin_cards_dir(ws.cards)
            except ZooError as e:
                problems.append(f"weights {ws.tag!r}: {e}")
                continue
            if not folder.is_dir():
                problems.append(f"weights {ws.tag!r}: cards={ws.cards!r} is {folder}, which is no folder")
    return problems
