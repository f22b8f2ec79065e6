"""Every released set of weights loads offline from its bundled folder and reproduces its card.

Driven by the registry: each `arch.tag` listed by `zoo.list_models(pretrained=True)`.
"""

import json
import re
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parents[1]
RELEASES = zoo.list_models(pretrained=True)
# releases scored by a bound (a VAE): re-scoring the whole split at the card's k takes minutes, so CI re-scores
# their canonical subset (test_bounded_release_reproduces_its_canonical_claims)
BOUNDED = [n for n in RELEASES if "likelihood_bound" in zoo.info(n).capabilities]


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
    assert card.startswith("---\n") and "model-index" in card and w.metrics
    # the card's numbers name these weights: the file's sha256
    assert json.loads((folder / "eval.json").read_text())["provenance"]["weights"] == w.sha256
    for key, value in w.metrics.items():  # every pinned claim is in the card's model-index
        assert f"- type: {key}\n      value: {value!r}" in card, key


@pytest.mark.parametrize("name", RELEASES)
def test_release_card_is_generated_from_the_folder(name, tmp_path):
    """The card is exactly what `zoo card` renders from the folder's config, training summary and eval.json:
    nobody edited its numbers by hand."""
    import shutil

    from zoo.release import render_release_card

    copy = tmp_path / name
    shutil.copytree(_card(name), copy)
    render_release_card(copy)
    assert (copy / "README.md").read_text() == (_card(name) / "README.md").read_text()
    card = (copy / "README.md").read_text()
    assert "Hardware and time: " in card and f"`zoo train {name.split('.')[0]} --dataset " in card
    # the usage example calls only what the model has: no log_prob on an implicit model (a GAN)
    usage = card.split("## Usage", 1)[1].split("## Model", 1)[0]
    assert ("model.log_prob(x)" in usage) == ("likelihood" in zoo.info(name).capabilities), usage


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in RELEASES if n not in BOUNDED])
def test_release_reproduces_its_claims(name, mnist_splits):
    """The claims pinned in the registry (taken from the card's harness run), re-measured on the whole test split:
    the exact NLL for a likelihood model, the sample metrics (same seed, same samples) for the GAN."""
    arch, tag = name.split(".", 1)
    w = zoo.info(name).weights_for(tag)
    metrics = sorted({key.split(".")[0] for key in w.metrics})
    r = zoo.evaluate(name, dataset=w.dataset, split="test", metrics=metrics, progress=False)
    assert r.provenance["n"] == 10000
    for key, claimed in w.metrics.items():
        metric, _, detail = key.partition(".")
        measured = r[metric].details[detail] if detail else r[metric].value
        assert measured == pytest.approx(claimed, rel=1e-4), key


@pytest.mark.slow
@pytest.mark.parametrize("name", BOUNDED)
def test_bounded_release_reproduces_its_canonical_claims(name):
    """A bounded model's card: its nll is an upper bound at k importance samples, marked so, and the same
    evaluation on the canonical subset (1,000 test images, same k and seed) reproduces its canonical claims."""
    results = json.loads((_card(name) / "eval.json").read_text())
    nll = results["metrics"]["nll"]
    assert nll["details"]["bound"] == "upper" and nll["details"]["k"] == results["provenance"]["iw_samples"]
    sub = results["canonical_subset"]
    prov = sub["provenance"]
    r = zoo.evaluate(
        name,
        dataset=prov["dataset"],
        split="test",
        metrics="nll",
        limit=prov["limit"],
        iw_samples=prov["iw_samples"],
        batch_size=prov["batch_size"],
        seed=prov["seed"],
    )
    assert r.provenance["subset"] == prov["subset"]
    assert r["nll"].details["bound"] == "upper" and r["nll"].details["k"] == prov["iw_samples"]
    assert r["nll"].value == pytest.approx(sub["metrics"]["nll"]["value"], rel=1e-5)
    assert "| ≤ " in (_card(name) / "README.md").read_text()


