"""The contract every registered model is held to, as plain check functions.

Each check takes a registered architecture name, builds what it needs (the tiny
`test_config` unless it says otherwise) and raises `AssertionError` saying what broke;
it returns None when the model passes, or a string saying why the check does not apply
to this model (e.g. "not autoregressive"). `CHECKS` lists them with the capabilities
they need; `zoo.testing.contract_tests` turns them into pytest tests, and the zoo's own
tests/test_models.py runs them on every registered model.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..checks import check
from ..factory import create, import_builder, load
from ..protocols import BoundedLikelihood, Likelihood, Model, Sampler
from ..registry import ModelSpec, get_spec
from ..release import save_pretrained
from ..sampling import has_fast_sampler, sample
from ..specs import check_spec

__all__ = ["Check", "CHECKS", "tiny", "batch"]


def tiny(name: str, **overrides: Any) -> Any:
    """The model of `name` built from its `test_config` (and `overrides`), seeded."""
    torch.manual_seed(0)
    return create(name, **{**get_spec(name).test_config, **overrides})


def batch(model: Any, n: int = 3, seed: int = 0) -> torch.Tensor:
    """`n` random images of the model's data spec: `(n, C, H, W)` long."""
    spec = model.data_spec
    return torch.randint(0, spec.levels, (n, *spec.shape), generator=torch.Generator().manual_seed(seed))


def _half_known(model: Any, n: int = 2, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Images to complete and a mask of their known pixels: the top half of the rows."""
    spec = model.data_spec
    mask = torch.zeros(spec.height, spec.width, dtype=torch.bool)
    mask[: spec.height // 2] = True
    return batch(model, n, seed), mask


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------
def check_spec_agrees(name: str) -> None:
    """The spec is complete and agrees with its code: builder importable, config keys taken by the
    constructor, data_spec equal to the built model's (`zoo.specs.check_spec`)."""
    spec = get_spec(name)
    for f in ("summary", "paper", "family", "plugin"):
        assert getattr(spec, f), f"{name}: the spec's {f} is empty"
    assert spec.capabilities & {"sampler", "likelihood", "likelihood_bound"}, (
        f"{name}: claims none of 'sampler', 'likelihood', 'likelihood_bound'"
    )
    assert not {"likelihood", "likelihood_bound"} <= spec.capabilities, f"{name}: exact or bounded, not both"
    problems = check_spec(spec)
    assert not problems, f"{name}: " + "; ".join(problems)


def check_strict_config(name: str) -> None:
    """The constructor's keywords are the config, their defaults the registered values, and an
    option the constructor does not take is refused, never ignored."""
    spec = get_spec(name)
    params = {
        k: p
        for k, p in inspect.signature(import_builder(spec.builder)).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    assert sorted(params) == sorted(spec.config), (
        f"{name}: the config {sorted(spec.config)} must name exactly the constructor's keywords {sorted(params)}"
    )
    defaults = {k: p.default for k, p in params.items()}
    assert defaults == dict(spec.config), f"{name}: constructor defaults {defaults} differ from the registered config"
    model = create(name)
    assert model.zoo_config == dict(spec.config)
    try:
        create(name, **{**spec.test_config, "no_such_option": 1})
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"{name}: zoo.create(..., no_such_option=1) was accepted; unknown options must raise")


def check_capabilities(name: str) -> None:
    """The object is what the spec's capabilities claim: Model, Likelihood or BoundedLikelihood, Sampler,
    fast sampler."""
    caps, model = get_spec(name).capabilities, tiny(name)
    assert isinstance(model, Model), f"{name}: not a zoo.Model (needs data_spec)"
    assert isinstance(model, Likelihood) == ("likelihood" in caps), f"{name}: 'likelihood' claim vs log_prob"
    assert isinstance(model, BoundedLikelihood) == ("likelihood_bound" in caps), (
        f"{name}: 'likelihood_bound' claim vs log_prob_bound"
    )
    assert isinstance(model, Sampler) == ("sampler" in caps), f"{name}: 'sampler' claim vs sample"
    assert has_fast_sampler(model) == ("fast_sampler" in caps), f"{name}: 'fast_sampler' claim vs fast_sampler"


def check_log_prob(name: str) -> None:
    """log_prob: shape (B,), finite, <= 0, gradients reach the parameters; bad input raises ValueError."""
    model = tiny(name)
    x = batch(model)
    lp = model.log_prob(x)
    assert lp.shape == (3,), f"{name}: log_prob of 3 images has shape {tuple(lp.shape)}"
    assert torch.isfinite(lp).all() and (lp <= 0).all(), f"{name}: log_prob not finite and <= 0: {lp}"
    model.loss(x).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), (
        f"{name}: missing or non-finite gradients"
    )
    assert any(g.abs().sum() > 0 for g in grads), f"{name}: every gradient is zero"
    for bad, what in (
        (x.float(), "a float image"),
        (x + model.data_spec.levels, "levels out of range"),
        (x[:, :, 1:], "a wrong shape"),
    ):
        try:
            model.log_prob(bad)
        except ValueError:
            continue
        raise AssertionError(f"{name}: log_prob accepted {what}; it must raise ValueError")


