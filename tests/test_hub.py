"""Weights and the Hub, through the real huggingface_hub client against zoo.testing.hubserver.

The server runs on 127.0.0.1 and HF_ENDPOINT points at it; every test gets its own
server, cache, token and (empty) bundled-cards folder (the fixtures in conftest.py, the toys in
hub_toys.py). Cards and publish's verification of claims: test_cards.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import WeightsError, ZooError
from zoo.util import sha256_file

from hub_toys import TINY, TOKEN, evaluate, images, publish, tiny_model


@pytest.fixture
def no_backoff(monkeypatch):
    """huggingface_hub retries connection errors with 1-8 s sleeps; skip the sleeping, keep the retries."""
    import time

    import huggingface_hub.utils._http as hf_http

    monkeypatch.setattr(
        hf_http, "time", types.SimpleNamespace(sleep=lambda s: None, time=time.time, monotonic=time.monotonic)
    )


# ---------------------------------------------------------------------------------------------
# save_pretrained / local-dir
# ---------------------------------------------------------------------------------------------
def test_save_pretrained_and_local_dir_roundtrip(tmp_path, hf_env):
    m = tiny_model()
    folder = zoo.save_pretrained(m, tmp_path / "rel")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "independent" and cfg["config"] == {
        "channels": 1,
        "height": 4,
        "width": 4,
        "levels": 2,
    }
    assert cfg["data_spec"] == TINY and cfg["zoo_version"] == zoo.__version__
    assert cfg["plugin"] == "independent" and cfg["plugin_package"] == "zoo-independent"
    assert cfg["weights"]["sha256"] == sha256_file(folder / "model.safetensors")
    assert not (folder / "README.md").exists()  # no results, no card

    loaded = zoo.load(f"local-dir:{folder}")
    x = images()
    assert torch.equal(loaded.log_prob(x), m.log_prob(x))
    assert not loaded.training and loaded.zoo_name == "independent" and loaded.zoo_config == cfg["config"]
    assert loaded.zoo_weights.source == "local-dir" and loaded.zoo_weights.sha256 == cfg["weights"]["sha256"]
    with pytest.deprecated_call():  # dict access: one more release, then only the attributes
        assert loaded.zoo_weights["sha256"] == cfg["weights"]["sha256"]


def test_save_pretrained_needs_a_zoo_model(tmp_path):
    with pytest.raises(ValueError, match="built by zoo.create or zoo.load"):
        zoo.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "rel")
    assert not (tmp_path / "rel").exists()


def test_load_applies_device_and_dtype(tmp_path, hf_env):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    m = zoo.load(f"local-dir:{folder}", device="cpu", dtype=torch.float64)
    assert m.table.dtype == torch.float64 and m.table.device.type == "cpu" and not m.training
    with pytest.raises(ValueError, match="floating torch.dtype"):
        zoo.load(f"local-dir:{folder}", dtype=torch.int64)


def test_strict_loading_reports_shape_and_key_mismatches(tmp_path, hf_env):
    from safetensors.torch import save_file

    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["height"] = cfg["data_spec"]["height"] = 5
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(
        WeightsError,
        match=r"strict loading(.|\n)*shape mismatches \(1\):\n    table: file \(1, 4, 4, 2\), model \(1, 5, 4, 2\)",
    ):
        zoo.load(f"local-dir:{folder}")

    cfg["config"]["height"] = cfg["data_spec"]["height"] = 4
    save_file({"table": torch.zeros(1, 4, 4, 2), "extra.bias": torch.zeros(3)}, str(folder / "model.safetensors"))
    cfg["weights"]["sha256"] = sha256_file(folder / "model.safetensors")
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"unexpected in the file \(1\):\n    extra.bias"):
        zoo.load(f"local-dir:{folder}")

    save_file({}, str(folder / "model.safetensors"))
    cfg["weights"]["sha256"] = sha256_file(folder / "model.safetensors")
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"missing from the file \(1\):\n    table"):
        zoo.load(f"local-dir:{folder}")


def test_local_dir_refuses_corrupt_or_truncated_weights(tmp_path, hf_env):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    w = folder / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="sha256 mismatch for model.safetensors.*truncated.*not loaded"):
        zoo.load(f"local-dir:{folder}")
    with pytest.raises(WeightsError, match="no config.json"):
        zoo.load(f"local-dir:{tmp_path}")


def test_unregistered_architecture_names_the_plugin(tmp_path, hf_env):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(architecture="pixelfoo", plugin="foo", plugin_package="zoo-foo")
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        WeightsError, match=r"architecture 'pixelfoo' from plugin 'foo' \(package zoo-foo\).*pip install zoo-foo"
    ):
        zoo.load(f"local-dir:{folder}")


# ---------------------------------------------------------------------------------------------
# the round trip through the Hub
# ---------------------------------------------------------------------------------------------
def test_publish_cli_then_load_from_hub(tmp_path, hub_server, cli_runner, register):
    register()
    m = tiny_model()
    folder = zoo.save_pretrained(
        m, tmp_path / "rel", results=evaluate(m), samples=m.sample(4, generator=torch.Generator().manual_seed(0))
    )
    r = cli_runner("publish", str(folder), "--repo-id", "zoo-test/tiny", "--tag", "v1", "--no-verify")
    assert r.exit_code == 0, r.output
    commit = hub_server.repos["zoo-test/tiny"].tags["v1"]
    assert f"{hub_server.url}/zoo-test/tiny" in r.output and commit in r.output
    assert TOKEN not in r.output

    repo = hub_server.repos["zoo-test/tiny"]
    files = repo.commits[repo.branches["main"]].files
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= set(files)
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert len(repo.commits) == 2  # the initial commit and ONE upload commit
    writes = [(meth, path, auth) for meth, path, auth in hub_server.requests if meth == "POST" and "/api/" in path]
    assert writes and all(auth == f"Bearer {TOKEN}" for _, _, auth in writes)

    x = images()
    for name in ("hf-hub:zoo-test/tiny", "hf-hub:zoo-test/tiny@v1", f"hf-hub:zoo-test/tiny@{commit}"):
        loaded = zoo.load(name)
        assert torch.equal(loaded.log_prob(x), m.log_prob(x)), name
        assert loaded.zoo_weights.source == "hf-hub" and loaded.zoo_weights.revision == commit
        assert loaded.zoo_weights.repo_id == "zoo-test/tiny" and not loaded.training

    # the token is never written to a file: not in the release folder, not in the cache, not on the server
    for root in (folder, hf_env_path(tmp_path)):
        for p in root.rglob("*"):
            if p.is_file():
                assert TOKEN.encode() not in p.read_bytes(), p
    assert all(TOKEN.encode() not in data for data in files.values())


def hf_env_path(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


def test_revisions_branches_and_tags(tmp_path, hub_server):
    old, new = tiny_model(0), tiny_model(1)
    publish(zoo.save_pretrained(old, tmp_path / "old"), "zoo-test/rev", tag="v1")
    r2 = publish(zoo.save_pretrained(new, tmp_path / "new"), "zoo-test/rev", tag="v2")
    r3 = publish(zoo.save_pretrained(old, tmp_path / "old2"), "zoo-test/rev", revision="dev")
    x = images()
    lp_old, lp_new = old.log_prob(x), new.log_prob(x)
    assert torch.equal(zoo.load("hf-hub:zoo-test/rev@v1").log_prob(x), lp_old)
    assert torch.equal(zoo.load("hf-hub:zoo-test/rev@v2").log_prob(x), lp_new)
    assert torch.equal(zoo.load("hf-hub:zoo-test/rev").log_prob(x), lp_new)  # main
    assert torch.equal(zoo.load("hf-hub:zoo-test/rev", revision="v1").log_prob(x), lp_old)
    dev = zoo.load("hf-hub:zoo-test/rev@dev")
    assert torch.equal(dev.log_prob(x), lp_old) and dev.zoo_weights.revision == r3.commit
    assert r2.tag == "v2" and hub_server.repos["zoo-test/rev"].tags["v2"] == r2.commit

    from huggingface_hub import HfApi

    refs = HfApi(endpoint=hub_server.url).list_repo_refs("zoo-test/rev")
    assert {t.name for t in refs.tags} == {"v1", "v2"} and {b.name for b in refs.branches} == {"main", "dev"}
    with pytest.raises(ZooError, match="tag 'v2' already exists"):
        publish(zoo.save_pretrained(new, tmp_path / "again"), "zoo-test/rev", tag="v2")


def test_offline_after_first_download(tmp_path, hub_server, monkeypatch):
    import huggingface_hub.constants as hf_constants

    m = tiny_model()
    publish(zoo.save_pretrained(m, tmp_path / "rel"), "zoo-test/off", tag="v1")
    publish(zoo.save_pretrained(m, tmp_path / "rel2"), "zoo-test/never-downloaded")
    x = images()
    zoo.load("hf-hub:zoo-test/off@v1")
    hub_server.stop()  # nothing may reach the network now
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    n_requests = len(hub_server.requests)
    again = zoo.load("hf-hub:zoo-test/off@v1")
    assert torch.equal(again.log_prob(x), m.log_prob(x)) and len(hub_server.requests) == n_requests
    with pytest.raises(WeightsError, match="not in the cache.*HF_HUB_OFFLINE is set.*zoo fetch"):
        zoo.load("hf-hub:zoo-test/never-downloaded")


def test_tampered_file_on_the_server_is_rejected_and_not_cached(tmp_path, hub_server):
    m = tiny_model()
    folder = zoo.save_pretrained(m, tmp_path / "rel")
    publish(folder, "zoo-test/tamper")
    good = (folder / "model.safetensors").read_bytes()
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # one flipped bit in the last weight
    hub_server.tamper("zoo-test/tamper", "model.safetensors", bytes(bad))
    with pytest.raises(WeightsError, match="sha256 mismatch.*tampered.*not loaded.*deleted from the cache") as e:
        zoo.load("hf-hub:zoo-test/tamper")
    cache = Path(os.environ["HF_HUB_CACHE"])
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == bytes(bad)]
    assert leftovers == [], "the tampered file must not stay in the cache"
    assert not [p for p in cache.rglob("model.safetensors")], str(e.value)

    hub_server.tamper("zoo-test/tamper", "model.safetensors", good[: len(good) - 10])  # truncated
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.load("hf-hub:zoo-test/tamper")
    hub_server.tamper("zoo-test/tamper", "model.safetensors", good)  # repaired: the next load downloads afresh
    assert torch.equal(zoo.load("hf-hub:zoo-test/tamper").log_prob(images()), m.log_prob(images()))


def test_missing_repo_file_revision_and_a_down_server(tmp_path, hub_server, no_backoff, monkeypatch):
    with pytest.raises(WeightsError, match=r"repository 'nobody/nothing' not found at http://127\.0\.0\.1"):
        zoo.load("hf-hub:nobody/nothing")
    hub_server.create_repo("zoo-test/empty")
    with pytest.raises(WeightsError, match="file 'config.json' not found in zoo-test/empty@main"):
        zoo.load("hf-hub:zoo-test/empty")
    publish(zoo.save_pretrained(tiny_model(), tmp_path / "rel"), "zoo-test/ok")
    with pytest.raises(WeightsError, match="revision 'v9' not found in 'zoo-test/ok'"):
        zoo.load("hf-hub:zoo-test/ok@v9")
    url = hub_server.url
    hub_server.stop()
    with pytest.raises(WeightsError, match=f"cannot reach the Hub at {url}.*not in the cache"):
        zoo.load("hf-hub:zoo-test/ok")
    with pytest.raises(ZooError, match=f"cannot reach the Hub at {url} to publish"):
        publish(tmp_path / "rel", "zoo-test/ok")


def test_private_repo_needs_the_token(tmp_path, hub_server, monkeypatch):
    m = tiny_model()
    publish(zoo.save_pretrained(m, tmp_path / "rel"), "zoo-test/private", private=True)
    assert hub_server.repos["zoo-test/private"].private
    assert torch.equal(zoo.load("hf-hub:zoo-test/private").log_prob(images()), m.log_prob(images()))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(WeightsError, match="not found.*private and HF_TOKEN"):
        zoo.load("hf-hub:zoo-test/private")
    with pytest.raises(ZooError, match="HF_TOKEN"):
        publish(tmp_path / "rel", "zoo-test/private")


# ---------------------------------------------------------------------------------------------
# registered names: pinned WeightsSpec, bundled folder, cache, Hub
# ---------------------------------------------------------------------------------------------
def test_registered_weights_spec_downloads_then_uses_the_cache(tmp_path, hub_server, register):
    m = tiny_model()
    folder = zoo.save_pretrained(m, tmp_path / "rel")
    r = publish(folder, "zoo-test/hubtiny", tag="v1")
    sha = sha256_file(folder / "model.safetensors")
    register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/hubtiny", revision="v1", sha256=sha))
    x = images()
    first = zoo.load("hubtiny")
    assert (
        first.zoo_weights.source == "hf-hub"
        and first.zoo_weights.revision == r.commit
        and first.zoo_weights.tag == "t1"
    )
    assert torch.equal(first.log_prob(x), m.log_prob(x)) and first.zoo_name == "hubtiny" and not first.training
    hub_server.stop()
    second = zoo.load("hubtiny.t1")
    assert second.zoo_weights.source == "hf-cache" and torch.equal(second.log_prob(x), m.log_prob(x))


def test_registered_pin_mismatch_is_refused_and_evicted(tmp_path, hub_server, register):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    publish(folder, "zoo-test/pin")
    register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/pin", revision="main", sha256="0" * 64))
    with pytest.raises(WeightsError, match="sha256 mismatch.*expected 0000.*deleted from the cache"):
        zoo.load("hubtiny.t1")
    assert not list(Path(os.environ["HF_HUB_CACHE"]).rglob("model.safetensors"))


def test_bundled_release_folder_is_used_first_and_offline(tmp_path, hf_env, register, monkeypatch):
    m = tiny_model()
    folder = zoo.save_pretrained(m, hf_env / "cards" / "hubtiny.t1", tag="t1")
    sha = sha256_file(folder / "model.safetensors")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/unreachable", revision="v1", sha256=sha))
    loaded = zoo.load("hubtiny.t1")
    assert loaded.zoo_weights.source == "bundled" and loaded.zoo_weights.path == str(folder / "model.safetensors")
    assert torch.equal(loaded.log_prob(images()), m.log_prob(images()))


def test_corrupt_bundled_file_is_refused(tmp_path, hf_env, register):
    folder = zoo.save_pretrained(tiny_model(), hf_env / "cards" / "hubtiny.t1", tag="t1")
    w = folder / "model.safetensors"
    sha = sha256_file(w)
    data = bytearray(w.read_bytes())
    data[-3] ^= 0x01
    w.write_bytes(bytes(data))
    register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/x", revision="v1", sha256=sha))
    with pytest.raises(WeightsError, match="bundled weights of hubtiny.t1.*sha256 mismatch.*not loaded.*reinstall"):
        zoo.load("hubtiny.t1")
    assert w.exists()  # the package's files are the user's to fix; never deleted


def test_zoo_cards_dir_adds_a_folder_and_the_bundled_cards_still_load(hf_env, monkeypatch):
    """ZOO_CARDS_DIR (an empty folder here) is searched first; the zoo's own cards/ still serve, offline."""
    from zoo.weights import bundled_cards_dirs, release_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert bundled_cards_dirs()[0] == hf_env / "cards" and len(bundled_cards_dirs()) == 2
    folder = release_dir("pixelcnn", "binarized-mnist")
    assert folder is not None and folder.parent == Path(__file__).resolve().parents[1] / "cards"
    from zoo.factory import resolve_weights

    assert resolve_weights("pixelcnn").source == "bundled"


