"""The approximate-density family: the bound held to the truth, the VAE's contract, and the harness's marks."""

import json
import math

import pytest
import torch
from torch import nn

import zoo
from zoo.data import Dataset
from zoo.protocols import DataSpec
from zoo_vae.latent import CompletionNotSupported, LatentVariableModel, importance_bound

# -- the bound against an exact log-likelihood ----------------------------------------------


class _LinearEncoder(nn.Module):
    """q(z|x) = N(0.4 * (number of black pixels) - 0.8, 0.6^2): a deliberately rough posterior."""

    def forward(self, x):
        s = x.flatten(1).double().sum(1, keepdim=True)
        return 0.4 * s - 0.8, torch.full_like(s, 2 * math.log(0.6))


class _TinyLatentModel(LatentVariableModel):
    """2x2 binary images, one latent unit: p(x_i = 1 | z) = sigmoid(a_i z + b_i), z ~ N(0, 1)."""

    A = torch.tensor([1.5, -2.0, 0.7, 2.5], dtype=torch.float64)
    B = torch.tensor([0.3, -0.5, 1.0, -1.2], dtype=torch.float64)

    def __init__(self):
        super().__init__(DataSpec(1, 2, 2, 2), 1, _LinearEncoder())

    def decoder_logits(self, x, z):
        free = (z * self.A + self.B).view(-1, 1, 2, 2, 1)  # (B, 1, 2, 2, 1)
        return torch.cat([torch.zeros_like(free), free], dim=-1)  # (B, 1, 2, 2, 2)

    def exact_log_prob(self, x):
        """log of the integral over z of N(z; 0, 1) p(x|z), by the trapezoid rule on a fine grid."""
        z = torch.linspace(-12, 12, 40_001, dtype=torch.float64).unsqueeze(1)  # (G, 1)
        logits = z * self.A + self.B  # (G, 4)
        out = []
        for img in x.flatten(1).double():  # (4,)
            log_px_z = -nn.functional.binary_cross_entropy_with_logits(
                logits, img.expand_as(logits), reduction="none"
            ).sum(1)
            log_f = log_px_z - 0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
            dz = float(z[1, 0] - z[0, 0])
            out.append(torch.logsumexp(log_f, 0) + math.log(dz))  # the trapezoid's end terms are ~0 here
        return torch.stack(out)


def _all_2x2_images():
    bits = torch.arange(16).unsqueeze(1).bitwise_right_shift(torch.arange(4)).bitwise_and(1)
    return bits.view(16, 1, 2, 2).long()


def test_the_exact_log_likelihood_of_the_tiny_model_sums_to_one():
    model = _TinyLatentModel()
    assert torch.logsumexp(model.exact_log_prob(_all_2x2_images()), 0).item() == pytest.approx(0.0, abs=1e-9)


def test_the_bound_never_exceeds_the_true_log_likelihood_and_tightens_with_k():
    """Over all 16 images of the tiny model: the mean of the bound over many draws stays below log p(x) (within
    its Monte Carlo error), rises with k, and at large k comes within a few hundredths of a nat of the truth."""
    model = _TinyLatentModel().double()
    x = _all_2x2_images()
    exact = model.exact_log_prob(x)  # (16,)
    reps = 300
    xs = x.repeat(reps, 1, 1, 1)  # (reps * 16, 1, 2, 2)
    means = {}
    for k in (1, 4, 32, 256):
        draws = model.log_prob_bound(xs, k, generator=torch.Generator().manual_seed(k)).view(reps, 16)
        mean, se = draws.mean(0), draws.std(0) / math.sqrt(reps)
        assert (mean <= exact + 4 * se + 1e-9).all(), (k, (mean - exact).max())
        means[k] = mean
    gaps = {k: (exact - m).mean().item() for k, m in means.items()}
    assert gaps[1] > gaps[4] > gaps[32] > gaps[256] > -0.005, gaps
    assert gaps[1] > 0.05, gaps  # a rough posterior: the ELBO is visibly loose
    assert gaps[256] < 0.02, gaps


def test_importance_bound_is_log_mean_exp():
    w = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    assert torch.allclose(importance_bound(w), torch.tensor([math.log(2.0), 1.0]))


# -- the VAE's contract ------------------------------------------------------------------------


def _tiny_vae():
    torch.manual_seed(0)
    return zoo.create("vae", **zoo.info("vae").test_config)


