"""The fast PixelCNN / gated PixelCNN code computes what the plain code did.

- logits of tiny seeded models and of the released weights, against a frozen fixture written
  by commit 9491e71's code (tests/fixtures/make_pixelcnn_9491e71.py);
- a cropped `MaskedConv2d` (kernel rows below the centre skipped) against the plain masked
  convolution: the full kernel times its mask, padded, `F.conv2d`; values and gradients;
- logits and parameter gradients of both models against plain reference implementations of
  the papers' equations written here (full masked kernels, NCHW, `F.pad`);
- chunked scoring (no autograd) against one pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

import zoo
from zoo.autoregressive import categorical_log_prob
from zoo.nn import MaskedConv2d
from zoo_pixelcnn import common

FIXTURE = Path(__file__).parent / "fixtures" / "pixelcnn_9491e71.safetensors"
CASES = ["pixelcnn.binary", "pixelcnn.colour", "gated.binary", "gated.colour", "gated.conditional"]
TOL = 1e-4
COLOUR = {"channels": 3, "levels": 256}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
    return load_file(str(FIXTURE)), meta


# ---------------------------------------------------------------- against commit 9491e71


@pytest.mark.parametrize("case", CASES)
def test_logits_match_commit_9491e71(fixture, case):
    tensors, meta = fixture
    model = zoo.create(meta[f"{case}.name"], **json.loads(meta[f"{case}.config"]))
    prefix = f"{case}.param."
    model.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    cond = {"y": tensors[f"{case}.y"]} if f"{case}.y" in tensors else {}
    x = tensors[f"{case}.x"].long()
    expected = tensors[f"{case}.logits"]
    with torch.no_grad():
        got = model.logits(x, **cond)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOL
    got = model.logits(x, **cond)  # with autograd (the training path) too
    assert (got.detach() - expected).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn"])
def test_released_weights_match_commit_9491e71(fixture, name):
    tensors, meta = fixture
    model = zoo.load(name)
    assert model.zoo_weights.sha256 == meta[f"released.{name}.weights"]
    with torch.no_grad():
        got = model.logits(tensors["released.x"].long())
    assert (got - tensors[f"released.{name}.logits"]).abs().max().item() <= TOL


# ---------------------------------------------------------------- the cropped masked convolution


def plain_masked_conv(conv: MaskedConv2d, x: torch.Tensor) -> torch.Tensor:
    """The definition: the full kernel times its mask, the input zero-padded around the centre."""
    return F.conv2d(F.pad(x, conv.pads), conv.weight * conv.get_buffer("mask"), conv.bias)


CONVS = [  # (in, out, kernel, mask, colours, keyword arguments)
    (1, 8, 7, "A", 1, {}),
    (4, 6, 3, "B", 1, {}),
    (4, 6, 5, "A", 1, {}),
    (3, 12, 7, "A", 3, {}),
    (6, 12, 3, "B", 3, {}),
    (6, 6, 1, "B", 3, {}),
    (12, 6, 1, "A", 3, {"in_blocks": 2}),
    (3, 12, (1, 4), "A", 3, {"centre": (0, 3), "out_blocks": 2}),
    (6, 12, (1, 3), "B", 3, {"centre": (0, 2), "out_blocks": 2}),
    (4, 8, (3, 5), "B", 2, {"centre": (2, 1)}),
    (4, 8, (1, 3), "B", 2, {"centre": (0, 0)}),
]


@pytest.mark.parametrize("cfg", CONVS, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}{c[3]}-c{c[4]}-{c[5]}")
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_cropped_masked_conv_equals_plain(cfg, memory_format):
    cin, cout, k, mask_type, colours, kw = cfg
    torch.manual_seed(0)
    conv = MaskedConv2d(cin, cout, k, mask_type, colours, **kw).double()
    kh = conv.kernel_size[0]
    assert conv.rows == conv.centre[0] + 1 <= kh
    assert conv.causal_weight().shape == (cout, cin, conv.rows, conv.kernel_size[1])
    assert conv.weight.shape == (cout, cin, *conv.kernel_size)  # the parameter keeps its full shape
    x = torch.randn(2, cin, 6, 7, dtype=torch.float64).contiguous(memory_format=memory_format)
    expected = plain_masked_conv(conv, x)
    for forward in (conv.forward, conv.forward_view):
        xg = x.clone().requires_grad_()
        got = forward(xg)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        # gradients: w.r.t. the input, and w.r.t. the full weight (zero where masked, rows below the centre too)
        grad_out = torch.randn_like(expected)
        gx, gw, gb = torch.autograd.grad(got, (xg, conv.weight, conv.bias), grad_out)
        xr = x.clone().requires_grad_()
        rx, rw, rb = torch.autograd.grad(plain_masked_conv(conv, xr), (xr, conv.weight, conv.bias), grad_out)
        for a, b in ((gx, rx), (gw, rw), (gb, rb)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert (gw[conv.mask == 0] == 0).all()


def test_cropped_masked_conv_float32_and_state_dict():
    torch.manual_seed(1)
    conv = MaskedConv2d(3, 12, 7, "A", 3)
    x = torch.randn(3, 3, 9, 8)
    assert (conv(x) - plain_masked_conv(conv, x)).abs().max().item() <= 1e-5
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert conv.mask_is_ones is False and MaskedConv2d(4, 4, 1, "B").mask_is_ones is True


# ---------------------------------------------------------------- against the plain equations


def _scaled(x: torch.Tensor, levels: int, dtype: torch.dtype) -> torch.Tensor:
    return x.to(dtype) * (2.0 / (levels - 1)) - 1.0


def _logits_layout(out: torch.Tensor, channels: int, levels: int) -> torch.Tensor:
    B, _, H, W = out.shape
    return out.reshape(B, channels, levels, H, W).permute(0, 1, 3, 4, 2)


def plain_pixelcnn_logits(m, x: torch.Tensor) -> torch.Tensor:
    """PixelRNN paper, Table 1 and Figure 5, with full masked kernels."""
    spec = m.data_spec
    h = plain_masked_conv(m.conv_in, _scaled(x, spec.levels, m.out2.weight.dtype))
    for b in m.blocks:
        y = plain_masked_conv(b.conv_in, F.relu(h))
        y = plain_masked_conv(b.conv, F.relu(y))
        h = h + plain_masked_conv(b.conv_out, F.relu(y))
    out = plain_masked_conv(m.out2, F.relu(plain_masked_conv(m.out1, F.relu(h))))
    return _logits_layout(out, spec.channels, spec.levels)


def plain_gated_logits(m, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Conditional PixelCNN paper, section 2 and Figure 2, one layer at a time."""
    spec = m.data_spec

    def gate(t):
        f, g = t.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    v = h = _scaled(x, spec.levels, m.out2.weight.dtype)
    skip: torch.Tensor | int = 0
    for layer in m.layers:
        p = layer.kernel // 2
        v_pre = F.conv2d(F.pad(v, (p, p, p, 0)), layer.v_conv.weight, layer.v_conv.bias)  # rows i-p .. i
        if y is not None:
            v_pre = v_pre + layer.v_embed(y)[:, :, None, None]
        shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # row i gets row i-1
        h_pre = plain_masked_conv(layer.h_conv, h) + layer.v_to_h(shifted)
        if y is not None:
            h_pre = h_pre + layer.h_embed(y)[:, :, None, None]
        g = gate(h_pre)
        skip = skip + plain_masked_conv(layer.skip, g)
        if layer.h_out is None:
            break
        h = plain_masked_conv(layer.h_out, g) + (h if layer.residual else 0)
        v = gate(v_pre)
    assert isinstance(skip, torch.Tensor)  # the model has at least one layer
    out = plain_masked_conv(m.out2, F.relu(plain_masked_conv(m.out1, F.relu(skip))))
    return _logits_layout(out, spec.channels, spec.levels)


