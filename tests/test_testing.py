"""The plugin test kit (zoo.testing): each check catches the fault it is for, and passes a sound model.

The models here are registered in-process by a fake plugin; their builders are this module's classes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
import zoo.plugins
from zoo.errors import ZooError
from zoo.testing import contract, contract_tests


class PrefixSum(zoo.AutoregressiveModel):
    """Sound: the logits of sub-pixel k depend on the sum of the sub-pixels before it."""

    def __init__(self, height: int = 4, width: int = 4, levels: int = 3):
        super().__init__()
        self.data_spec = zoo.DataSpec(1, height, width, levels)
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, levels))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.data_spec.validate(x)
        flat = x.flatten(1).float()  # (B, H*W): one channel, raster order
        prefix = torch.cumsum(flat, 1) - flat + self.seen_too(flat)
        return torch.sin(prefix.unsqueeze(-1) * self.w).view(x.shape[0], 1, *x.shape[2:], -1)  # (B, 1, H, W, L)

    def seen_too(self, flat: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(flat)

    def fast_sampler(self, x: torch.Tensor) -> Steps:
        return Steps(self, x)


class Steps:
    """Incremental steps that ask the full model (exact, not fast: enough to test the contract)."""

    def __init__(self, model: PrefixSum, x: torch.Tensor, shift: float = 0.0):
        self.model, self.x, self.shift = model, x.clone(), shift

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        return self.model.logits(self.x)[:, c, i, j] + self.shift  # (n, levels)

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        self.x[:, c, i, j] = level

    def row_done(self, i: int) -> None:
        pass


class SeesItself(PrefixSum):
    def seen_too(self, flat):
        return 0.3 * flat


class WrongFast(PrefixSum):
    def fast_sampler(self, x):
        return Steps(self, x, shift=torch.tensor([0.0, 5.0, 0.0]))  # favours level 1


class LosesKnown(PrefixSum):
    def sample(self, n, *, generator=None, known=None, mask=None, **kw):
        return super().sample(n, generator=generator, **kw)  # ignores what is known


class TakesAnything(PrefixSum):
    def __init__(self, height: int = 4, width: int = 4, levels: int = 3, **ignored):
        super().__init__(height, width, levels)


class FloatsWelcome(PrefixSum):
    def log_prob(self, x):
        return super().log_prob(x.long())


class Unsaved(PrefixSum):
    """Part of its state is a plain attribute, not a parameter or buffer: save_pretrained loses it."""

    def __init__(self, height: int = 4, width: int = 4, levels: int = 3):
        super().__init__(height, width, levels)
        self.offset = torch.randn(levels)

    def logits(self, x):
        return super().logits(x) + self.offset


SPECS = {
    "sound": PrefixSum,
    "sees-itself": SeesItself,
    "wrong-fast": WrongFast,
    "loses-known": LosesKnown,
    "takes-anything": TakesAnything,
    "floats-welcome": FloatsWelcome,
    "unsaved": Unsaved,
}


class Plugin:
    @zoo.hookimpl
    def zoo_register_models(self, register):
        for name, cls in SPECS.items():
            register(
                zoo.ModelSpec(
                    name=name,
                    family="test",
                    summary="s",
                    paper="p",
                    builder=f"{__name__}:{cls.__name__}",
                    config={"height": 4, "width": 4, "levels": 3},
                    data_spec=zoo.DataSpec(1, 4, 4, 3),
                    capabilities={"likelihood", "sampler", "fast_sampler"},
                    test_config={"height": 3},
                )
            )
        register(
            zoo.ModelSpec(
                name="four-levels",
                family="test",
                summary="s",
                paper="p",
                builder=f"{__name__}:PrefixSum",
                config={"height": 4, "width": 4},
                data_spec=zoo.DataSpec(1, 4, 4, 4),
                capabilities={"likelihood"},
            )
        )


@pytest.fixture(scope="module", autouse=True)
def plugin():
    with zoo.plugins.use_plugins({"kit-test": Plugin()}, entry_points=False):
        yield


def test_a_sound_model_passes_every_check():
    for c in contract.CHECKS:
        if c.applies(zoo.info("sound")) and not c.slow:
            assert c.run("sound") is None, c.name


@pytest.mark.parametrize(
    ("name", "check", "message"),
    [
        ("sees-itself", contract.check_causality, "sees itself"),
        ("wrong-fast", contract.check_fast_equals_naive, "fast and naive samplers differ when sampling"),
        ("loses-known", contract.check_completion, "completion changed known pixels"),
        ("takes-anything", contract.check_strict_config, "no_such_option=1\\) was accepted"),
        ("floats-welcome", contract.check_log_prob, "accepted a float image"),
        ("unsaved", contract.check_save_load, "log_prob differs after loading"),
        ("four-levels", contract.check_spec_agrees, "declares data_spec 1x4x4, 4 levels, but the builder made"),
    ],
)
def test_each_check_catches_its_fault(name, check, message):
    with pytest.raises(AssertionError, match=message):
        check(name)
    assert check is contract.check_spec_agrees or contract.check_spec_agrees(name) is None


def test_contract_tests_is_one_parametrized_test_per_model_and_check():
    fn = contract_tests("sound", "four-*", skip=("recipes",))
    params = fn.pytestmark[0].args[1]
    ids = [p.id for p in params]
    assert "sound-causality" in ids and "sound-fast-equals-naive" in ids and "four-levels-log-prob" in ids
    assert "four-levels-sampling" not in ids  # it claims no sampler
    assert not any(i.endswith("-recipes") for i in ids)
    slow = [p.id for p in params if any(m.name == "slow" for m in p.marks)]
    assert slow == ["four-levels-overfits-digits", "sound-overfits-digits"]
    with pytest.raises(ZooError, match="no registered model matches 'nosuch'.*pip install -e"):
        contract_tests("nosuch")
    with pytest.raises(ValueError, match="unknown check"):
        contract_tests("sound", skip=("causalty",))


def test_the_local_hub_server_runs_from_the_shell():
    """`python -m zoo.testing.hubserver` prints the endpoint to export, and answers there."""
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo.testing.hubserver", "--token", "hf_x"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("export HF_ENDPOINT=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        try:
            request = urllib.request.Request(
                f"{url}/api/models/nobody/nothing", headers={"Authorization": "Bearer hf_x"}
            )
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 404 and e.headers["X-Error-Code"] == "RepoNotFound"
        else:
            raise AssertionError("a repo that does not exist was found")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