def test_zoo_card_rerenders_and_rescoring_replaces_the_results(tmp_path):
    """`zoo card DIR`: the card from the folder's files; a --limit run says so; tampered weights stop it."""
    import shutil

    from click.testing import CliRunner

    from zoo.cli import build_cli

    name = "pixelcnn.binarized-mnist"  # exact and fast: its nll row has a command to check
    copy = tmp_path / name
    shutil.copytree(_card(name), copy)
    training = json.loads((copy / "training.json").read_text())
    (copy / "training.json").write_text(json.dumps({**training, "limit": 100}))
    res = CliRunner().invoke(build_cli(), ["card", str(copy), "--metrics", "nll", "--limit", "20", "--no-progress"])
    assert res.exit_code == 0, res.output
    card = (copy / "README.md").read_text()
    assert "- trained on the first 100 images of the train split only (--limit)" in card
    assert re.search(r"`zoo train [^`]*--limit 100\b", card) and "limited to 20 images" in card
    # the results' commands score the images the card's numbers come from
    assert f"`zoo eval {name} --dataset binarized-mnist --metrics nll --limit 20` |" in card
    assert json.loads((copy / "eval.json").read_text())["provenance"]["n"] == 20
    with open(copy / "model.safetensors", "r+b") as f:  # one flipped byte
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    res = CliRunner().invoke(build_cli(), ["card", str(copy)])
    assert res.exit_code != 0 and "does not match the sha256" in res.output


def test_card_results_measured_in_memory_are_named_by_the_file(tmp_path):
    """zoo train scores before writing the file: `zoo card` checks the tensors are the file's and names the file."""
    import shutil

    from zoo.errors import ZooError
    from zoo.release import render_release_card
    from zoo.weights import state_sha256 as _state_sha256

    name = RELEASES[0]
    copy = tmp_path / name
    shutil.copytree(_card(name), copy)
    results = json.loads((copy / "eval.json").read_text())
    file_sha = results["provenance"]["weights"]
    in_memory = _state_sha256(zoo.load(name))
    assert in_memory != file_sha
    results["provenance"].update(weights=in_memory, weights_source="in-memory state_dict", note="")
    (copy / "eval.json").write_text(json.dumps(results))
    render_release_card(copy)
    prov = json.loads((copy / "eval.json").read_text())["provenance"]
    assert (
        prov["weights"] == file_sha and prov["weights_source"] == "model.safetensors" and "same tensors" in prov["note"]
    )
    assert (copy / "README.md").read_text().count(file_sha) >= 2  # model table and provenance

    results["provenance"].update(weights="0" * 64)  # numbers of some other tensors
    (copy / "eval.json").write_text(json.dumps(results))
    with pytest.raises(ZooError, match="other tensors"):
        render_release_card(copy)
    results["provenance"].update(weights_source="zoo.load")
    (copy / "eval.json").write_text(json.dumps(results))
    with pytest.raises(ZooError, match="not on this folder"):
        render_release_card(copy)


def test_card_names_each_stages_hardware_when_they_differ(tmp_path):
    """A run resumed on other hardware: the card's line says which command ran where, not just the last machine."""
    import shutil

    from zoo.release import render_release_card

    name = RELEASES[0]
    copy = tmp_path / name
    shutil.copytree(_card(name), copy)
    training = json.loads((copy / "training.json").read_text())
    stages = [
        {"epochs": 1, "from_epoch": 0, "from_step": 0, "hardware": "CPU (x86_64, 2 cores, 2 threads)"},
        {"epochs": 3, "from_epoch": 1, "from_step": 9, "hardware": "NVIDIA H100 80GB HBM3"},
    ]
    (copy / "training.json").write_text(json.dumps({**training, "epochs": 3, "wall_time_s": 600, "stages": stages}))
    render_release_card(copy)
    line = next(x for x in (copy / "README.md").read_text().splitlines() if x.startswith("Hardware and time: "))
    assert line.startswith("Hardware and time: 10.0 min, 3 epochs (`zoo train ")
    assert "--epochs 1` on CPU (x86_64, 2 cores, 2 threads), then " in line
    assert "--epochs 3 --resume` on NVIDIA H100 80GB HBM3 in the same --out folder)" in line
    same = [{**s, "hardware": "NVIDIA H100 80GB HBM3"} for s in stages]  # one machine: named once, up front
    (copy / "training.json").write_text(json.dumps({**training, "stages": same, "hardware": "NVIDIA H100 80GB HBM3"}))
    render_release_card(copy)
    line = next(x for x in (copy / "README.md").read_text().splitlines() if x.startswith("Hardware and time: "))
    assert line.startswith("Hardware and time: NVIDIA H100 80GB HBM3, ") and " on NVIDIA" not in line