def test_a_plugin_ships_its_own_release_folders(tmp_path, hf_env, register, monkeypatch):
    """WeightsSpec.cards: 'package:subfolder' inside an installed package (or a path), searched beside the
    zoo's; the sha256 pin still decides."""
    from zoo.specs import check_spec
    from zoo.weights import cards_dirs

    package = tmp_path / "site" / "hubtiny_plugin"
    (package / "cards").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    m = tiny_model(3)
    folder = zoo.save_pretrained(m, package / "cards" / "hubtiny.t1", tag="t1")
    sha = sha256_file(folder / "model.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for cards in ("hubtiny_plugin:cards", str(package / "cards")):
        register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/nowhere", revision="v1", sha256=sha, cards=cards))
        loaded = zoo.load("hubtiny.t1")
        assert loaded.zoo_weights.source == "bundled" and Path(loaded.zoo_weights.path).parent == folder
        assert torch.equal(loaded.log_prob(images()), m.log_prob(images()))
        assert cards_dirs("hubtiny", "t1")[:2] == [hf_env / "cards", package / "cards"]
        assert check_spec("hubtiny") == []
    register(
        zoo.WeightsSpec(tag="t1", hub_id="zoo-test/x", revision="v1", sha256="0" * 64, cards="hubtiny_plugin:cards")
    )
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        zoo.load("hubtiny.t1")
    register(zoo.WeightsSpec(tag="t1", hub_id="zoo-test/x", revision="v1", sha256=sha, cards="no_such_pkg:cards"))
    with pytest.raises(WeightsError, match="names package 'no_such_pkg', which is not an installed package"):
        zoo.load("hubtiny.t1")
    assert any("no_such_pkg" in p for p in check_spec("hubtiny"))


def test_publish_a_registered_name_uses_its_bundled_folder(tmp_path, hub_server, register, cli_runner):
    m = tiny_model()
    folder = zoo.save_pretrained(m, Path(os.environ["ZOO_CARDS_DIR"]) / "hubtiny.t1", tag="t1")
    register(
        zoo.WeightsSpec(
            tag="t1", hub_id="zoo-test/hubtiny", revision="v1", sha256=sha256_file(folder / "model.safetensors")
        )
    )
    r = cli_runner("publish", "hubtiny.t1", "--repo-id", "zoo-test/hubtiny", "--tag", "v1", "--no-verify")
    assert r.exit_code == 0, r.output
    assert hub_server.file("zoo-test/hubtiny", "model.safetensors", "v1") == (folder / "model.safetensors").read_bytes()
    r = cli_runner("publish", "hubtiny.nope", "--repo-id", "zoo-test/x", "--no-verify")
    assert r.exit_code == 1 and "no weights tagged 'nope'" in r.output


def test_fetch_and_cache_verify(tmp_path, hub_server, register, cli_runner):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    publish(folder, "zoo-test/fetch", tag="v1")
    register(
        zoo.WeightsSpec(
            tag="t1", hub_id="zoo-test/fetch", revision="v1", sha256=sha256_file(folder / "model.safetensors")
        )
    )
    r = cli_runner("fetch", "hubtiny.t1")
    assert r.exit_code == 0 and "(verified)" in r.output, r.output
    r = cli_runner("fetch", "hf-hub:zoo-test/fetch@v1", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["source"] == "hf-hub"
    r = cli_runner("cache", "verify")
    assert r.exit_code == 0 and r.output.startswith("ok") and "hubtiny.t1" in r.output, r.output

    cached = next(Path(os.environ["HF_HUB_CACHE"]).rglob("model.safetensors"))
    blob = Path(os.path.realpath(cached))
    blob.write_bytes(b"garbage")
    r = cli_runner("cache", "verify")
    assert r.exit_code == 1 and "mismatch" in r.output and "--delete" in r.output
    r = cli_runner("cache", "verify", "--delete", "--json")
    assert r.exit_code == 1 and "deleted" in r.output and not blob.exists()
    r = cli_runner("cache", "verify")
    assert r.exit_code == 0, r.output


# ---------------------------------------------------------------------------------------------
# a non-editable install ships the bundled release folders
# ---------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def test_explicit_package_list_is_complete():
    """When pyproject.toml lists packages explicitly (to map cards/ into zoo.cards), none may be forgotten."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from setuptools import find_namespace_packages

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = cfg.get("packages")
    if not isinstance(listed, list):
        pytest.skip("pyproject.toml discovers packages with find")

    def code_packages(
        root: Path, include: list[str]
    ) -> set[str]:  # folders with Python files (data folders ship as package data)
        return {
            p
            for p in find_namespace_packages(str(root), include=include)
            if any((root / p.replace(".", "/")).glob("*.py"))
        }

    found = code_packages(ROOT, ["zoo", "zoo.*"]) | code_packages(ROOT / "plugins", ["zoo_*", "zoo_*.*"])
    assert found - set(listed) == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert cfg.get("package-dir", {}).get("zoo.cards") == "cards"


@pytest.mark.slow
def test_wheel_ships_bundled_cards_and_loads_them(tmp_path, copy_distribution_sources):
    """Build the wheel, install it (no deps) into a fresh venv, and zoo.load from a bundled folder, offline."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    if '"zoo.cards"' not in pyproject:
        pytest.skip("pyproject.toml does not map cards/ into the package yet (see docs/hub.md, 'Packaging')")
    import shutil

    src = copy_distribution_sources(tmp_path / "src")
    m = tiny_model()
    folder = zoo.save_pretrained(m, src / "cards" / "independent-w.wheeltest", tag="wheeltest")
    sha = sha256_file(folder / "model.safetensors")
    py = sys.executable
    subprocess.run(
        [py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
    )
    wheel = next((tmp_path / "dist").glob("likelihood_zoo-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([py, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    example = tmp_path / "example"  # the example plugin, installed as a user would (not editable)
    shutil.copytree(
        ROOT / "examples" / "zoo-independent", example, ignore=shutil.ignore_patterns("*.egg-info", "build")
    )
    subprocess.run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(wheel),
            str(example),
        ],
        check=True,
    )
    # the dependencies (torch, ...) come from this environment, after the wheel's own zoo
    import sysconfig

    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = f"""
import torch, zoo, zoo.plugins
from zoo.weights import release_dir
assert zoo.__file__.startswith({str(site)!r}), zoo.__file__
class P:
    @zoo.hookimpl
    def zoo_register_models(self, register):
        register(zoo.ModelSpec(name="independent-w", family="b", summary="s", paper="p",
            builder="zoo_independent.model:IndependentPixels", config={TINY!r}, data_spec=zoo.DataSpec(1, 4, 4, 2),
            weights=(zoo.WeightsSpec(tag="wheeltest", hub_id="x/y", revision="v1", sha256={sha!r}),)))
import os
os.environ["HF_HUB_OFFLINE"] = "1"
with zoo.plugins.use_plugins({{"w": P()}}):
    d = release_dir("independent-w", "wheeltest")
    assert d is not None and str(d).startswith({str(site)!r}), d
    m = zoo.load("independent-w.wheeltest")
    print(m.zoo_weights.source, float(m.log_prob(torch.zeros(2, 1, 4, 4, dtype=torch.long)).sum()))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_CARDS_DIR", "PYTHONPATH")}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    source, value = out.stdout.split()
    assert source == "bundled"
    with torch.no_grad():
        expected = float(m.log_prob(torch.zeros(2, 1, 4, 4, dtype=torch.long)).sum())
    assert float(value) == pytest.approx(expected)


def test_saved_weights_are_byte_identical_across_processes(tmp_path):
    """The same weights give the same sha256 whichever process writes them (pins stay valid)."""
    import subprocess
    import sys

    code = (
        "import sys, torch, zoo; torch.manual_seed(0); "
        "m = zoo.create('independent', height=4, width=4); torch.nn.init.normal_(m.table); "
        "print(zoo.save_pretrained(m, sys.argv[1]))"
    )
    shas = set()
    for i in range(3):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(i))], check=True, capture_output=True)
        shas.add(hashlib.sha256((tmp_path / str(i) / "model.safetensors").read_bytes()).hexdigest())
    assert len(shas) == 1