def test_vae_bound_is_seeded_and_below_zero_and_trains_on_either_bound():
    model = _tiny_vae()
    x = torch.randint(0, 2, (5, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    a = model.log_prob_bound(x, 7, generator=torch.Generator().manual_seed(3))
    b = model.log_prob_bound(x, 7, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5,) and torch.equal(a, b) and (a < 0).all()
    model.bound_pass = 4  # the k samples in chunks of one decoder pass of 4 images: the same kind of number
    assert model.log_prob_bound(x, 7, generator=torch.Generator().manual_seed(3)).shape == (5,)
    for k in (1, 3):
        model.zero_grad()
        model.loss(x, k=k).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="expected an integer tensor"):
        model.log_prob_bound(x.float(), 2)
    with pytest.raises(ValueError, match="k must be"):
        model.log_prob_bound(x, 0)


class _Blobs(Dataset):
    """8x8 binary images, unlabelled: each pixel on with a probability growing along the raster."""

    name = "blobs"
    data_spec = DataSpec(1, 8, 8, 2)
    splits = ("train", "valid")

    def load(self, split):
        g = torch.Generator().manual_seed(self.splits.index(self.check_split(split)))
        return (torch.rand(48, 1, 8, 8, generator=g) < torch.linspace(0.1, 0.9, 64).view(1, 1, 8, 8)).byte(), None

    def checksum(self, split):
        return split

    def available(self, split):
        return True


def test_training_validates_on_the_bound_with_valid_iw_samples(tmp_path):
    from zoo.training.data import validation_nll

    def run(k):
        return zoo.train(
            "vae",
            dataset=_Blobs(),
            tiny=True,
            epochs=2,
            out=tmp_path / f"k{k}",
            overrides={"valid_iw_samples": k, "batch_size": 16, "ema_decay": 0.0},
            progress=False,
            evaluate=False,
            samples=0,
        )

    elbo, iwae = run(1), run(8)
    # validation does not touch training: the same last weights either way
    assert all(torch.equal(a, b) for a, b in zip(elbo.last.parameters(), iwae.last.parameters(), strict=True))
    valid = _Blobs().load("valid")[0]
    for result, k in ((elbo, 1), (iwae, 8)):
        nll = validation_nll(result.model, valid, batch_size=256, device=torch.device("cpu"), iw_samples=k)
        assert result.best_valid_nll == pytest.approx(nll, rel=1e-9)
    assert iwae.best_valid_nll < elbo.best_valid_nll  # the tighter bound: a lower NLL bound for the same weights


def test_vae_bernoulli_logits_are_the_two_levels_difference_exactly():
    model = _tiny_vae()
    x = torch.randint(0, 2, (6, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    direct = model.bernoulli_logits(x, z)
    assert torch.equal(direct, LatentVariableModel.bernoulli_logits(model, x, z))  # the plain path, bit for bit
    assert direct.shape == (6, 1, 8, 8)


def test_vae_is_a_bounded_likelihood_not_an_exact_one():
    model = _tiny_vae()
    assert isinstance(model, zoo.BoundedLikelihood) and not isinstance(model, zoo.Likelihood)
    assert not callable(getattr(model, "logits", None))  # not autoregressive: no zoo check, no raster sampler


def test_vae_samples_reconstructs_interpolates_and_refuses_completion():
    model = _tiny_vae().eval()
    x = torch.randint(0, 2, (3, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    assert model.reconstruct(x).shape == (3, 1, 8, 8)
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 1, 8, 8) and path.dtype == torch.long
    mean0, _ = model.encode(x[:1])
    assert torch.equal(path[0], model.decode(mean0, temperature=0.0)[0])  # the ends are the posterior means
    cold = model.sample(4, generator=torch.Generator().manual_seed(0), temperature=0.0)
    assert (cold == cold[0]).all()  # z = 0 and the most likely levels: one image
    with pytest.raises(CompletionNotSupported, match="does not complete images"):
        model.sample(2, known=x[:1], mask=torch.ones(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of 4"):
        zoo.create("vae", height=10, width=8)


# -- the harness: a bound is reported and marked as one ----------------------------------------


def test_evaluate_reports_an_upper_bound_marked_with_its_k(tmp_path):
    from zoo.eval.report import leaderboard_markdown
    from zoo.eval.result import format_table

    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=4, decoder_hidden=8)
    r = zoo.evaluate(model, "binarized-mnist", metrics="nll", limit=20, iw_samples=3, batch_size=10)
    nll = r["nll"]
    assert nll.details["bound"] == "upper" and nll.details["k"] == 3 and nll.value > 0
    assert nll.short().startswith("≤ ") and "upper bound, k=3" in str(r)
    assert r.provenance["iw_samples"] == 3 and r.provenance["density"] == "bound"
    again = zoo.evaluate(model, "binarized-mnist", metrics="nll", limit=20, iw_samples=3, batch_size=10)
    assert again["nll"].value == nll.value  # seeded
    tighter = zoo.evaluate(model, "binarized-mnist", metrics="nll", limit=20, iw_samples=30, batch_size=10)
    assert tighter["nll"].value < nll.value
    assert "≤ " in format_table([r])
    exact = zoo.evaluate(
        zoo.create("pixelcnn", hidden=4, residual_blocks=1, out_hidden=8), "binarized-mnist", metrics="nll", limit=20
    )
    assert exact.provenance["iw_samples"] is None and exact["nll"].bound is None
    board = leaderboard_markdown([r, exact])
    assert board.index("**Exact likelihood") < board.index("**Bounded likelihood") < board.index(f"`{r.model}`")
    assert f"| ≤ {nll.short().removeprefix('≤ ').removesuffix(' nats')} (k=3) |" in board


def test_card_marks_the_bound_and_reruns_at_the_same_k(tmp_path):
    from zoo.release.canonical import evaluation_settings
    from zoo.release.card import render_card
    from zoo.release.claims import read_claims
    from zoo.release.summary import summarize

    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=4, decoder_hidden=8)
    r = zoo.evaluate(model, "binarized-mnist", metrics="nll", limit=20, iw_samples=3, batch_size=10)
    s = summarize(r)
    assert s.bounds == {"nll": {"bound": "upper", "k": 3}} and "nll.k" not in s.metrics
    assert evaluation_settings(s)["iw_samples"] == 3
    card = render_card({"architecture": "vae", "config": {}, "data_spec": model.data_spec.to_dict()}, r)
    assert f"| ≤ {s.metrics['nll']:.4f}".rstrip("0") in card and "(upper bound, k=3)" in card
    assert "--iw-samples 3" in card and "log_prob_bound" in card
    claims = read_claims(card)
    assert claims.bounds["nll"]["k"] == 3 and claims.provenance["iw_samples"] == 3


def test_the_canonical_subset_scores_a_bound_at_a_k_ci_can_rerun(monkeypatch):
    """The card claims the literature's k on the whole split; its canonical subset (what CI and
    `zoo publish --limit` re-run) holds the same bound at no more than CANONICAL_IW_SAMPLES, and says so."""
    from zoo.release import canonical
    from zoo.release.card import render_card
    from zoo.release.claims import read_claims

    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=4, decoder_hidden=8)
    full = zoo.evaluate(model, "binarized-mnist", metrics="nll", limit=20, iw_samples=7, batch_size=10)
    seen = []

    def spy(*args, **kw):
        seen.append(kw["iw_samples"])
        return zoo.evaluate(*args, **kw)

    monkeypatch.setattr(canonical, "CANONICAL_IW_SAMPLES", 2)
    full.canonical_subset = canonical.canonical_subset(model, full, limit=10, evaluate=spy)
    assert seen == [2] and full.canonical_subset["metrics"]["nll"]["details"]["k"] == 2
    card = render_card({"architecture": "vae", "config": {}, "data_spec": model.data_spec.to_dict()}, full)
    claims = read_claims(card)
    assert claims.bounds["nll"]["k"] == 7 and claims.provenance["iw_samples"] == 7
    assert claims.subset is not None and claims.subset.provenance["iw_samples"] == 2
    assert claims.subset.bounds["nll"]["k"] == 2 and "| nll (upper bound, k=2) | ≤ " in card


# -- the PixelVAE: an autoregressive decoder given z ---------------------------------------------


def test_pixelvae_decoder_is_causal_given_z_and_samples_through_the_raster_driver():
    torch.manual_seed(0)
    model = zoo.create("pixelvae", **zoo.info("pixelvae").test_config).eval()
    report = zoo.check(model.decoder, name="pixelvae decoder", cond={"z": torch.randn(1, 4, dtype=torch.float64)})
    assert report.passed and report.causal, str(report)
    z = torch.randn(2, 4)
    a = model.decode(z, generator=torch.Generator().manual_seed(4))
    b = zoo.sample(model.decoder, 2, method="naive", generator=torch.Generator().manual_seed(4), z=z)
    assert torch.equal(a, b)
    x = torch.randint(0, 2, (3, 1, 8, 8), generator=torch.Generator().manual_seed(1))
    lp = model.log_prob_bound(x, 3, generator=torch.Generator().manual_seed(0))
    assert lp.shape == (3,) and (lp < 0).all()
    with pytest.raises(ValueError, match="needs the latent code"):
        model.decoder.logits(x)


@pytest.mark.parametrize("extra", [{}, {"channels": 3, "levels": 16}], ids=["binary", "colour"])
def test_pixelvae_fast_sampler_draws_the_naive_samplers_images(extra):
    """ConditionalSteps (z's features once, each layer at one pixel) against one decoder pass per
    sub-pixel: the same images at temperature 1 and 0, and in a completion."""
    from zoo.sampling import draw_uniforms, prepare_completion, sample_fast, sample_naive

    cfg = {**zoo.info("pixelvae").test_config, **extra}
    torch.manual_seed(0)
    model = zoo.create("pixelvae", **cfg).eval()
    with torch.no_grad():  # larger weights than the init, so that every layer moves the logits
        for p in model.parameters():
            p.mul_(2.0)
    spec, z = model.data_spec, torch.randn(4, cfg["latent"])
    u = draw_uniforms(4, spec, torch.Generator().manual_seed(1))
    for temperature in (1.0, 0.0):
        a = sample_naive(model.decoder, u, temperature=temperature, z=z)
        assert torch.equal(a, sample_fast(model.decoder, u, temperature=temperature, z=z))
    known = torch.randint(0, spec.levels, (4, *spec.shape), generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(spec.shape, dtype=torch.bool)
    mask[:, :4] = True  # True = known: the top half is kept, the bottom half drawn
    known, mask = prepare_completion(spec, 4, known, mask)
    assert known is not None
    a = sample_naive(model.decoder, u, known=known, mask=mask, z=z)
    assert torch.equal(a, sample_fast(model.decoder, u, known=known, mask=mask, z=z))
    assert torch.equal(a[:, :, :4], known[:, :, :4].to(a.dtype))
    with pytest.raises(ValueError, match="needs z"):
        model.decoder.fast_sampler(known)


def test_a_published_exact_value_beside_a_bound_is_not_marked_as_a_bound():
    """The PixelVAE's anchor is the PixelCNN's exact NLL: the board, the result line and the card print it
    unmarked beside the model's ≤ bound; a published bound (the VAE's) keeps its mark."""
    from pathlib import Path

    from zoo.eval.result import published_mark, reference_line

    assert reference_line({"nll": 81.3, "source": "s", "exact": True}, "nll", bound=True) == "published 81.30 (s)"
    assert reference_line({"nll": 86.76, "source": "s"}, "nll", bound=True) == "published ≤ 86.76 (s)"
    assert published_mark({"exact": True}, bound=False) == published_mark({}, bound=False) == ""
    assert zoo.info("pixelvae").reference_results["binarized-mnist"]["exact"] is True
    folder = Path(__file__).resolve().parents[1] / "cards" / "pixelvae.binarized-mnist"
    bound = json.loads((folder / "eval.json").read_text())["metrics"]["nll"]["value"]
    assert f"| nll | 81.30 | ≤ {bound:.2f} |" in (folder / "README.md").read_text()


def test_a_bound_scored_in_parts_goes_on_where_it_stopped_with_the_same_numbers(tmp_path):
    """`evaluate(..., parts=DIR)` (`zoo eval --parts DIR`): one file per batch, reused by a later call, so a long
    bound (k=5000) outlasts a stopped process; the numbers are those of one uninterrupted call; a folder of another
    evaluation, or a batch file that does not fit, is refused."""
    from click.testing import CliRunner

    from zoo.cli import build_cli
    from zoo.errors import ArgumentError

    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=4, decoder_hidden=8)
    kw = {"metrics": "nll", "limit": 25, "iw_samples": 3, "batch_size": 10}
    whole = zoo.evaluate(model, "binarized-mnist", **kw)["nll"]
    parts = tmp_path / "parts"
    first = zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)["nll"]
    assert sorted(p.name for p in parts.iterdir()) == [
        "batch-00000.json",
        "batch-00001.json",
        "batch-00002.json",
        "pin.json",
    ]
    assert (first.value, first.stderr) == (whole.value, whole.stderr)
    saved = json.loads((parts / "batch-00001.json").read_text())
    (parts / "batch-00001.json").write_text(json.dumps({**saved, "log_prob": [v - 10.0 for v in saved["log_prob"]]}))
    reused = zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)["nll"]
    assert reused.value == pytest.approx(whole.value + 10 * 10 / 25)  # batch 1 read, not scored again
    (parts / "batch-00001.json").unlink()
    before = (parts / "batch-00000.json").stat().st_mtime_ns
    again = zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)["nll"]
    assert (again.value, again.stderr) == (whole.value, whole.stderr)
    assert (parts / "batch-00000.json").stat().st_mtime_ns == before and (parts / "batch-00001.json").is_file()
    with pytest.raises(ArgumentError, match=r"another evaluation \(k: 3; this one has k: 4\)"):
        zoo.evaluate(model, "binarized-mnist", parts=parts, **{**kw, "iw_samples": 4})
    (parts / "batch-00002.json").write_text(json.dumps({**saved, "start": 20}))
    with pytest.raises(ArgumentError, match="does not hold images 20..24"):
        zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)
    res = CliRunner().invoke(build_cli(), ["eval", "vae", "pixelvae", "--parts", str(tmp_path / "two")])
    assert res.exit_code != 0 and "give one model NAME" in res.output and not (tmp_path / "two").exists()


