"""Every released set of weights loads offline from its bundled folder and reproduces its card.

Driven by the registry: each `arch.tag` listed by `zoo.list_models(pretrained=True)`.
"""

import json
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parents[1]
RELEASES = zoo.list_models(pretrained=True)


def _card(name):
    return ROOT / "cards" / name


@pytest.mark.parametrize("name", RELEASES)
def test_release_folder_is_a_hub_repo_and_loads_offline(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = _card(name)
    for f in ("README.md", "config.json", "model.safetensors", "samples.png"):
        assert (folder / f).is_file(), f"{name}: {f} missing"
    arch, tag = name.split(".", 1)
    w = zoo.info(name).weights_for(tag)
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == arch and config["weights"]["sha256"] == w.sha256
    m = zoo.load(name)
    assert not m.training and m.zoo_weights.sha256 == w.sha256 and m.zoo_weights.source == "bundled"
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "model-index" in card and f"{w.metrics['nll']:.3f}"[:5] in card


@pytest.mark.slow
@pytest.mark.parametrize("name", RELEASES)
def test_release_reproduces_its_claimed_test_nll(name):
    """The claim pinned in the registry (taken from the card's harness run) on the whole test split."""
    arch, tag = name.split(".", 1)
    w = zoo.info(name).weights_for(tag)
    r = zoo.evaluate(name, dataset=w.dataset, split="test", metrics=["nll"], progress=False)
    assert r["nll"].details["n"] == 10000
    assert r["nll"].value == pytest.approx(w.metrics["nll"], rel=1e-4)
