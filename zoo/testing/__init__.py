"""The plugin test kit: the checks every model of the zoo gets, for a plugin's own test suite.

In the plugin's `tests/test_contract.py` (the plugin installed, e.g. with `pip install -e .`):

    from zoo.testing import contract_tests

    test_zoo_contract = contract_tests("made")      # fnmatch patterns of registered names

pytest then runs every check that applies to each matching model, one test each, with
ids like `test_zoo_contract[made-causality]`:

    spec               builder importable, config keys taken, data_spec as built (zoo.specs)
    strict-config      constructor keywords = config, defaults = registered, unknown options raise
    capabilities       Likelihood / Sampler / fast sampler as the spec claims
    log-prob           shape, finite, <= 0, gradients, bad input raises ValueError
    causality          `zoo check`: no sub-pixel sees itself or a later one
    sampling           shape, dtype, range, same generator -> same images
    completion         completing an image keeps its known pixels
    fast-equals-naive  the fast sampler draws the naive sampler's images exactly
    save-load          save_pretrained -> zoo.load("local-dir:...") -> same tensors and outputs
    recipes            every training recipe resolves and its config builds
    overfits-digits    (slow) a tiny model learns 8 real binarized-MNIST digits

Each check is also a function of `zoo.testing.contract` (e.g. `check_causality("made")`)
that raises `AssertionError`. `zoo.testing.hubserver` is a local Hub-compatible server for
testing `zoo publish` and `zoo.load("hf-hub:...")` (`python -m zoo.testing.hubserver`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["contract_tests"]


def _selected(patterns: tuple[str, ...], skip: tuple[str, ...]) -> list[tuple[str, Any]]:
    from ..errors import ZooError
    from ..registry import get_spec, list_models
    from .contract import CHECKS

    unknown = sorted(set(skip) - {c.name for c in CHECKS})
    if unknown:
        raise ValueError(f"skip names unknown check(s) {unknown}; checks: {', '.join(c.name for c in CHECKS)}")
    names = sorted({n for p in (patterns or ("*",)) for n in list_models(p)})
    if not names:
        raise ZooError(
            f"no registered model matches {', '.join(map(repr, patterns))}: is the plugin installed "
            "(`pip install -e .` in its folder)? `zoo plugins` shows what loaded"
        )
    return [(n, c) for n in names for c in CHECKS if c.name not in skip and c.applies(get_spec(n))]


def contract_tests(*patterns: str, skip: tuple[str, ...] = ()) -> Callable[..., None]:
    """A pytest test function running every applicable check on every registered model matching
    `patterns` (fnmatch; none: all). Assign it to a `test_` name in a test module. `skip` leaves
    checks out by name (e.g. `skip=("overfits-digits",)`); slow checks carry the mark `slow`."""
    import pytest

    params = [
        pytest.param(name, c, id=f"{name}-{c.name}", marks=[pytest.mark.slow] if c.slow else [])
        for name, c in _selected(patterns, skip)
    ]

    @pytest.mark.parametrize(("model_name", "contract_check"), params)
    def test_zoo_contract(model_name: str, contract_check: Any) -> None:
        why = contract_check.run(model_name)
        if why:
            pytest.skip(f"{contract_check.name} does not apply to {model_name}: {why}")

    return test_zoo_contract
