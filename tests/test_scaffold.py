"""`zoo plugin new NAME`: the skeleton it writes passes the zoo's contract and `zoo check`."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig

import pytest

import zoo
import zoo.plugins
from zoo.testing import contract


def test_plugin_new_writes_a_skeleton_that_passes_the_contract(tmp_path, cli_runner, monkeypatch):
    r = cli_runner("plugin", "new", "tiny-window", "--dir", str(tmp_path))
    assert r.exit_code == 0, r.output
    root = tmp_path / "zoo-tiny-window"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "tests/test_contract.py",
        "zoo_tiny_window/__init__.py",
        "zoo_tiny_window/cards/README.md",
        "zoo_tiny_window/model.py",
        "zoo_tiny_window/plugin.py",
    ]
    assert 'zoo_tiny_window = "zoo_tiny_window.plugin"' in (root / "pyproject.toml").read_text()
    assert 'contract_tests("tiny-window")' in (root / "tests" / "test_contract.py").read_text()
    assert "{{" not in "".join((root / f).read_text() for f in files)

    monkeypatch.syspath_prepend(str(root))  # as `pip install -e` would make it importable
    plugin = importlib.import_module("zoo_tiny_window.plugin")
    with zoo.plugins.use_plugins({"zoo_tiny_window": plugin}, entry_points=False):
        spec = zoo.info("tiny-window")
        assert spec.capabilities == {"likelihood", "sampler", "fast_sampler"}
        for c in contract.CHECKS:
            if c.applies(spec) and not c.slow:
                assert c.run("tiny-window") is None, c.name
        r = cli_runner("check", "tiny-window", "--tiny")
        assert r.exit_code == 0 and "PASSED" in r.output and "checked in torch.float32" not in r.output, r.output


def test_plugin_new_refuses_bad_names_and_full_folders(tmp_path, cli_runner):
    r = cli_runner("plugin", "new", "Bad.Name", "--dir", str(tmp_path))
    assert r.exit_code == 2 and "lower-case letters, digits and single dashes" in r.output
    (tmp_path / "zoo-made").mkdir()
    (tmp_path / "zoo-made" / "keep.txt").write_text("mine")
    r = cli_runner("plugin", "new", "made", "--dir", str(tmp_path))
    assert r.exit_code == 1 and "exists and is not empty" in r.output
    assert (tmp_path / "zoo-made" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_plugin_new_then_pip_install_then_its_own_tests(tmp_path, cli_runner):
    """As an author would: scaffold, pip install (a fresh environment, the zoo and torch from this one),
    `zoo check`, and the plugin's own test file (the slow check left out to keep CI short)."""
    assert cli_runner("plugin", "new", "e2e-window", "--dir", str(tmp_path)).exit_code == 0
    root = tmp_path / "zoo-e2e-window"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(root),
        ],
        check=True,
    )
    # zoo (an editable install: its .pth files must be processed), torch and pytest: from this environment
    (site / "deps.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    py = str(venv / "bin" / "python")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [py, "-m", "zoo", "check", "e2e-window", "--tiny"], cwd=root, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0 and "PASSED" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(
        [py, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0 and " passed" in out.stdout and "failed" not in out.stdout, out.stdout + out.stderr
