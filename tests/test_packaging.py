"""The distribution `likelihood-zoo` as PyPI would get it: `python -m build` makes an sdist and a wheel
that `twine check` accepts, both carry the bundled release folders and the test split, and the wheel,
installed into a fresh venv, scores a bundled release offline from outside the checkout."""

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST_NAME = "likelihood_zoo"  # the file-name form of the distribution `likelihood-zoo`
BUNDLED = ["pixelrnn-row.binarized-mnist/model.safetensors", "pixelrnn-row.binarized-mnist/config.json"]
TEST_SPLIT = "zoo_datasets/binarized_mnist_test.npz"


@pytest.fixture(scope="module")
def dist(tmp_path_factory, copy_distribution_sources):
    """`python -m build`: the sdist, then the wheel built from that sdist (so the sdist must be complete)."""
    out = tmp_path_factory.mktemp("dist")
    # a copy of the tree, so that the build's egg-info (stale metadata on sys.path later) stays out of the checkout
    src = copy_distribution_sources(tmp_path_factory.mktemp("src") / "tree")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (sdist,) = out.glob(f"{DIST_NAME}-*.tar.gz")
    (wheel,) = out.glob(f"{DIST_NAME}-*-py3-none-any.whl")
    return sdist, wheel


@pytest.mark.slow
def test_twine_accepts_both(dist):
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


@pytest.mark.slow
def test_sdist_carries_the_cards_and_the_test_split(dist):
    names = tarfile.open(dist[0]).getnames()
    top = names[0].split("/")[0]
    for must in [*(f"cards/{b}" for b in BUNDLED), f"plugins/{TEST_SPLIT}", "pyproject.toml", "README.md"]:
        assert f"{top}/{must}" in names, must


@pytest.mark.slow
def test_wheel_contains_core_plugins_data_and_entry_points(dist):
    wheel = zipfile.ZipFile(dist[1])
    names = wheel.namelist()
    for must in [
        "zoo/__init__.py",
        "zoo/cli/__init__.py",
        "zoo_pixelcnn/plugin.py",
        "zoo_pixelrnn/plugin.py",
        "zoo_pixelrnn/diagonal_cells.c",  # the C kernel zoo.native builds on first use
        "zoo_gan/plugin.py",
        "zoo_datasets/plugin.py",
        "zoo/testing/hubserver.py",
        "zoo/demo/page.html",
        "zoo/cli/plugin_template/plugin.py.tmpl",
        # PEP 561: the zoo and its plugins are typed
        *(f"{pkg}/py.typed" for pkg in ("zoo", "zoo_pixelcnn", "zoo_pixelrnn", "zoo_gan", "zoo_pggan", "zoo_vae")),
        TEST_SPLIT,
        *(f"zoo/cards/{b}" for b in BUNDLED),
    ]:
        assert must in names, must
    assert not any(n.startswith(("tests/", "examples/", "benchmarks/", "stages/")) for n in names)
    meta = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: likelihood-zoo" in meta
    text = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[zoo]" in text and "zoo_pixelcnn = zoo_pixelcnn.plugin" in text and "zoo = zoo.cli:main" in text


@pytest.mark.slow
def test_installed_wheel_scores_a_bundled_release_offline(dist, tmp_path):
    """A fresh venv holds only the wheel; torch and the rest come from this environment, after it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(dist[1])],
        check=True,
        capture_output=True,
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_CARDS_DIR", "PYTHONPATH", "ZOO_PLUGINS")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    work = tmp_path / "elsewhere"
    work.mkdir()
    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import zoo, zoo_datasets; print(zoo.__file__); print(zoo_datasets.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(w.startswith(str(site)) for w in where), where
    proc = subprocess.run(
        [python, "-m", "zoo", "eval", "pixelrnn-row", "--limit", "8", "--json", "--no-progress"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(proc.stdout)
    from zoo.registry import get_spec

    assert result["provenance"]["weights"] == get_spec("pixelrnn-row").weights[0].sha256
    assert result["provenance"]["n"] == 8 and 20 < result["metrics"]["nll"]["value"] < 300
