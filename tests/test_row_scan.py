"""The Row LSTM's fast recurrence (plugins/zoo_pixelrnn/row_scan.py) against plain versions of it.

- `RowScan` (hand-written backward through the rows): `gradcheck` in float64, and equal to
  `row_scan_reference` (the per-row loop under autograd), with and without gradients;
- the layer and the model (channels-first layout, row-by-row scoring) equal to their plain
  reference versions: outputs and every parameter's gradient;
- frozen outputs of the code before row_scan.py (commit 9491e71, tests/fixtures/), for tiny
  seeded models and for the released weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import zoo
from zoo_pixelrnn.row_scan import RowScan, row_scan, row_scan_reference

FIXTURE = Path(__file__).parent / "fixtures" / "pixelrnn_row_9491e71.safetensors"
TOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


def scan_inputs(H, B, W, h, k, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn(4 * h, H, B, W, generator=g, dtype=dtype).requires_grad_()
    kernel = (torch.randn(4 * h, h, k, generator=g, dtype=dtype) * 0.7).requires_grad_()
    return pre, kernel


SIZES = [  # H, B, W, h, k
    pytest.param(3, 2, 4, 2, 3, id="small"),
    pytest.param(4, 1, 5, 3, 5, id="k5"),
    pytest.param(2, 2, 1, 1, 3, id="one-column"),
    pytest.param(1, 3, 3, 2, 3, id="one-row"),
]


# ---------------------------------------------------------------- the Function


@pytest.mark.parametrize("H,B,W,h,k", SIZES)
def test_row_scan_gradcheck(H, B, W, h, k):
    pre, kernel = scan_inputs(H, B, W, h, k)
    assert torch.autograd.gradcheck(RowScan.apply, (pre, kernel))
    # one input at a time (the kernel's gradient is skipped when not needed)
    assert torch.autograd.gradcheck(lambda p: RowScan.apply(p, kernel.detach()), (pre,))
    assert torch.autograd.gradcheck(lambda w: RowScan.apply(pre.detach(), w), (kernel,))


@pytest.mark.parametrize("H,B,W,h,k", SIZES)
def test_row_scan_equals_reference(H, B, W, h, k):
    pre, kernel = scan_inputs(H, B, W, h, k, seed=1)
    fast, plain = row_scan(pre, kernel), row_scan_reference(pre, kernel)
    assert fast.shape == plain.shape == (h, H, B, W)
    torch.testing.assert_close(fast, plain, atol=1e-12, rtol=0)
    grad = torch.randn_like(plain)
    g_fast = torch.autograd.grad(fast, (pre, kernel), grad)
    g_plain = torch.autograd.grad(plain, (pre, kernel), grad)
    for a, b in zip(g_fast, g_plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    with torch.no_grad():  # scoring: nothing saved for backward, same values
        scored = row_scan(pre, kernel)
    assert scored.grad_fn is None
    torch.testing.assert_close(scored, plain.detach(), atol=1e-12, rtol=0)


def test_row_scan_rejects_bad_shapes():
    pre, kernel = scan_inputs(2, 1, 3, 2, 3)
    with pytest.raises(ValueError, match="4h"):
        row_scan(pre[:5], kernel)
    with pytest.raises(ValueError, match="odd"):
        row_scan(pre, torch.zeros(8, 2, 4, dtype=pre.dtype))


# ---------------------------------------------------------------- layer and model against the plain versions


def tiny_row_lstm(channels=1, levels=2, **overrides):
    torch.manual_seed(0)
    m = zoo.create(
        "pixelrnn-row", channels=channels, levels=levels, **{**zoo.info("pixelrnn-row").test_config, **overrides}
    )
    with torch.no_grad():  # larger than the default init, so that every layer and the recurrence matter
        for p in m.parameters():
            p.mul_(2.0)
    return m


MODELS = [
    pytest.param({}, id="binary"),
    pytest.param({"channels": 3, "levels": 256}, id="colour"),
    pytest.param({"kernel": 5, "hidden": 8}, id="k5"),
]


def max_diff(a, b):
    return float((a - b).detach().abs().max())


@pytest.mark.parametrize("config", MODELS)
def test_model_equals_plain_reference(config):
    m = tiny_row_lstm(**config)
    x = torch.randint(0, m.data_spec.levels, (3, *m.data_spec.shape), generator=torch.Generator().manual_seed(2))
    fast, plain = m.logits(x), m.logits_reference(x)
    assert fast.shape == plain.shape == (3, *m.data_spec.shape, m.data_spec.levels)
    assert max_diff(fast, plain) <= TOL
    params = list(m.parameters())
    g_fast = torch.autograd.grad(-torch.log_softmax(fast, -1).mean() + fast.square().mean(), params)
    g_plain = torch.autograd.grad(-torch.log_softmax(plain, -1).mean() + plain.square().mean(), params)
    for (name, _), a, b in zip(m.named_parameters(), g_fast, g_plain, strict=True):
        assert max_diff(a, b) <= TOL, name
    recurrent = [g for (name, _), g in zip(m.named_parameters(), g_plain, strict=True) if "state_to_state" in name]
    assert all(float(g.abs().max()) > 1e-3 for g in recurrent)  # the comparison is not between zeros
    with torch.no_grad():  # scoring goes row by row through all layers
        assert max_diff(m.logits(x), plain) <= TOL
        torch.testing.assert_close(m.log_prob(x), categorical(plain, x), atol=1e-3, rtol=0)


def categorical(logits, x):
    return torch.log_softmax(logits, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)


@pytest.mark.parametrize("config", MODELS)
def test_layer_equals_plain_reference(config):
    m = tiny_row_lstm(**config)
    layer = m.layers[0]
    x = torch.randn(2, 2 * layer.hidden, 5, 7, generator=torch.Generator().manual_seed(3), requires_grad=True)
    fast, plain = layer(x), layer.forward_reference(x)
    assert max_diff(fast, plain) <= TOL
    grad = torch.randn_like(plain)
    inputs = [x, *layer.parameters()]
    for a, b in zip(torch.autograd.grad(fast, inputs, grad), torch.autograd.grad(plain, inputs, grad), strict=True):
        assert max_diff(a, b) <= TOL


def test_parameter_names_and_shapes_are_unchanged():
    """The released weights' layout: the model still loads the state dict of the old code strictly."""
    with safe_open(FIXTURE, "pt") as f:
        old = {
            k.removeprefix("binary.param."): tuple(f.get_slice(k).get_shape())
            for k in f.keys()
            if k.startswith("binary.param.")
        }
    new = {k: tuple(v.shape) for k, v in tiny_row_lstm().state_dict().items()}
    assert new == old


