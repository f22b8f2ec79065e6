"""Weights and the Hub, through the real huggingface_hub client against zoo.testing.hubserver.

The server runs on 127.0.0.1 and HF_ENDPOINT points at it; every test gets its own
server, cache, token and (empty) bundled-cards folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo import release
from zoo.errors import WeightsError, ZooError
from zoo.release.summary import fmt  # the claims' number format (trailing zeros dropped)
from zoo.testing.hubserver import HubServer
from zoo.util import sha256_file

TOKEN = "hf_zoo_secret_test_token"
TINY = {"channels": 1, "height": 4, "width": 4, "levels": 2}


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """A private cache, home and cards folder; online; the token in HF_TOKEN."""
    import huggingface_hub.constants as hf_constants

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
    with HubServer(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def no_backoff(monkeypatch):
    """huggingface_hub retries connection errors with 1-8 s sleeps; skip the sleeping, keep the retries."""
    import time

    import huggingface_hub.utils._http as hf_http

    monkeypatch.setattr(
        hf_http, "time", types.SimpleNamespace(sleep=lambda s: None, time=time.time, monotonic=time.monotonic)
    )


def tiny_model(seed: int = 0):
    m = zoo.create("independent", **{k: v for k, v in TINY.items() if k != "channels"})
    with torch.no_grad():
        m.table.copy_(torch.randn(m.table.shape, generator=torch.Generator().manual_seed(seed)))
    return m


def images(n: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 2, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed))


def toy_images() -> torch.Tensor:
    return images(256, seed=123)


def evaluate(model, **kw):
    """The real harness, on the toy dataset that the `register` fixture provides."""
    return zoo.evaluate(model, dataset="hub-toy", split="test", metrics=["nll"], **kw)


def publish(folder, repo_id, **kw):
    kw.setdefault("verify", False)
    return release.publish(folder, repo_id, **kw)


class FakePlugin:
    """Registers `hubtiny` (the example's model class) with pinned weights, and a 4x4 binary toy dataset."""

    def __init__(self, weights):
        self.weights = weights

    @zoo.hookimpl
    def zoo_register_datasets(self, register):
        from zoo.data import Dataset, array_checksum

        class Toy(Dataset):
            name, data_spec, splits, description = (
                "hub-toy",
                zoo.DataSpec(1, 4, 4, 2),
                ("test",),
                "256 random 4x4 images",
            )

            def load(self, split):
                return toy_images().to(torch.uint8), None

            def checksum(self, split):
                return array_checksum(toy_images().to(torch.uint8))

            def available(self, split):
                return True

        register(Toy())

    @zoo.hookimpl
    def zoo_register_models(self, register):
        register(
            zoo.ModelSpec(
                name="hubtiny",
                family="baseline",
                summary="Independent pixels, 4x4, for the Hub tests",
                paper="none",
                builder="zoo_independent.model:IndependentPixels",
                config=dict(TINY),
                data_spec=zoo.DataSpec(1, 4, 4, 2),
                capabilities={"likelihood", "sampler"},
                weights=tuple(self.weights),
            )
        )


@pytest.fixture
def register():
    """register(WeightsSpec, ...): make `hubtiny` with those weights visible for one test."""
    import zoo.plugins

    with contextlib.ExitStack() as stack:  # unwinds last in, first out: the host before the test comes back

        def _register(*weights):
            stack.enter_context(zoo.plugins.use_plugins({"hubtest": FakePlugin(weights)}))

        yield _register


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
# cards and verification of claims
# ---------------------------------------------------------------------------------------------
def test_card_is_generated_from_config_and_results(tmp_path, hf_env, register):
    from zoo import release as cards

    register()
    m = tiny_model()
    result = evaluate(m)
    folder = zoo.save_pretrained(
        m,
        tmp_path / "rel",
        results=result,
        samples=4,
        recipe={"epochs": 3, "lr": 1e-3},
        repo_id="zoo-test/card",
        hardware="2 CPU cores, 3 s",
    )
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "zoo" and meta["datasets"] == ["hub-toy"]
    assert {"zoo", "image-generation", "independent"} <= set(meta["tags"])
    metrics = {x["type"]: x for x in meta["model-index"][0]["results"][0]["metrics"]}
    nll = result["nll"]
    assert metrics["nll"]["value"] == pytest.approx(nll.value) and metrics["nll"]["args"]["stderr"] == pytest.approx(
        nll.stderr
    )
    assert metrics["nll.bits_per_dim"]["value"] == pytest.approx(nll.details["bits_per_dim"])
    assert nll.value == pytest.approx(-m.log_prob(toy_images()).double().mean().item())
    for section in ("## Paper", "## Usage", "## Training recipe", "## Samples", "## Results", "## Limitations"):
        assert section in card
    assert "![samples from the model](samples.png)" in card and (folder / "samples.png").is_file()
    assert "| nll (nats) |" in card and "`zoo eval hf-hub:zoo-test/card --dataset hub-toy --metrics nll`" in card
    assert "zoo.evaluate(\"hf-hub:zoo-test/card\", dataset='hub-toy', split='test', metrics=['nll'], seed=0)" in card
    assert '"epochs": 3' in card and "2 CPU cores, 3 s" in card and result.provenance["dataset_checksum"] in card
    claims = cards.read_claims(card)
    assert (
        claims.metrics == pytest.approx(cards.summarize(result).metrics)
        and claims.dataset == "hub-toy"
        and claims.seed == 0
    )


def test_summarize_handles_na_metrics_and_objects():
    from zoo import release as cards

    class Result:
        def to_dict(self):
            return {
                "provenance": {"dataset": "binarized-mnist", "split": "test", "n": 10, "seed": 3},
                "metrics": {
                    "nll": {"status": "n/a", "reason": "implicit model"},
                    "fid": 12.5,
                    "speed": {"samples_per_s": 40.0},
                },
            }

    s = cards.summarize(Result())
    assert s.dataset == "binarized-mnist" and s.n == 10 and s.seed == 3
    assert s.metrics == {"fid": 12.5, "speed.samples_per_s": 40.0} and s.notes == {"nll": "n/a, implicit model"}
    claims = cards.EvalSummary(metrics={"fid": 12.5, "speed.samples_per_s": 99.0})
    checks = cards.compare_claims(claims, s)
    assert [c.key for c in checks] == ["fid"] and checks[0].ok  # speed is hardware-dependent: not verified
    with pytest.raises(TypeError, match="expected an EvalResult"):
        cards.summarize(3)


def test_card_limitations_follow_the_model_kind():
    from zoo import release as cards

    ar = cards.default_limitations({"likelihood", "sampler", "fast_sampler"})
    gan = cards.default_limitations({"sampler"})
    assert any("Likelihoods are of the discrete images" in x for x in ar) and any("Autoregressive" in x for x in ar)
    assert not any("ikelihoods are" in x or "Autoregressive" in x for x in gan)
    assert any("implicit model" in x for x in gan) and any("FID floor" in x for x in gan)
    assert not any("Autoregressive" in x for x in cards.default_limitations({"likelihood"}))

    # a card whose only metric was n/a still writes a runnable zoo.evaluate call; an unknown
    # architecture gets the limitations of what was measured
    config = {
        "architecture": "not-registered",
        "tag": "t",
        "data_spec": {"channels": 1, "height": 2, "width": 2, "levels": 2},
    }
    results = {
        "provenance": {"dataset": "d", "split": "test", "n": 3, "seed": 0},
        "metrics": {"nll": {"status": "n/a", "reason": "implicit model"}},
    }
    card = cards.render_card(config, results)
    assert "metrics=['nll']" in card and "metrics=[]" not in card
    assert "| nll | n/a, implicit model |" in card and "Likelihoods are of" not in card


def test_cards_load_by_the_name_that_works():
    """`arch.tag` only for the weights the registry pins; else the folder; on the Hub its repo."""
    from zoo.release import card as cards

    config = json.loads((ISSUE_CARD / "config.json").read_text())  # pinned: pixelrnn-row.binarized-mnist
    assert 'zoo.load("pixelrnn-row.binarized-mnist")' in cards.render_card(config)
    assert 'zoo.load("hf-hub:me/row")' in cards.render_card(config, repo_id="me/row")
    retrained = {**config, "weights": {**config["weights"], "sha256": "0" * 64}}
    assert 'zoo.load("local-dir:runs/x/release")' in cards.render_card(retrained, folder="runs/x/release")
    assert 'zoo.load("local-dir:PATH")' in cards.render_card(retrained)


def test_card_says_why_the_config_only_for_the_specs_config():
    """A release at the spec's default config prints the spec's `config_note`; one trained with other options
    (a `--set` run) does not, since the reasons given for the default do not hold for it."""
    from zoo.release import card as cards

    config = json.loads((ISSUE_CARD / "config.json").read_text())  # pixelrnn-row at its registered config
    note = zoo.info("pixelrnn-row").config_note
    assert note and f"| why this config | {note} |" in cards.render_card(config)
    # the builder's defaults are filled in on both sides: leaving out an option at its default changes nothing
    kernel_left_out = {k: v for k, v in config["config"].items() if k != "kernel"}
    assert f"| why this config | {note} |" in cards.render_card({**config, "config": kernel_left_out})
    wider = {**config, "config": {**config["config"], "hidden": 2 * config["config"]["hidden"]}}
    assert "why this config" not in cards.render_card(wider)


def test_publish_verifies_claims_with_the_harness(tmp_path, hub_server, cli_runner, register):
    register()
    m = tiny_model(0)
    other = zoo.create("independent", height=4, width=4)  # uniform: 11.09 nats/image, m: 13.9
    good = zoo.save_pretrained(m, tmp_path / "good", results=evaluate(m))
    r = cli_runner("publish", str(good), "--repo-id", "zoo-test/verified")
    assert r.exit_code == 0, r.output
    assert "nll: claimed" in r.output and "ok" in r.output and "FAIL" not in r.output and "published" in r.output

    # a card whose numbers belong to other weights
    lying = zoo.save_pretrained(m, tmp_path / "lying", results=evaluate(other))
    r = cli_runner("publish", str(lying), "--repo-id", "zoo-test/lying")
    assert r.exit_code == 1 and "refusing to publish" in r.output and "FAIL" in r.output
    assert "zoo-test/lying" not in hub_server.repos  # nothing was created or uploaded
    r = cli_runner("publish", str(lying), "--repo-id", "zoo-test/lying", "--no-verify")
    assert r.exit_code == 0 and "zoo-test/lying" in hub_server.repos

    # --limit: a subset of the split, checked within 4 of its standard errors
    r = cli_runner("publish", str(good), "--repo-id", "zoo-test/verified", "--limit", "64", "--json")
    assert r.exit_code == 0, r.output
    checks = json.loads(r.output)["checks"]
    assert checks and all(c["ok"] for c in checks) and checks[0]["tolerance"] > 1e-3
    assert not all(c.ok for c in release.verify_claims(lying, limit=64))


def _lie(results: dict, nats: float, *, dims: int, canonical: bool = True) -> dict:
    """`results` (an eval.json) with every NLL claim made `nats` better, bits/dim consistent with it."""
    out = json.loads(json.dumps(results))
    for r in [out] + ([out["canonical_subset"]] if canonical and out.get("canonical_subset") else []):
        nll = r["metrics"]["nll"]
        nll["value"] -= nats
        nll["details"]["bits_per_dim"] = nll["value"] / (dims * math.log(2))
    return out


def _toy_release(folder, m, *, lie: float = 0.0):
    """A release folder of `m` as `zoo train` writes one: eval.json with claims on a canonical subset of
    64 of hub-toy's 256 test images, and the card rendered from it (every NLL number `lie` nats better)."""
    from zoo.release.canonical import canonical_subset
    from zoo.release.folder import render_release_card

    r = evaluate(m)
    r.canonical_subset = canonical_subset(m, r, limit=64)
    folder = zoo.save_pretrained(m, folder)
    (folder / "eval.json").write_text(json.dumps(_lie(r.to_dict(), lie, dims=16)))
    render_release_card(folder)
    return folder


def test_publish_checks_canonical_subset_claims_exactly(tmp_path, hub_server, cli_runner, register):
    """An untouched card passes on the whole split and on its canonical subset; a card whose every NLL
    number is 1 nat better (consistently) is refused on the canonical subset too; another --limit is a
    statistical check that says how large a lie it could miss."""
    register()
    m = tiny_model(0)
    good = _toy_release(tmp_path / "good", m)
    assert "canonical_subset:" in (good / "README.md").read_text()
    for extra in ([], ["--limit", "64"]):
        r = cli_runner("publish", str(good), "--repo-id", "zoo-test/good", "--json", *extra)
        assert r.exit_code == 0, r.output
        measured = [c for c in json.loads(r.output)["checks"] if c["kind"] == "measured"]
        assert measured and all(c["ok"] and c["tolerance"] < 0.02 for c in measured)
        assert all(("canonical subset" in c["key"]) == bool(extra) for c in measured)
    r = cli_runner("publish", str(good), "--repo-id", "zoo-test/good", "--limit", "100")
    assert r.exit_code == 0 and "a lie smaller than" in r.output and "`--limit 64` checks them" in r.output

    lying = _toy_release(tmp_path / "lying", m, lie=1.0)
    for extra in ([], ["--limit", "64"]):
        r = cli_runner("publish", str(lying), "--repo-id", "zoo-test/lying", *extra)
        assert r.exit_code == 1 and "do not reproduce" in r.output and "FAIL" in r.output, r.output
    assert "zoo-test/lying" not in hub_server.repos


ISSUE_CARD = Path(__file__).resolve().parents[1] / "cards" / "pixelrnn-row.binarized-mnist"


def _card_nll(key: str = "metrics") -> tuple[float, float]:
    """The bundled Row LSTM card's NLL claim and its bits/dim (full split, or "canonical_subset")."""
    results = json.loads((ISSUE_CARD / "eval.json").read_text())
    nll = (results if key == "metrics" else results[key])["metrics"]["nll"]
    return nll["value"], nll["details"]["bits_per_dim"]


def _edited_copy(tmp_path, name: str, nats: float, *, bits_per_dim: bool, canonical: bool) -> Path:
    """A copy of the bundled Row LSTM card with its NLL claims `nats` better in README.md and eval.json."""
    import shutil

    from zoo.release.folder import render_release_card

    folder = tmp_path / name
    shutil.copytree(ISSUE_CARD, folder)
    results = json.loads((folder / "eval.json").read_text())
    lied = _lie(results, nats, dims=784, canonical=canonical)
    if not bits_per_dim:  # the issue's card: the nats edited by hand, bits/dim left as they were
        lied["metrics"]["nll"]["details"]["bits_per_dim"] = results["metrics"]["nll"]["details"]["bits_per_dim"]
    (folder / "eval.json").write_text(json.dumps(lied))
    if bits_per_dim:
        render_release_card(folder)
    else:
        card = (folder / "README.md").read_text()
        old = f"- type: nll\n      value: {results['metrics']['nll']['value']!r}"
        assert old in card
        (folder / "README.md").write_text(
            card.replace(old, f"- type: nll\n      value: {lied['metrics']['nll']['value']!r}")
        )
    return folder


def test_the_issues_card_is_refused_before_anything_runs(tmp_path, hub_server, cli_runner, monkeypatch):
    """Issue 23: the Row LSTM card with its NLL 5 nats better and bits/dim left, published with and without
    --limit; a full-split claim that its own canonical subset contradicts; the registry's pin."""

    def boom(*a, **kw):
        raise AssertionError("the harness ran")

    issue = _edited_copy(tmp_path, "rel", 5.0, bits_per_dim=False, canonical=False)
    for limit in (None, 500, 1000):
        with pytest.raises(ZooError, match="contradict each other") as e:
            release.publish(issue, "me/row", limit=limit, evaluate=boom)
        nll, bpd = _card_nll()
        assert (
            f"nll.bits_per_dim: claimed {fmt(bpd)}, nll {fmt(nll - 5)} / (784 ln 2) = "
            f"{fmt((nll - 5) / (784 * math.log(2)))}"
        ) in str(e.value)
    r = cli_runner("publish", str(issue), "--repo-id", "me/row", "--limit", "500")
    assert r.exit_code == 1 and "refusing to publish" in r.output

    # consistent nats and bits/dim, canonical subset untouched: 3 nats from it is more than 3 of its standard errors
    split_only = _edited_copy(tmp_path, "split-only", 3.0, bits_per_dim=True, canonical=False)
    with pytest.raises(ZooError, match=r"nll \(split vs canonical subset\)"):
        release.publish(split_only, "me/row", limit=1000, evaluate=boom)

    # a consistent 1-nat lie everywhere in the card: the registry's pin for these weights disagrees
    monkeypatch.setenv("ZOO_CARDS_DIR", str(ISSUE_CARD.parent))
    lying = _edited_copy(tmp_path, "lying", 1.0, bits_per_dim=True, canonical=True)
    with pytest.raises(
        ZooError,
        match=re.escape(f"registry: nll: README.md says {fmt(_card_nll()[0] - 1)}, the registry's pin pixelrnn-row"),
    ):
        release.publish(lying, "me/row", limit=1000, evaluate=boom)
    assert not hub_server.repos


@pytest.mark.slow
def test_the_issues_card_on_its_canonical_subset(tmp_path, hub_server, monkeypatch):
    """The Row LSTM card: untouched it passes on its canonical subset; 1 nat better (every number, the
    canonical ones too) it is refused there. One harness run of 1000 images serves both."""
    import zoo.release.consistency

    # as for weights the registry does not pin (a new release): the pin would refuse the lie before any run
    monkeypatch.setattr(zoo.release.consistency, "_pin", lambda card, config: [])
    runs = []

    def once(model, **kw):
        if not runs:
            runs.append((kw, zoo.evaluate(model, **kw)))
        assert kw == runs[0][0]
        return runs[0][1]

    good = _edited_copy(tmp_path, "good", 0.0, bits_per_dim=True, canonical=True)
    lying = _edited_copy(tmp_path, "lying", 1.0, bits_per_dim=True, canonical=True)
    ok = release.publish(good, "me/row", limit=1000, evaluate=once)
    assert [c.key for c in ok.checks if c.kind == "measured"] == [
        "nll (canonical subset)",
        "nll.bits_per_dim (canonical subset)",
    ]
    assert all(c.ok for c in ok.checks) and runs[0][0]["limit"] == 1000
    canonical = _card_nll("canonical_subset")[0]
    with pytest.raises(
        ZooError, match=re.escape(f"nll (canonical subset): claimed {fmt(canonical - 1)}, measured {fmt(canonical)}")
    ):
        release.publish(lying, "me/row2", limit=1000, evaluate=once)
    assert list(hub_server.repos) == ["me/row"]


def test_publish_checks_the_folder_before_uploading(tmp_path, hub_server):
    folder = zoo.save_pretrained(tiny_model(), tmp_path / "rel")
    (folder / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        publish(folder, "zoo-test/broken")
    with pytest.raises(ValueError, match="ORG/NAME"):
        publish(folder, "no-slash")
    with pytest.raises(ValueError, match="registered ARCH"):
        publish(tmp_path / "missing", "zoo-test/x")
    with pytest.raises(ZooError, match="has no README.md"):
        release.publish(zoo.save_pretrained(tiny_model(), tmp_path / "nocard"), "zoo-test/x", verify=True)
    assert "zoo-test/broken" not in hub_server.repos and "zoo-test/x" not in hub_server.repos


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


def test_card_metrics_are_read_from_the_bundled_eval_json(tmp_path, hf_env, register):
    """A plugin's WeightsSpec.metrics come from its card's eval.json, not typed by hand."""
    register()
    m = tiny_model()
    folder = zoo.save_pretrained(m, hf_env / "cards" / "independent.t1", tag="t1")
    result = evaluate(zoo.load(f"local-dir:{folder}"))  # provenance: the file's sha256
    (folder / "eval.json").write_text(result.to_json())
    metrics = zoo.CardMetrics("independent.t1")
    assert dict(metrics) == pytest.approx(release.summarize(result).metrics)
    assert set(metrics) == {"nll", "nll.bits_per_dim"} and len(metrics) == 2
    with pytest.raises(ZooError, match="not there"):
        dict(zoo.CardMetrics("independent.nothing-bundled"))
    other = evaluate(zoo.create("independent", height=4, width=4))
    other.provenance["weights"] = "0" * 64
    (folder / "eval.json").write_text(other.to_json())
    with pytest.raises(ZooError, match="not measured on the folder's model.safetensors"):
        dict(zoo.CardMetrics("independent.t1"))


def test_card_training_progress_from_the_validation_log():
    from zoo.eval.trainlog import time_to_reach
    from zoo.release.card import training_progress

    log = [
        {"kind": "valid", "epoch": 1, "nll": 92.0, "elapsed_s": 600.0},
        {"kind": "valid", "epoch": 2, "nll": 88.5, "elapsed_s": 1260.0},
        {"kind": "valid", "epoch": 3, "nll": 84.9, "elapsed_s": 3900.0},
        {"kind": "valid", "epoch": 4, "nll": 85.2, "elapsed_s": 5400.0},
    ]
    assert time_to_reach(log, 90) == 1260.0 and time_to_reach(log, 85) == 3900.0 and time_to_reach(log, 80) is None
    text = "\n".join(training_progress(log, "training_curve.png"))
    assert "| 3 | 84.90 (best) | 1:05 h |" in text and "| 4 | 85.20 | 1:30 h |" in text
    assert "Time to reach 90 nats: 0:21 h; 85 nats: 1:05 h; the best, 84.90 nats: 1:05 h (epoch 3)." in text
    assert "![training curve](training_curve.png)" in text and "upper bound" not in text
    assert "the negative ELBO, an upper bound" in "\n".join(training_progress(log, bounds=[(1, 1)]))
    assert "importance-weighted bound with k=50, an upper bound" in "\n".join(training_progress(log, bounds=[(1, 50)]))
    assert "importance-weighted bound with k=50, an upper bound" in "\n".join(
        training_progress(log, bounds=[(1, 50), (3, 50)])  # a restart at the same k: one bound
    )
    mixed = "\n".join(training_progress(log, bounds=[(1, 1), (3, 50)]))  # a restart that validated with more samples
    assert (
        "an upper bound on the NLL: the negative ELBO for epochs 1-2; the negative importance-weighted bound with"
        " k=50 from epoch 3 on; the values jump where the bound changes" in mixed
    )
    assert "\n".join(training_progress(log, bounds=[(1, 1), (3, 50), (4, 50)])) == mixed  # spans of one k merged
    assert training_progress([{"kind": "valid", "epoch": 1}]) == []  # a run without a likelihood: no section