def check_bound(name: str) -> None:
    """log_prob_bound(x, k): shape (B,), finite, <= 0, the same for the same generator; the loss's gradients
    reach the parameters; bad input raises ValueError as log_prob's does."""
    model = tiny(name)
    x = batch(model)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    lb = model.log_prob_bound(x, 2, generator=g())
    assert lb.shape == (3,), f"{name}: log_prob_bound of 3 images has shape {tuple(lb.shape)}"
    assert torch.isfinite(lb).all() and (lb <= 0).all(), f"{name}: log_prob_bound not finite and <= 0: {lb}"
    assert torch.equal(lb, model.log_prob_bound(x, 2, generator=g())), f"{name}: the same generator, another bound"
    model.loss(x).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), (
        f"{name}: missing or non-finite gradients"
    )
    for bad, what in ((x.float(), "a float image"), (x + model.data_spec.levels, "levels out of range")):
        try:
            model.log_prob_bound(bad, 1)
        except ValueError:
            continue
        raise AssertionError(f"{name}: log_prob_bound accepted {what}; it must raise ValueError")


def check_causality(name: str) -> str | None:
    """`zoo check`: no sub-pixel sees itself or a later one; log_prob is the sum of the logits' terms."""
    model = tiny(name)
    if not callable(getattr(model, "logits", None)):
        return "not autoregressive (no logits)"
    report = check(model, name=name)
    assert report.passed, str(report)
    return None


def check_sampling(name: str) -> None:
    """sample(n): (n, C, H, W) long levels in range; the same generator gives the same images."""
    model = tiny(name)
    spec = model.data_spec
    a = model.sample(2, generator=torch.Generator().manual_seed(1))
    b = model.sample(2, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, *spec.shape) and a.dtype == torch.long, f"{name}: sample gave {a.dtype} {tuple(a.shape)}"
    assert 0 <= int(a.min()) and int(a.max()) < spec.levels, f"{name}: levels outside [0, {spec.levels})"
    assert torch.equal(a, b), f"{name}: the same generator must give the same images"


def check_completion(name: str) -> str | None:
    """Completing images keeps every known pixel as it was."""
    model = tiny(name)
    if not callable(getattr(model, "logits", None)):
        return "not autoregressive (completion is drawn by the raster sampler)"
    known, mask = _half_known(model)
    out = model.sample(2, generator=torch.Generator().manual_seed(3), known=known, mask=mask)
    keep = mask.expand_as(known)
    assert torch.equal(out[keep], known[keep]), f"{name}: completion changed known pixels"
    return None


def check_fast_equals_naive(name: str) -> None:
    """The fast sampler draws exactly the naive sampler's images, with and without completion."""
    model = tiny(name)
    known, mask = _half_known(model)
    cases: tuple[dict[str, Any], ...] = ({}, {"known": known, "mask": mask})
    for kw in cases:
        fast = sample(model, 2, method="fast", generator=torch.Generator().manual_seed(2), **kw)
        naive = sample(model, 2, method="naive", generator=torch.Generator().manual_seed(2), **kw)
        what = "completing images" if kw else "sampling"
        assert torch.equal(fast, naive), f"{name}: fast and naive samplers differ when {what}"