# ---------------------------------------------------------------- frozen outputs of commit 9491e71


def fixture_tensors():
    with safe_open(FIXTURE, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.mark.parametrize("case", ["binary", "colour"])
def test_reproduces_logits_of_the_old_code(case):
    tensors, meta = fixture_tensors()
    m = zoo.create("pixelrnn-row", **json.loads(meta[f"{case}.config"]))
    prefix = f"{case}.param."
    m.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    x, expected = tensors[f"{case}.x"], tensors[f"{case}.logits"]
    assert max_diff(m.logits(x), expected) <= TOL
    with torch.no_grad():
        assert max_diff(m.logits(x), expected) <= TOL


def test_released_weights_reproduce_the_old_code():
    tensors, meta = fixture_tensors()
    m = zoo.load("pixelrnn-row")
    assert m.zoo_weights.sha256 == meta["released.weights"], "the released weights changed: regenerate the fixture"
    x = tensors["released.x"].long()
    with torch.no_grad():
        scored = m.logits(x)
        plain = m.logits_reference(x)
    assert bool((scored[..., 0] == 0).all())
    assert max_diff(scored[..., 1], tensors["released.logit1"]) <= TOL
    assert max_diff(plain[..., 1], tensors["released.logit1"]) <= TOL
    trained = m.logits(x[:4])  # the training path, with autograd
    assert max_diff(trained[..., 1].detach(), tensors["released.logit1"][:4]) <= TOL