def test_card_of_a_partial_recipe_says_whether_it_reaches_the_published_number(tmp_path):
    """Weights from part of a recipe: the card gives the full recipe's time, and says the published number is
    reached when these weights reach it, or that the full recipe's result is not measured when they do not; weights
    from runs in a row are said to be so, not a share of the last run's recipe."""
    import shutil

    from zoo.release import render_release_card

    copy = tmp_path / "pixelcnn.binarized-mnist"
    shutil.copytree(_card("pixelcnn.binarized-mnist"), copy)
    training = json.loads((copy / "training.json").read_text())
    (copy / "training.json").write_text(json.dumps({**training, "epochs": 10, "wall_time_s": 3600}))
    full = zoo.info("pixelcnn").recipes["default"]["epochs"]

    def partial_line():
        render_release_card(copy)
        return next(x for x in (copy / "README.md").read_text().splitlines() if x.startswith("These weights come"))

    line = partial_line()  # 83.52 against the published 81.30
    assert line.startswith(f"These weights come from 10 of the {full} epochs of the `default` recipe")
    assert f"the full recipe takes about {full / 10:.1f} h" in line and "has not been measured" in line
    results = json.loads((copy / "eval.json").read_text())
    results["metrics"]["nll"]["value"] = 81.0
    (copy / "eval.json").write_text(json.dumps(results))
    line = partial_line()
    assert "reach the published number already" in line and "not been measured" not in line
    # weights from runs in a row: the last run's share of its recipe is not the weights' story
    first = (training.get("stages") or [{}])[0]
    history = {"epochs": 20, "steps": 1000, "wall_time_s": 7200.0, "validation": [], "training": training}
    init = {"name": "local-dir:earlier", "sha256": "ab" * 32, "history": history}
    chained = {**training, "epochs": 10, "stages": [{**first, "init_from": init}]}
    (copy / "training.json").write_text(json.dumps(chained))
    line = partial_line()
    assert line.startswith("These weights come from 2 runs in a row, each from the last one's weights (30 epochs")
    assert f"not from one run of the {full} epochs of the `default` recipe" in line and "takes about" not in line


def test_card_shows_further_results_of_its_weights_with_their_commands(tmp_path):
    """A release's eval_further.json (`zoo eval ... --out`: a bound at a larger k on a subset, say) gets a table of
    its own on the card, each number beside the command that measures it; results of other weights are refused."""
    import shutil

    from zoo.errors import ZooError
    from zoo.release import render_release_card

    copy = tmp_path / "pixelvae.binarized-mnist"
    shutil.copytree(_card("pixelvae.binarized-mnist"), copy)
    r = zoo.evaluate(f"local-dir:{copy}", "binarized-mnist", metrics="nll", limit=20, iw_samples=3, seed=1)
    (copy / "eval_further.json").write_text(json.dumps([r.to_dict()]))
    render_release_card(copy)
    card = (copy / "README.md").read_text()
    row = next(x for x in card.splitlines() if x.startswith("| nll (upper bound, k=3) | ≤ "))
    assert f"≤ {r['nll'].value:.4f}".rstrip("0") in row and "| 20 (`--limit 20 --seed 1`) |" in row
    assert row.endswith("--metrics nll --iw-samples 3 --limit 20 --seed 1` |"), row
    other = r.to_dict()
    other["provenance"]["weights"] = "ab" * 32
    (copy / "eval_further.json").write_text(json.dumps([other]))
    with pytest.raises(ZooError, match="not of this folder's model.safetensors"):
        render_release_card(copy)