def check_save_load(name: str) -> None:
    """save_pretrained, then zoo.load("local-dir:...") gives the same tensors, log_prob and samples."""
    model = tiny(name)
    with torch.no_grad():  # not the initial values: a load that silently keeps its own would pass
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(7)).to(p))
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(model, tmp)
        loaded = load(f"local-dir:{folder}")
    a, b = model.state_dict(), loaded.state_dict()
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a), f"{name}: loaded tensors differ"
    assert loaded.zoo_config == model.zoo_config and loaded.data_spec == model.data_spec
    if isinstance(model, Likelihood):
        x = batch(model)
        with torch.no_grad():
            assert torch.allclose(model.log_prob(x), loaded.log_prob(x)), f"{name}: log_prob differs after loading"
    if isinstance(model, BoundedLikelihood):
        x, g = batch(model), lambda: torch.Generator().manual_seed(4)  # noqa: E731
        with torch.no_grad():
            assert torch.allclose(
                model.log_prob_bound(x, 2, generator=g()), loaded.log_prob_bound(x, 2, generator=g())
            ), f"{name}: log_prob_bound differs after loading"
    if isinstance(model, Sampler):
        g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
        assert torch.equal(model.sample(2, generator=g()), loaded.sample(2, generator=g())), f"{name}: samples differ"


def check_recipes(name: str) -> None:
    """Every training recipe resolves against the training schema, and its config builds."""
    from ..training import resolve_recipe
    from ..training.trainer import trainer_class

    spec = get_spec(name)
    extra = dict(getattr(trainer_class(spec), "recipe_defaults", {}) or {})
    for recipe in spec.recipes or {"default": {}}:
        resolved = resolve_recipe(spec, recipe, extra_defaults=extra)
        assert resolved["epochs"] >= 1 and resolved["batch_size"] >= 1, f"{name}: recipe {recipe!r}"
        create(name, **{**resolved.get("config", {}), **spec.test_config})


def _independent_pixels_nll(x: torch.Tensor, levels: int, alpha: float = 0.01) -> float:
    """Mean NLL (nats) of `x` under one categorical per sub-pixel fitted to `x` itself (add-alpha)."""
    counts = torch.nn.functional.one_hot(x, levels).sum(0).double() + alpha  # (C, H, W, levels)
    logp = torch.log(counts / counts.sum(-1, keepdim=True))
    return -float(logp.unsqueeze(0).expand(len(x), *logp.shape).gather(-1, x.unsqueeze(-1)).sum() / len(x))


def check_overfits_digits(name: str, steps: int = 100, fraction: float = 0.75) -> None:
    """Eight real 28x28 binarized-MNIST test digits: after `steps` Adam steps the tiny model's NLL of
    them is below `fraction` of the NLL of independent pixels fitted to the same eight (which is
    about 165 nats; an untrained model starts near 543). Only a model that learns from the pixels
    it conditions on gets there: a single masked 5x5 window reaches about 87, deep stacks less."""
    from ..data import load_split

    x = load_split("binarized-mnist", "test")[0][:8].long()  # the test split ships with the zoo
    model = tiny(name, channels=1, height=28, width=28, levels=2)
    baseline = _independent_pixels_nll(x, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = float(model.eval().loss(x))
    assert nll < fraction * baseline, f"{name}: {nll:.1f} nats after {steps} steps; independent pixels {baseline:.1f}"


# --------------------------------------------------------------------------------------------
# Which checks apply to which spec
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    name: str  # the test id's suffix, e.g. "causality"
    run: Callable[[str], str | None]
    needs: frozenset[str] = frozenset()  # capabilities the spec must claim
    slow: bool = False  # seconds to a minute: marked `slow`

    def applies(self, spec: ModelSpec) -> bool:
        if self.name == "overfits-digits" and spec.family == "baseline":
            return False  # a baseline is what the others must beat
        return self.needs <= spec.capabilities


CHECKS: tuple[Check, ...] = (
    Check("spec", check_spec_agrees),
    Check("strict-config", check_strict_config),
    Check("capabilities", check_capabilities),
    Check("log-prob", check_log_prob, frozenset({"likelihood"})),
    Check("bound", check_bound, frozenset({"likelihood_bound"})),
    Check("causality", check_causality, frozenset({"likelihood"})),
    Check("sampling", check_sampling, frozenset({"sampler"})),
    Check("completion", check_completion, frozenset({"sampler"})),
    Check("fast-equals-naive", check_fast_equals_naive, frozenset({"fast_sampler"})),
    Check("save-load", check_save_load),
    Check("recipes", check_recipes),
    Check("overfits-digits", check_overfits_digits, frozenset({"likelihood"}), slow=True),
)
