"""A regular (non-editable) wheel works: the core, the built-in plugins and their data ship in it."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (whl,) = out.glob("zoo-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_contains_core_plugins_and_entry_points(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for must in ["zoo/__init__.py", "zoo/cli/__init__.py", "zoo_pixelcnn/plugin.py", "zoo_pixelrnn/plugin.py",
                 "zoo_gan/plugin.py", "zoo_datasets/plugin.py"]:
        assert must in names, must
    assert not any(n.startswith(("tests/", "examples/", "benchmarks/")) for n in names)
    ep = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(ep).decode()
    assert "[zoo]" in text and "zoo_pixelcnn = zoo_pixelcnn.plugin" in text and "zoo = zoo.cli:main" in text


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import zoo, zoo_pixelcnn, json; from zoo.cli import main; "
        "print(json.dumps([zoo.__file__, zoo_pixelcnn.__file__, zoo.list_models()]))"
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True)
    import json

    zoo_file, plugin_file, models = json.loads(out.stdout)
    assert zoo_file.startswith(str(target)) and plugin_file.startswith(str(target))
    assert "independent" in models  # the example plugin, installed in the test environment
