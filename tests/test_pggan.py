"""The progressively grown GAN `pggan`: growth and fade-in, the paper's switches, EMA, sampling, resume."""

import pytest
import torch
from torch.nn import functional as F

import zoo
from zoo.errors import ZooError

# batch: bright squares on black, shifted from image to image
from test_gan import batch  # tests/ is on pytest's sys.path, and on mypy's (mypy_path)

TINY = {"height": 8, "width": 8, "stages": 2, "nz": 8, "base_width": 8}  # 4x4 -> 8x8

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


def tiny(**overrides):
    torch.manual_seed(0)
    return zoo.create("pggan", **{**TINY, **overrides})


def trainer(model, **recipe):
    from zoo_pggan.trainer import PGGANTrainer

    return PGGANTrainer(
        model,
        {
            **zoo.info("pggan").recipes["default"],
            "fixed_noise": 4,
            "batch_size": 8,
            "stable_images": 16,
            "fade_images": 16,
            **recipe,
        },
    )


def test_registry_entry_and_a_sampler_not_a_likelihood():
    spec = zoo.info("pggan")
    assert spec.family == "gan" and spec.plugin == "zoo_pggan" and spec.capabilities == frozenset({"sampler"})
    assert spec.trainer == "zoo_pggan.trainer:PGGANTrainer"
    m = zoo.create("pggan")
    assert m.resolutions == [7, 14, 28] and m.data_spec == zoo.DataSpec(1, 28, 28, 256)
    assert isinstance(m, zoo.Sampler) and not isinstance(m, zoo.Likelihood)
    assert not hasattr(m, "log_prob") and not hasattr(m, "logits")


@pytest.mark.parametrize("name", ["pggan", "dcgan"])
def test_zoo_check_says_it_does_not_apply(cli_runner, name):
    r = cli_runner("check", name)
    assert r.exit_code == 0 and f"zoo check does not apply to {name}: it is an implicit model" in r.output


def test_growth_schedule():
    from zoo_pggan.trainer import growth_at

    g = lambda images: growth_at(images, 3, stable_images=100, fade_images=50)  # noqa: E731
    assert g(0) == (0, 1.0) and g(99) == (0, 1.0)
    assert g(100) == (1, 0.0) and g(125) == (1, 0.5) and g(150) == (1, 1.0) and g(249) == (1, 1.0)
    assert g(250) == (2, 0.0) and g(275) == (2, 0.5) and g(10**6) == (2, 1.0)
    assert growth_at(10, 1, 100, 50) == (0, 1.0) and growth_at(100, 2, 100, 0) == (1, 1.0)


def test_fade_in_starts_where_the_last_stage_ended():
    """alpha = 0: the grown generator gives the previous stage's image upsampled, and the grown discriminator
    scores an image as the previous stage scores its 2x2 average pool (Figure 2 of the paper)."""
    m = tiny()
    z = torch.randn(4, 8)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        old, new = m.generator(z, 0, 1.0), m.generator(z, 1, 0.0)
        assert old.shape == (4, 1, 4, 4) and new.shape == (4, 1, 8, 8)
        torch.testing.assert_close(new, F.interpolate(old, scale_factor=2, mode="nearest"))
        torch.testing.assert_close(m.discriminator(x, 1, 0.0), m.discriminator(F.avg_pool2d(x, 2), 0, 1.0))
        half = m.generator(z, 1, 0.5)
        torch.testing.assert_close(half, 0.5 * m.generator(z, 1, 1.0) + 0.5 * new)


def test_reals_follow_the_growth():
    m = tiny(levels=2)
    x = batch(m.data_spec, 4)
    full = x.float() * 2 - 1
    m.set_growth(1, 1.0)
    torch.testing.assert_close(m.reals(x), full)
    m.set_growth(0, 1.0)
    torch.testing.assert_close(m.reals(x), F.avg_pool2d(full, 2))
    m.set_growth(1, 0.0)
    torch.testing.assert_close(m.reals(x), F.interpolate(F.avg_pool2d(full, 2), scale_factor=2, mode="nearest"))
    with pytest.raises(ValueError, match="alpha"):
        m.set_growth(1, 1.5)


