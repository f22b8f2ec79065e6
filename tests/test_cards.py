"""Model cards (generated from the config and the results, read back, their limitations and training
progress) and publish's verification of a card's claims with the harness, against zoo.testing.hubserver.
The toys and fixtures are those of the Hub tests (hub_toys.py, conftest.py).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

import zoo
from zoo import release
from zoo.errors import WeightsError, ZooError
from zoo.release.summary import fmt  # the claims' number format (trailing zeros dropped)

from hub_toys import evaluate, publish, tiny_model, toy_images


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