def test_a_finished_parts_folder_reads_back_in_order_and_an_unfinished_one_is_refused(tmp_path):
    """`read_parts` (the reader of stages/tools/paired_gap.py): a folder that `zoo eval --parts` finished gives its
    pin and the per-image values whose mean and standard error are the score; two pins of one model at two k
    differ in k only; a folder with a batch missing or cut short, or fewer images than its --limit, is refused,
    and so is a torn or hand-edited file, with a zoo error naming it."""
    from zoo.errors import ArgumentError
    from zoo.eval.likelihood import mean_stderr, pin_difference, read_parts

    assert mean_stderr(torch.tensor([1.0, 3.0])) == (2.0, 1.0)
    torch.manual_seed(0)
    model = zoo.create("vae", latent=4, hidden=4, decoder_hidden=8)
    kw = {"metrics": "nll", "limit": 25, "iw_samples": 3, "batch_size": 10}
    parts = tmp_path / "k3"
    score = zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)["nll"]
    pin, lp = read_parts(parts)
    assert (pin["k"], pin["limit"], tuple(lp.shape)) == (3, 25, (25,))
    assert mean_stderr(-lp) == (score.value, score.stderr)
    zoo.evaluate(model, "binarized-mnist", parts=tmp_path / "k4", **{**kw, "iw_samples": 4})
    assert pin_difference(pin, read_parts(tmp_path / "k4")[0]) == ["k"]
    saved = json.loads((parts / "batch-00000.json").read_text())
    (parts / "batch-00000.json").write_text(json.dumps({**saved, "log_prob": saved["log_prob"][:-1]}))
    with pytest.raises(ArgumentError, match=r"does not hold images 0\.\.9"):
        read_parts(parts)
    (parts / "batch-00000.json").write_text(json.dumps(saved))
    (parts / "batch-00001.json").unlink()
    with pytest.raises(ArgumentError, match=r"batch 1 \(images from 10\) is missing"):
        read_parts(parts)
    (parts / "batch-00002.json").unlink()
    with pytest.raises(ArgumentError, match="holds 10 of the 25 images"):
        read_parts(parts)
    with pytest.raises(ArgumentError, match="no pin.json"):
        read_parts(tmp_path)
    (parts / "batch-00000.json").write_text('{"start": 0, "log_prob": [-1.0, "x"')  # torn or edited by hand
    with pytest.raises(ArgumentError, match="cannot read the batch file .*batch-00000.json"):
        read_parts(parts)
    (parts / "batch-00000.json").write_text(json.dumps({"start": 0, "log_prob": ["x"] * 10}))
    with pytest.raises(ArgumentError, match="no list of values"):
        read_parts(parts)
    (parts / "pin.json").write_text("[]")
    with pytest.raises(ArgumentError, match="pin file .* holds no JSON object"):
        zoo.evaluate(model, "binarized-mnist", parts=parts, **kw)