def test_minibatch_stddev():
    from zoo_pggan.pggan import minibatch_stddev

    x = torch.ones(8, 3, 2, 2)
    out = minibatch_stddev(x)
    assert out.shape == (8, 4, 2, 2) and float(out[:, 3].max()) < 1e-3  # identical images: no spread
    y = torch.zeros(8, 3, 2, 2)
    y[:4] = 2.0  # groups are images {i, i + 2, i + 4, i + 6}: two zeros and two twos each, std 1
    torch.testing.assert_close(minibatch_stddev(y)[:, 3], torch.ones(8, 2, 2), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="groups of 4"):
        minibatch_stddev(torch.ones(6, 3, 2, 2))


def test_equalized_learning_rate_is_a_runtime_scale():
    from zoo_pggan.pggan import ScaledConv2d

    torch.manual_seed(0)
    eq = ScaledConv2d(16, 8, 3, equalized=True)
    plain = ScaledConv2d(16, 8, 3, equalized=False)
    assert abs(float(eq.weight.detach().std()) - 1) < 0.1  # stored N(0, 1) ...
    assert abs(float(plain.weight.detach().std()) - (2 / (16 * 9)) ** 0.5) < 0.02  # ... or He's N(0, 2 / fan_in)
    with torch.no_grad():
        plain.weight.copy_(eq.weight * eq.scale)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(eq(x), plain(x))


@pytest.mark.parametrize("switch", ["equalized_lr", "pixel_norm", "minibatch_stddev", "ema"])
def test_every_switch_builds_samples_and_trains(switch):
    m = tiny(**{switch: False})
    t = trainer(m, generator_ema=0.0 if switch == "ema" else 0.999)
    logs = t.step(batch(m.data_spec))
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert m.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)
    with pytest.raises(TypeError, match="True or False"):
        tiny(**{switch: 1})


@pytest.mark.parametrize("loss", ["wgan-gp", "logistic"])
def test_a_training_step_grows_and_resets_the_optimizers(loss):
    m = tiny()
    t = trainer(m, loss=loss)
    x = batch(m.data_spec)
    logs = [t.step(x) for _ in range(5)]  # 40 images: 16 at 4x4, 16 fading in 8x8, then 8x8
    assert [(int(r["stage"]), r["alpha"]) for r in logs] == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0)]
    assert ("gp" in logs[0]) == (loss == "wgan-gp")
    assert logs[-1]["resolution"] == 8.0 and t.images == 40
    t2 = trainer(tiny(), loss=loss)
    t2.step(x)
    t2.step(x)
    assert len(t2.opt_g.state) > 0
    t2.step(x)  # the first step at the new resolution: fresh optimizers (then one step of moments)
    assert all(int(s["step"]) == 1 for s in t2.opt_g.state.values())


def test_generator_ema():
    m = tiny()
    t = trainer(m, generator_ema=0.5)
    x = batch(m.data_spec)
    for decay in (0.1, 2 / 11, 0.25):  # the warm-up min(0.5, (1 + t) / (10 + t)) at steps t = 0, 1, 2
        before = [p.detach().clone() for p in m.generator_ema.parameters()]
        t.step(x)
        for old, e, p in zip(before, m.generator_ema.parameters(), m.generator.parameters(), strict=True):
            torch.testing.assert_close(e, decay * old + (1 - decay) * p.detach())
    assert not any(p.requires_grad for p in m.generator_ema.parameters())
    # samples come from the average: changing the trained generator changes nothing
    g = lambda: m.sample(3, generator=torch.Generator().manual_seed(1))  # noqa: E731
    a = g()
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(1.0)
    assert torch.equal(a, g())
    with pytest.raises(ValueError, match="ema=True"):
        trainer(tiny(ema=False), generator_ema=0.999)


@pytest.mark.parametrize("levels", [2, 256])
def test_sampling_levels_shape_and_seed(levels):
    m = tiny(levels=levels)
    a = m.sample(5, generator=torch.Generator().manual_seed(3))
    b = m.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, 1, 8, 8) and a.dtype == torch.long and torch.equal(a, b)
    assert 0 <= int(a.min()) and int(a.max()) < levels
    m.sample_batch_size = 2  # results do not depend on the chunking
    assert torch.equal(a, m.sample(5, generator=torch.Generator().manual_seed(3)))
    m.set_growth(0, 1.0)  # a lower stage samples at full size, each pixel of the 4x4 image repeated 2x2
    low = m.sample(2, generator=torch.Generator().manual_seed(0), temperature=0.0)
    assert low.shape == (2, 1, 8, 8) and torch.equal(
        low, low[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3)
    )


