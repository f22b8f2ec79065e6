"""The GAN baseline `dcgan`: registry entry, sampler contract, training step, NaN guard, resume."""

import math

import pytest
import torch

import zoo
from zoo.data import Dataset
from zoo.errors import ZooError

TINY = {"height": 8, "width": 8, "nz": 8, "ngf": 8, "ndf": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


def tiny(**overrides):
    torch.manual_seed(0)  # the DCGAN initialisation draws from torch's global generator
    return zoo.create("dcgan", **{**TINY, **overrides})


def trainer(model, **recipe):
    from zoo_gan.trainer import GANTrainer

    return GANTrainer(model, {**zoo.info("dcgan").recipes["default"], "fixed_noise": 6, **recipe})


def batch(spec, n=8):
    """A few images of the spec: a bright square on black, shifted by one pixel from image to image."""
    x = torch.zeros(n, *spec.shape, dtype=torch.long)
    for k in range(n):
        i, j = k % 3, (k // 3) % 3
        x[k, :, i : i + 4, j : j + 4] = spec.levels - 1
    return x


def test_registry_entry():
    spec = zoo.info("dcgan")
    assert "dcgan" in zoo.list_models("dc*")
    assert spec.family == "gan" and spec.plugin == "zoo_gan"
    assert spec.capabilities == frozenset({"sampler"})
    assert spec.data_spec == zoo.DataSpec(1, 28, 28, 2)
    assert spec.trainer == "zoo_gan.trainer:GANTrainer"
    r = spec.recipes["default"]
    assert r["lr"] == 2e-4 and tuple(r["betas"]) == (0.5, 0.999) and r["batch_size"] > 0 and r["epochs"] > 0
    import inspect

    from zoo_gan.dcgan import DCGAN

    defaults = {k: p.default for k, p in inspect.signature(DCGAN).parameters.items()}
    assert defaults == dict(spec.config)  # the registered config is the constructor's, every kwarg
    assert zoo.create("dcgan").data_spec == spec.data_spec


def test_plugin_module_imports_no_model_code():
    import subprocess
    import sys

    code = "import sys, zoo; zoo.list_models(); print('torch' in sys.modules, 'zoo_gan.dcgan' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"  # torch itself may be imported by another plugin; the GAN's code must not be


def test_a_sampler_not_a_likelihood():
    m = tiny()
    assert isinstance(m, zoo.Sampler) and isinstance(m, zoo.Model)
    assert not isinstance(m, zoo.Likelihood) and not isinstance(m, zoo.Autoregressive)
    assert not hasattr(m, "log_prob") and not hasattr(m, "logits")


@pytest.mark.parametrize(
    "config",
    [
        {},  # binarized MNIST-like
        {"levels": 256},  # MNIST-like
        {"channels": 3, "levels": 256},  # CIFAR-like colour
    ],
)
def test_samples_have_the_data_spec(config):
    m = tiny(**config)
    spec = m.data_spec
    x = m.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *spec.shape) and x.dtype == torch.long
    spec.validate(x)
    if spec.levels == 2:
        assert set(x.unique().tolist()) == {0, 1}  # Bernoulli draws from intensities near 0.5 at init
    else:
        assert len(x.unique()) > 1


def test_full_size_configs_build():
    for config, shape in [({}, (1, 28, 28)), ({"channels": 3, "height": 32, "width": 32, "levels": 256}, (3, 32, 32))]:
        m = zoo.create("dcgan", **config, ngf=16, ndf=16)
        assert m.sample(2).shape == (2, *shape)
        assert m.discriminate(m(torch.zeros(2, m.nz))).shape == (2,)


def test_same_seed_same_samples_and_batching_does_not_matter():
    m = tiny()
    a = m.sample(7, generator=torch.Generator().manual_seed(3))
    b = m.sample(7, generator=torch.Generator().manual_seed(3))
    c = m.sample(7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    m.sample_batch_size = 2  # chunked generator passes, batch norm from running statistics
    assert torch.equal(m.sample(7, generator=torch.Generator().manual_seed(3)), a)
    assert torch.equal(zoo.sample(m, 7, generator=torch.Generator().manual_seed(3)), a)  # the core dispatches to it


def test_sampling_is_in_eval_mode_and_restores_training():
    m = tiny()
    m.train()
    m.sample(2)
    assert m.training and m.generator.training


def test_temperature():
    m = tiny()
    x0 = m.sample(4, generator=torch.Generator().manual_seed(0), temperature=0)
    assert torch.equal(x0[0], x0[1])  # z = 0 and the most likely level: every image the same
    with pytest.raises(ValueError, match="temperature"):
        m.sample(2, temperature=-1)


def test_completion_is_refused_clearly():
    from zoo_gan.dcgan import CompletionNotSupported

    m = tiny()
    known = torch.zeros(1, 8, 8, dtype=torch.long)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    with pytest.raises(CompletionNotSupported, match="cannot condition on known pixels"):
        m.sample(2, known=known, mask=mask)
    assert issubclass(CompletionNotSupported, ZooError)


def test_one_completion_refusal_for_every_model_that_cannot_complete():
    """The GANs and the VAEs raise the same class, `zoo.CompletionNotSupported`, so one `except` covers them."""
    from zoo_gan.dcgan import CompletionNotSupported as dcgan_refusal
    from zoo_pggan.pggan import CompletionNotSupported as pggan_refusal
    from zoo_vae.latent import CompletionNotSupported as vae_refusal

    assert dcgan_refusal is pggan_refusal is vae_refusal is zoo.CompletionNotSupported
    assert issubclass(zoo.CompletionNotSupported, NotImplementedError)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="height and width"):
        zoo.create("dcgan", height=7, width=7)
    with pytest.raises(ValueError, match="num_classes"):
        zoo.create("dcgan", num_classes=-1)
    m = tiny()
    with pytest.raises(ValueError, match="unconditional"):
        m.sample(2, y=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="condition y only"):
        m.sample(2, colour="red")
    with pytest.raises(ValueError, match="positive int"):
        m.sample(0)


def test_conditional_sampling():
    m = tiny(num_classes=3)
    y = torch.tensor([0, 1, 2, 2])
    x = m.sample(4, y=y, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 8, 8) and x.dtype == torch.long
    assert m.sample(3, y=1).shape == (3, 1, 8, 8)
    # without labels they are drawn from the generator: sampling from the mixture over classes
    a = m.sample(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, m.sample(4, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        m.sample(2, y=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        m.sample(2, y=torch.tensor([0, 1, 2]))
    # the label changes the image: same noise, different classes
    m.eval()  # (in training mode a batch of one label would be centred away by batch norm)
    z = torch.randn(4, m.nz, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(m(z, y=torch.zeros(4, dtype=torch.long)), m(z, y=torch.ones(4, dtype=torch.long)))


@pytest.mark.parametrize("config", [{}, {"channels": 3, "levels": 256}, {"num_classes": 2}])
def test_a_few_training_steps(config):
    m = tiny(**config)
    t = trainer(m, fakes="bernoulli" if m.data_spec.levels == 2 else "intensities")
    x = batch(m.data_spec)
    y = torch.tensor([0, 1] * 4) if config.get("num_classes") else None
    before = {k: v.clone() for k, v in m.state_dict().items()}
    logs = [t.step(x, y) for _ in range(5)]
    for log in logs:
        assert set(log) == {"loss_d", "loss_g", "d_real", "d_fake"}
        assert all(math.isfinite(v) for v in log.values())
        assert 0 <= log["d_real"] <= 1 and 0 <= log["d_fake"] <= 1
    assert logs[-1]["d_real"] > logs[-1]["d_fake"]  # D learns to tell the few real images from fakes
    changed = {k.split(".")[0] for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"generator", "discriminator"}
    s = t.epoch_samples()
    assert s.shape == (6, *m.data_spec.shape) and s.dtype == torch.long
    m.data_spec.validate(s)
    assert torch.equal(s, t.epoch_samples())  # fixed noise, fixed images
    with pytest.warns(DeprecationWarning, match="now epoch_samples"):
        assert torch.equal(s, t.fixed_noise_samples())  # the hook's old name, for one release
    assert m.training  # fixed-noise samples leave the model in training mode


@pytest.mark.parametrize("fakes", ["bernoulli", "intensities"])
def test_what_the_discriminator_sees(fakes):
    """`fakes="bernoulli"`: binary fakes, as binary as the reals, and still a gradient for the generator."""
    m = tiny()
    t = trainer(m, fakes=fakes)
    seen = []
    hook = m.discriminator.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    g_before = {k: v.clone() for k, v in m.generator.state_dict().items()}
    t.step(batch(m.data_spec))
    hook.remove()
    real, fake_d, fake_g = seen  # D step: reals, fakes; G step: the same fakes
    assert set(real.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(fake_d, fake_g)
    binary = set(fake_d.unique().tolist()) <= {0.0, 1.0}
    assert binary == (fakes == "bernoulli")
    assert any(not torch.equal(v, g_before[k]) for k, v in m.generator.state_dict().items() if v.is_floating_point())


def test_bernoulli_fakes_need_binary_data():
    with pytest.raises(ValueError, match="needs binary data"):
        trainer(tiny(levels=256), fakes="bernoulli")
    with pytest.raises(ValueError, match="must be one of"):
        trainer(tiny(), fakes="grey")


def test_step_rejects_bad_batches():
    m = tiny()
    t = trainer(m)
    with pytest.raises(ValueError, match="integer"):
        t.step(torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2"):
        t.step(batch(m.data_spec, n=1))
    with pytest.raises(ValueError, match="recipe"):
        trainer(m, lr=-1)
    with pytest.raises(ValueError, match="has no"):
        trainer(torch.nn.Linear(2, 2))


def test_nan_guard_stops_with_a_clear_message():
    m = tiny()
    t = trainer(m)
    x = batch(m.data_spec)
    t.step(x)
    with torch.no_grad():
        m.discriminator.classify.weight[0, 0] = float("nan")
    before = {k: v.detach().clone() for k, v in m.named_parameters()}
    with pytest.raises(ZooError, match=r"diverged at step 2: loss_d is nan.*lower learning rate"):
        t.step(x)
    assert t.step_count == 1
    for k, v in m.named_parameters():  # neither network was updated by the failed step
        assert torch.equal(v.nan_to_num(), before[k].nan_to_num()), k


def test_exact_resume():
    m = tiny()
    t = trainer(m)
    x = batch(m.data_spec)
    for _ in range(2):
        t.step(x)
    saved_model = {k: v.clone() for k, v in m.state_dict().items()}
    saved_trainer = t.state_dict()
    expected = [t.step(x) for _ in range(2)]

    m2 = tiny()
    m2.load_state_dict(saved_model, strict=True)
    t2 = trainer(m2, seed=123)  # seed and fixed noise come back from the state
    t2.load_state_dict(saved_trainer)
    assert t2.step_count == 2
    assert [t2.step(x) for _ in range(2)] == expected
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert torch.equal(t.epoch_samples(), t2.epoch_samples())
    with pytest.raises(ValueError, match="expected keys"):
        t2.load_state_dict({"step": 0})


def test_recipes_fit_the_training_schema():
    from zoo.training import resolve_recipe
    from zoo_gan.trainer import GANTrainer

    spec = zoo.info("dcgan")
    for name in spec.recipes:
        r = resolve_recipe(spec, name, extra_defaults=GANTrainer.recipe_defaults)
        assert r["lr"] == 2e-4 and r["betas"] == [0.5, 0.999] and r["ema_decay"] == 0.0
        zoo.create("dcgan", **r["config"], ngf=8, ndf=8)  # each recipe's model config builds
    with pytest.raises(ValueError, match="supports optimizer='adam' only"):
        trainer(tiny(), optimizer="sgd")


class ToySquares(Dataset):
    """Binary 8x8 images of a square at one of 3 places (the label): a dataset for zoo.train."""

    name = "toy-squares"
    data_spec = zoo.DataSpec(1, 8, 8, 2)
    splits = ("train", "test")
    num_classes = 3

    def load(self, split):
        y = torch.arange(48) % 3
        x = torch.zeros(48, 1, 8, 8, dtype=torch.uint8)
        for k in range(48):
            x[k, :, y[k] : y[k] + 4, y[k] : y[k] + 4] = 1
        return x, y

    def checksum(self, split):
        return "0" * 64

    def available(self, split):
        return True


@pytest.mark.parametrize("num_classes", [0, 3])
def test_zoo_train_runs_the_gan_trainer_and_resumes_exactly(tmp_path, num_classes):
    from safetensors.torch import load_file

    kw = dict(
        dataset=ToySquares(),
        tiny=True,
        config={"num_classes": num_classes},
        progress=False,
        evaluate=False,
        samples=4,
        overrides={"batch_size": 16, "fixed_noise": 4},
    )
    straight = zoo.train("dcgan", epochs=2, out=tmp_path / "a", **kw)
    assert (tmp_path / "a" / "samples" / "epoch002.png").is_file()  # the fixed-noise grid of every epoch
    zoo.train("dcgan", epochs=1, out=tmp_path / "b", **kw)
    zoo.train("dcgan", epochs=2, out=tmp_path / "b", resume=True, **kw)
    a = load_file(tmp_path / "a" / "release" / "model.safetensors")
    b = load_file(tmp_path / "b" / "release" / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.model.sample(2).shape == (2, 1, 8, 8)


def test_zoo_train_scores_a_gan_with_the_sample_metrics(tmp_path):
    """The release's evaluation: a GAN has no likelihood, so the card gets the sample metrics (n/a here, with why)."""
    import json

    zoo.train(
        "dcgan",
        epochs=1,
        out=tmp_path,
        dataset=ToySquares(),
        tiny=True,
        progress=False,
        samples=0,
        overrides={"batch_size": 16, "fixed_noise": 4},
    )
    metrics = json.loads((tmp_path / "release" / "eval.json").read_text())["metrics"]
    assert list(metrics) == ["fid", "precision", "recall", "parzen"]
    assert "no reference classifier for dataset 'toy-squares'" in metrics["fid"]["note"]
    assert metrics["parzen"]["note"] == "sigma is chosen on a 'valid' split, and dataset 'toy-squares' has none"
    assert "| parzen | n/a (sigma is chosen" in (tmp_path / "release" / "README.md").read_text()


def test_cli_sample(cli_runner, tmp_path):
    out = tmp_path / "g.png"
    result = cli_runner("sample", "dcgan", "--tiny", "-n", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.exists() and "wrote 4 samples" in result.output
    from PIL import Image

    assert Image.open(out).size[0] > 8


def test_cli_sample_refuses_completion(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import build_cli

    img = tmp_path / "digit.png"
    Image.new("L", (8, 8), 255).save(img)
    result = CliRunner().invoke(
        build_cli(), ["sample", "dcgan", "--tiny", "--complete", str(img), "--out", str(tmp_path / "c.png")]
    )
    assert result.exit_code != 0 and "cannot condition on known pixels" in result.output


@pytest.mark.slow
def test_learns_a_constant_image():
    """Sanity of the whole loop: on one repeated image the generator's intensities move onto it."""
    m = tiny(ngf=16, ndf=16)
    t = trainer(m, lr=2e-3)
    target = batch(m.data_spec, n=16)[:1].expand(16, -1, -1, -1)  # (16, 1, 8, 8), one image
    z = torch.randn(64, m.nz, generator=torch.Generator().manual_seed(0))

    def error():  # mean |intensity - target| of the generator, batch norm from running statistics
        m.eval()
        e = (m(z) - target[:1].float()).abs().mean().item()
        m.train()
        return e

    err0 = error()
    for _ in range(200):
        t.step(target)
    assert err0 > 0.45 and error() < 0.15, (err0, error())


def test_zoo_eval_dcgan_runs_every_sample_metric_and_says_why_nll_is_na(cli_runner, mnist_splits):
    """Issue 6's done-when: the shared harness scores the GAN; nll is n/a with the reason."""
    import json

    r = cli_runner(
        "eval",
        "dcgan",
        "--metrics",
        "nll,fid,precision,recall,parzen,speed",
        "--samples",
        "50",
        "--limit",
        "100",
        "--no-progress",
        "--json",
    )
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.output[r.output.index("[") :])
    m = result["metrics"]
    assert m["nll"]["value"] is None and m["nll"]["note"] == "implicit model: no log_prob"
    for name in ("fid", "precision", "recall", "parzen", "speed"):
        assert m[name]["value"] is not None and m[name]["note"] == "", (name, m[name])
    assert m["fid"]["details"]["floor"] > 0 and 0 <= m["precision"]["value"] <= 1