MODELS = [
    ("pixelcnn", {}),
    ("pixelcnn", COLOUR),
    ("pixelcnn", {"first_kernel": 5, "residual_blocks": 3}),
    ("gated-pixelcnn", {}),
    ("gated-pixelcnn", COLOUR),
    ("gated-pixelcnn", {"num_classes": 4}),
    ("gated-pixelcnn", {**COLOUR, "levels": 4, "num_classes": 3, "first_kernel": 5, "kernel": 5}),
]


@pytest.mark.parametrize("name,overrides", MODELS, ids=lambda v: v if isinstance(v, str) else json.dumps(v))
def test_logits_and_gradients_equal_plain_equations(name, overrides):
    torch.manual_seed(0)
    model = zoo.create(name, **{**zoo.info(name).test_config, **overrides})
    spec = model.data_spec
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, spec.levels, (3, *spec.shape), generator=g)
    cond = {}
    if overrides.get("num_classes"):
        cond["y"] = torch.randint(0, overrides["num_classes"], (3,), generator=g)
    plain = plain_pixelcnn_logits if name == "pixelcnn" else plain_gated_logits

    got = model.logits(x, **cond)  # float32, with autograd: the training path
    expected = plain(model, x, *cond.values())
    assert (got - expected).abs().max().item() <= TOL

    # Gradients in float64, where rounding cannot hide a wrong term: every parameter's, exactly.
    model.double()
    params = list(model.parameters())
    got = model.logits(x, **cond)
    assert got.dtype == torch.float64
    grads = torch.autograd.grad(-categorical_log_prob(got, x).mean(), params, allow_unused=True)
    expected = plain(model, x, *cond.values())
    ref = torch.autograd.grad(-categorical_log_prob(expected, x).mean(), params, allow_unused=True)
    assert (got - expected).abs().max().item() <= 1e-10
    for (pname, _), a, b in zip(model.named_parameters(), grads, ref, strict=True):
        if b is None:  # no parameter here is unused by the plain equations
            pytest.fail(f"{pname} has no gradient in the plain equations")
        assert a is not None, pname
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=pname)


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn"])
def test_chunked_scoring_equals_one_pass(name, monkeypatch):
    torch.manual_seed(0)
    model = (
        zoo.create(name, **zoo.info(name).test_config, num_classes=3)
        if name == "gated-pixelcnn"
        else zoo.create(name, **zoo.info(name).test_config)
    )
    spec = model.data_spec
    x = torch.randint(0, spec.levels, (10, *spec.shape), generator=torch.Generator().manual_seed(0))
    cond = {"y": torch.arange(10) % 3} if name == "gated-pixelcnn" else {}
    with torch.no_grad():
        whole = model.logits(x, **cond)
        monkeypatch.setattr(common, "INFERENCE_CHUNK_BYTES", 1)  # one image per chunk
        assert common.inference_chunks(x, 8, torch.float32) == 10
        chunked = model.logits(x, **cond)
        lp = model.log_prob(x, **cond)
    # oneDNN may pick another kernel for a batch of 1 than of 10: equal up to float rounding, not bit for bit
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    assert torch.allclose(lp, categorical_log_prob(whole, x))
    assert common.inference_chunks(x, 8, torch.float32) == 1  # with autograd: never split (training)


# ---------------------------------------------------------------- reduced precision


@pytest.mark.parametrize("colour", [False, True], ids=["binary", "colour"])
@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn"])
def test_bfloat16_autocast_trains_and_scores(name, colour):
    """The hand-written autograd functions follow autocast: bfloat16 compute, float32 weight gradients."""
    torch.manual_seed(0)
    model = zoo.create(name, **{**zoo.info(name).test_config, **(COLOUR if colour else {})})
    spec = model.data_spec
    x = torch.randint(0, spec.levels, (3, *spec.shape), generator=torch.Generator().manual_seed(0))
    ref = model.logits(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(x)
        with torch.no_grad():
            scored = model.logits(x)
    assert scored.dtype == torch.bfloat16
    assert (scored.float() - ref).abs().max().item() <= 0.05 * ref.abs().max().item()  # bfloat16 rounding
    loss.backward()
    ref_loss = model.loss(x).item()
    assert abs(loss.item() - ref_loss) <= 0.01 * abs(ref_loss)
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), pname
    for conv in model.modules():  # masked weights get no gradient, the cropped rows below the centre included
        if isinstance(conv, MaskedConv2d):
            assert (conv.weight.grad[conv.mask == 0] == 0).all()