def test_binary_samples_are_bernoulli_draws_of_the_intensities():
    m = tiny(levels=2)
    noise = m.draw_noise(3, torch.Generator().manual_seed(0))
    p = m.intensities(noise["z"])
    assert torch.equal(m.decode(noise["z"], noise["u"]), (noise["u"] < p).long())
    assert torch.equal(m.decode(noise["z"], noise["u"], temperature=0.0), (p > 0.5).long())


def test_completion_and_bad_arguments_raise_clearly():
    from zoo_pggan.pggan import CompletionNotSupported

    m = tiny()
    with pytest.raises(CompletionNotSupported, match="cannot condition"):
        m.sample(1, known=torch.zeros(1, 1, 8, 8, dtype=torch.long), mask=torch.ones(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="takes no conditions"):
        m.sample(1, y=0)
    with pytest.raises(ValueError, match="2\\^\\(stages-1\\)"):
        zoo.create("pggan", height=28, width=28, stages=4)
    with pytest.raises(ValueError, match="loss"):
        trainer(tiny(), loss="hinge")
    with pytest.raises(ValueError, match="ema_decay"):
        trainer(tiny(), ema_decay=0.99)
    with pytest.raises(ValueError, match="unconditional"):
        trainer(tiny()).step(batch(zoo.DataSpec(1, 8, 8, 256)), torch.zeros(8, dtype=torch.long))


def test_nan_guard():
    m = tiny()
    t = trainer(m)
    with torch.no_grad():
        m.discriminator.score.bias.fill_(float("nan"))
    with pytest.raises(ZooError, match="diverged after 0 images"):
        t.step(batch(m.data_spec))


def test_exact_resume_across_a_growth_stage():
    """Stop inside the first stage, resume in a new trainer: the steps across the fade-in are bit-identical."""
    x = batch(zoo.DataSpec(1, 8, 8, 256))
    m1 = tiny()
    t1 = trainer(m1)
    for _ in range(5):
        t1.step(x)
    m2 = tiny()
    t2 = trainer(m2)
    t2.step(x)
    model_state, trainer_state = {k: v.clone() for k, v in m2.state_dict().items()}, t2.state_dict()
    m3 = tiny()
    m3.load_state_dict(model_state)
    t3 = trainer(m3)
    t3.load_state_dict(trainer_state)
    for _ in range(4):  # steps 2..5: stage 0, then the fade-in of 8x8, then 8x8
        t3.step(x)
    assert m3.growth == m1.growth == (1, 1.0)
    s1, s3 = m1.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s3[k]) for k in s1)
    with pytest.raises(ValueError, match="expected keys"):
        t3.load_state_dict({"images": 0})


def test_zoo_train_resumes_across_a_growth_stage(tmp_path):
    """Through the generic loop: 2 epochs straight equal 1 epoch + --resume 1 more, across the 4x4 -> 8x8 growth."""
    from safetensors.torch import load_file

    from test_gan import ToySquares

    kw = dict(
        dataset=ToySquares(),
        tiny=True,
        config={"levels": 2},
        progress=False,
        evaluate=False,
        samples=2,
        overrides={"batch_size": 16, "fixed_noise": 4, "stable_images": 48, "fade_images": 16},
    )
    zoo.train("pggan", epochs=2, out=tmp_path / "a", **kw)
    zoo.train("pggan", epochs=1, out=tmp_path / "b", **kw)
    zoo.train("pggan", epochs=2, out=tmp_path / "b", resume=True, **kw)
    a = load_file(tmp_path / "a" / "release" / "model.safetensors")
    b = load_file(tmp_path / "b" / "release" / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["stage"]) == 1 and float(a["alpha"]) == 1.0  # 96 images: grown and faded in
    assert (tmp_path / "a" / "samples" / "epoch002.png").is_file()
