"""Every registered model gets the same checks, driven by the registry.

A new plugin's models are picked up here with no new test code: each is built
from its `test_config` and must honour the contract its capabilities claim.
"""

import inspect

import pytest
import torch

import zoo
from zoo.factory import import_builder
from zoo.sampling import has_fast_sampler

MODELS = zoo.list_models()


def tiny(name):
    return zoo.create(name, **zoo.info(name).test_config)


def batch(model, n=3, seed=0):
    spec = model.data_spec
    return torch.randint(0, spec.levels, (n, *spec.shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
def test_spec_is_complete_and_default_config_builds(name):
    spec = zoo.info(name)
    assert spec.summary and spec.paper and spec.family and spec.plugin
    assert spec.capabilities & {"sampler", "likelihood", "likelihood_bound"}
    assert not {"likelihood", "likelihood_bound"} <= spec.capabilities, "exact or bounded, not both"
    model = zoo.create(name)  # the default (paper) config
    assert model.data_spec == spec.data_spec
    assert model.zoo_config == dict(spec.config)


@pytest.mark.parametrize("name", MODELS)
def test_constructor_defaults_are_the_registered_config(name):
    """The constructor's keywords are the config, and their defaults are the registered values:
    `Model()` builds the registered model, as `zoo.create(name)` does."""
    spec = zoo.info(name)
    params = inspect.signature(import_builder(spec.builder)).parameters
    assert sorted(params) == sorted(spec.config), f"{name}: config must name the constructor's keywords"
    defaults = {k: p.default for k, p in params.items()}
    assert defaults == dict(spec.config), f"{name}: constructor defaults differ from the registered config"


@pytest.mark.parametrize("name", MODELS)
def test_capabilities_match_the_object(name):
    spec, model = zoo.info(name), tiny(name)
    assert isinstance(model, zoo.Model)
    assert isinstance(model, zoo.Likelihood) == ("likelihood" in spec.capabilities)
    assert isinstance(model, zoo.BoundedLikelihood) == ("likelihood_bound" in spec.capabilities)
    assert isinstance(model, zoo.Sampler) == ("sampler" in spec.capabilities)
    assert has_fast_sampler(model) == ("fast_sampler" in spec.capabilities)


@pytest.mark.parametrize("name", [n for n in MODELS if "likelihood" in zoo.info(n).capabilities])
def test_log_prob_and_backward(name):
    model = tiny(name)
    x = batch(model)
    lp = model.log_prob(x)
    assert lp.shape == (3,) and torch.isfinite(lp).all() and (lp <= 0).all()
    model.loss(x).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match="expected an integer tensor"):
        model.log_prob(x.float())
    with pytest.raises(ValueError, match="got values"):
        model.log_prob(x + model.data_spec.levels)
    with pytest.raises(ValueError, match="got shape"):
        model.log_prob(x[:, :, 1:])


@pytest.mark.parametrize("name", [n for n in MODELS if "likelihood_bound" in zoo.info(n).capabilities])
def test_bound_and_backward(name):
    """A bounded model: a seeded lower bound (below 0 for discrete images) that rises with k on average, a loss
    whose gradients reach every parameter, and the same input checks as `log_prob`."""
    model = tiny(name)
    x = batch(model)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    lp = model.log_prob_bound(x, 2, generator=g())
    assert lp.shape == (3,) and torch.isfinite(lp).all() and (lp <= 0).all()
    assert torch.equal(lp, model.log_prob_bound(x, 2, generator=g()))
    model.loss(x).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match="expected an integer tensor"):
        model.log_prob_bound(x.float(), 1)
    with pytest.raises(ValueError, match="got values"):
        model.log_prob_bound(x + model.data_spec.levels, 1)


@pytest.mark.parametrize("name", [n for n in MODELS if "likelihood" in zoo.info(n).capabilities])
def test_autoregressive_models_pass_zoo_check(name):
    model = tiny(name)
    if not callable(getattr(model, "logits", None)):
        pytest.skip(f"{name} has a likelihood but is not autoregressive")
    report = zoo.check(model, name=name)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", [n for n in MODELS if "sampler" in zoo.info(n).capabilities])
def test_sampling_contract(name):
    model = tiny(name)
    spec = model.data_spec
    a = model.sample(2, generator=torch.Generator().manual_seed(1))
    b = model.sample(2, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, *spec.shape) and a.dtype == torch.long
    assert 0 <= int(a.min()) and int(a.max()) < spec.levels
    assert torch.equal(a, b), "the same generator must give the same images"


@pytest.mark.parametrize("name", [n for n in MODELS if "fast_sampler" in zoo.info(n).capabilities])
def test_fast_sampler_equals_naive(name):
    model = tiny(name)
    spec = model.data_spec
    known = batch(model, 2, seed=5)
    mask = torch.zeros(spec.height, spec.width, dtype=torch.bool)
    mask[: spec.height // 2] = True
    for kw in ({}, {"known": known, "mask": mask}):
        fast = zoo.sample(model, 2, method="fast", generator=torch.Generator().manual_seed(2), **kw)
        naive = zoo.sample(model, 2, method="naive", generator=torch.Generator().manual_seed(2), **kw)
        assert torch.equal(fast, naive)


@pytest.mark.parametrize("name", MODELS)
def test_every_recipe_resolves_against_the_training_schema(name):
    from zoo.training import resolve_recipe
    from zoo.training.trainer import trainer_class as _trainer_class

    spec = zoo.info(name)
    extra = dict(getattr(_trainer_class(spec), "recipe_defaults", {}) or {})
    for recipe in spec.recipes or {"default": {}}:
        resolved = resolve_recipe(spec, recipe, extra_defaults=extra)
        assert resolved["epochs"] >= 1 and resolved["batch_size"] >= 1
        zoo.create(name, **{**resolved.get("config", {}), **spec.test_config})  # the recipe's config builds


def _mnist_handful(n=8):
    import zoo.data

    x, _ = zoo.data.load_split("binarized-mnist", "test")  # ships with the package
    return x[:n].long()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODELS if "likelihood" in zoo.info(n).capabilities
                                  and zoo.info(n).family != "baseline"])
def test_tiny_model_overfits_a_handful_of_binarized_mnist_digits(name):
    """Eight real 28x28 test digits: a tiny model's NLL falls far below the independent-pixels fit of them."""
    from zoo_independent.model import IndependentPixels

    torch.manual_seed(0)
    x = _mnist_handful()
    model = zoo.create(name, **{**zoo.info(name).test_config, "height": 28, "width": 28, "channels": 1, "levels": 2})
    baseline = -IndependentPixels(1, 28, 28, 2).fit(x, alpha=0.01).log_prob(x).mean().item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    nll = model.eval().loss(x).item()
    print(f"{name}: {nll:.1f} nats vs independent pixels {baseline:.1f}")
    assert nll < 0.5 * baseline, (nll, baseline)
