"""Tests of the zoo_pixelrnn plugin: Row LSTM and Diagonal BiLSTM (van den Oord et al. 2016a)."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import pytest
import torch

import zoo
from zoo.sampling import draw_uniforms, prepare_completion, sample_fast, sample_naive

NAMES = ["pixelrnn-row", "pixelrnn-diag"]
DATA = [pytest.param(1, 2, id="binary"), pytest.param(3, 256, id="colour")]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


def tiny(name: str, channels: int = 1, levels: int = 2, **overrides):
    torch.manual_seed(0)
    return zoo.create(name, channels=channels, levels=levels, **{**zoo.info(name).test_config, **overrides})


def wake(model, gain: float = 2.0, forget: float = 2.0, seed: int = 1):
    """Re-initialise so that influence survives long chains of small random weights.

    Under PyTorch's default init an influence is multiplied by a small weight at each
    diagonal step of the recurrence and sinks below float32 noise after a few rows, so a
    perturbation test cannot tell "connected" from "negligible". Larger weights and a
    forget bias near 1 keep every structural connection measurable (in float64).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * gain / p[0].numel() ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)
        for layer in model.layers:
            bias = layer.input_to_state.bias
            bias.view(-1, 4, layer.hidden)[:, 1] = forget  # the f block of each direction
    return model


# ---------------------------------------------------------------- registration


def test_registered_specs_match_constructors():
    from zoo.factory import import_builder

    for name in NAMES:
        spec = zoo.info(name)
        assert spec.family == "pixelrnn"
        assert {"likelihood", "sampler", "fast_sampler"} <= spec.capabilities
        builder = import_builder(spec.builder)
        params = [p for p in inspect.signature(builder).parameters]
        assert sorted(spec.config) == sorted(params), f"{name}: config must equal the constructor kwargs"
        assert "default" in spec.recipes and spec.recipes["default"]["batch_size"] > 0
        m = zoo.create(name)
        assert m.data_spec == spec.data_spec == zoo.DataSpec(1, 28, 28, 2)
        assert m.zoo_config == dict(spec.config)
    diag = zoo.info("pixelrnn-diag").config
    assert (diag["layers"], diag["hidden"]) == (7, 16)  # the paper's 79.20-nats model


def test_plugin_module_imports_no_torch():
    code = "import sys, zoo_pixelrnn.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_and_options_raise(name):
    m = tiny(name)
    with pytest.raises(ValueError, match="integer"):
        m.log_prob(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        m.log_prob(torch.zeros(2, 1, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="hidden"):
        zoo.create(name, channels=3, levels=256, hidden=2)  # fewer features than colours
    with pytest.raises(ValueError, match="layers"):
        zoo.create(name, layers=0)
    with pytest.raises(ValueError, match="does not take"):
        zoo.create(name, depth=3)
    if name == "pixelrnn-row":
        with pytest.raises(ValueError, match="odd"):
            zoo.create(name, kernel=4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels,levels", DATA)
def test_shapes_and_normalised_likelihood(name, channels, levels):
    m = tiny(name, channels, levels)
    x = torch.randint(0, levels, (3, channels, 8, 8))
    logits = m.logits(x)
    assert logits.shape == (3, channels, 8, 8, levels)
    lp = m.log_prob(x)
    assert lp.shape == (3,) and bool((lp < 0).all())
    if levels == 2:  # the sigmoid head is a 2-way softmax [0, s]
        assert torch.equal(logits[..., 0], torch.zeros_like(logits[..., 0]))
    # exact likelihood: sums to one over all 2^4 images of a 2x2 binary model
    m4 = zoo.create(name, height=2, width=2, layers=1, hidden=4, out_features=4)
    grid = torch.tensor([[(k >> b) & 1 for b in range(4)] for k in range(16)]).view(16, 1, 2, 2)
    assert abs(float(m4.log_prob(grid).detach().exp().sum()) - 1.0) < 1e-5
    m.loss(x).backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_autocast_leaves_the_recurrent_models_in_fp32(name):
    """A `precision: "bf16"` recipe autocasts the training forward; the PixelRNNs opt out (layers.fp32)."""
    m = tiny(name)
    x = torch.randint(0, 2, (3, 1, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = m.logits(x)
        m.loss(x).backward()
    assert cast.dtype == torch.float32 and torch.equal(cast, m.logits(x))


# ---------------------------------------------------------------- zoo check, receptive fields


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels,levels", DATA)
def test_zoo_check_passes(name, channels, levels):
    report = zoo.check(tiny(name, channels, levels))
    assert report.passed, str(report)
    assert report.causal and report.max_leak < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_colour_groups_within_a_pixel(name):
    """R sees nothing of its pixel, G sees R, B sees R and G (masks A then B).

    Measured at one input: a head of a few ReLU units per colour can be all off there, so
    the head is made wide enough that some unit of each group is on."""
    m = wake(tiny(name, 3, 256, hidden=12, out_features=48).double(), gain=1.0, forget=1.0)
    report = zoo.check(m, atol=1e-6)
    assert report.passed
    assert report.channel_field == [[False, False, False], [True, False, False], [True, True, False]]


def row_lstm_triangle(H: int, W: int, probe: tuple[int, int]) -> list[list[int]]:
    """The pixels a one-layer Row LSTM (k = 3) sees from `probe`, from the paper's wiring.

    output(i, j) reads F0(i, j) (residual) and h(i, j); h(i, j) reads F0(i, j-1), F0(i, j)
    (1x3 mask-B input-to-state) and h(i-1, j-1..j+1) (1x3 state-to-state); F0 is the 7x7
    mask-A convolution: rows i-3..i-1 at columns j-3..j+3 and row i left of j.
    """
    pi, pj = probe
    f0 = {(pi, pj)}
    for d in range(pi + 1):  # h(pi - d, c) for |c - pj| <= d reads F0 at columns c - 1 and c
        f0 |= {(pi - d, c) for c in range(pj - d - 1, pj + d + 1) if 0 <= c < W}
    seen = [[-1] * W for _ in range(H)]
    for r in range(H):
        for c in range(W):
            if r * W + c < pi * W + pj:
                seen[r][c] = int(
                    any((r0 - 3 <= r < r0 and abs(c - c0) <= 3) or (r == r0 and c0 - 3 <= c < c0) for r0, c0 in f0)
                )
    return seen


def test_row_lstm_triangular_receptive_field():
    m = wake(zoo.create("pixelrnn-row", height=10, width=10, layers=1, hidden=12, out_features=24).double())
    report = zoo.check(m, atol=1e-7)
    assert report.passed
    assert report.receptive_field == row_lstm_triangle(10, 10, report.probe), "\n" + report.render_field()
    # a triangle: the row above the probe is cut off on the right, the top rows are not
    pi, pj = report.probe
    assert report.receptive_field[pi - 1][-1] == 0 and report.receptive_field[0][-1] == 1
    assert not report.last_pixel_full  # the last pixel misses the far left of the rows just above


@pytest.mark.parametrize("channels,levels", DATA)
def test_diagonal_bilstm_full_receptive_field(channels, levels):
    m = wake(tiny("pixelrnn-diag", channels, levels, layers=1).double())
    report = zoo.check(m, atol=1e-6)
    assert report.passed
    assert report.last_pixel_full, report.last_pixel_unseen  # incl. the first row's rightmost pixel
    assert not report.blind_spot, report.blind_spot_pixels
    assert all(v == 1 for row in report.receptive_field for v in row if v != -1), "\n" + report.render_field()


@pytest.mark.parametrize("layers", [1, 3])
def test_paper_diagonal_bilstm_misses_the_last_pixel_of_the_row_above(layers):
    """The gap `full_context` closes: with the paper's layer alone, pixel (i-1, W-1) is unseen
    by (i, j) for j < W-4, however deep (nothing at or after it in raster order reaches (i, j))."""
    m = wake(tiny("pixelrnn-diag", layers=layers, full_context=False).double())
    report = zoo.check(m, atol=1e-6)
    pi, pj = report.probe
    assert report.passed
    assert report.blind_spot_pixels == [(pi - 1, 7)]
    assert report.last_pixel_full  # the last pixel is close enough for the 7x7 input conv


def test_diagonal_bilstm_second_direction_needs_the_shift():
    """Without the one-row shift the right-to-left scan would see the future of its own row."""
    m = tiny("pixelrnn-diag")
    m.eval()
    layer = m.layers[1]  # (the first layer also reads the image)
    x = torch.randn(8, 8, 1, layer.hidden * 2)  # (H, W, B, 2h): the layers work channels last
    y = x.clone()
    y[4, 6] += 1.0  # change one position of the layer's input
    out = layer(x) - layer(y)
    assert out[4, :6].abs().max() == 0  # same row, to the left: unaffected
    assert out[5, 0].abs().max() > 0  # next row, far left: reached through the shifted scan


# ---------------------------------------------------------------- fast samplers


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels,levels", DATA)
def test_incremental_logits_equal_full_logits(name, channels, levels):
    """Replaying the fast sampler's per-position computation on a fixed image gives `logits`."""
    m = tiny(name, channels, levels).eval()
    H = W = 8
    x = torch.randint(0, levels, (3, channels, H, W))
    with torch.no_grad():
        full = m.logits(x)
        steps = m.fast_sampler(x)  # started from the whole image: every position's past is known
        for i in range(H):
            for j in range(W):
                got = torch.stack([steps.logits(i, j, c) for c in range(channels)], 1)  # (3, C, levels)
                torch.testing.assert_close(got, full[:, :, i, j], atol=1e-5, rtol=1e-5)
            steps.row_done(i)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels,levels", DATA)
@pytest.mark.parametrize("completion", ["none", "top-half", "scattered"])
def test_fast_sampler_equals_naive(name, channels, levels, completion):
    m = tiny(name, channels, levels, height=6, width=6)
    n = 3
    known = mask = None
    if completion == "top-half":
        known = torch.randint(0, levels, (channels, 6, 6), generator=torch.Generator().manual_seed(5))
        mask = torch.zeros(6, 6, dtype=torch.bool)
        mask[:3] = True
    elif completion == "scattered":  # per image and per sub-pixel, incl. partly known pixels
        g = torch.Generator().manual_seed(6)
        known = torch.randint(0, levels, (n, channels, 6, 6), generator=g)
        mask = torch.rand(n, channels, 6, 6, generator=g) < 0.4
    naive = zoo.sample(m, n, method="naive", generator=torch.Generator().manual_seed(1), known=known, mask=mask)
    fast = zoo.sample(m, n, method="fast", generator=torch.Generator().manual_seed(1), known=known, mask=mask)
    assert torch.equal(fast, naive)
    if mask is not None:
        k, mk = prepare_completion(m.data_spec, n, known, mask)
        assert torch.equal(fast[mk], k[mk])
    # 'auto' picks the fast sampler; a different seed gives different images
    assert torch.equal(m.sample(n, generator=torch.Generator().manual_seed(1), known=known, mask=mask), fast)
    other = zoo.sample(m, n, generator=torch.Generator().manual_seed(2), known=known, mask=mask)
    assert not torch.equal(other, fast)


@pytest.mark.parametrize("name", NAMES)
def test_fast_sampler_temperature_zero_is_greedy(name):
    m = tiny(name, 3, 256, height=5, width=5).eval()
    u = draw_uniforms(2, m.data_spec, torch.Generator().manual_seed(0))
    a = sample_fast(m, u, temperature=0, known=None, mask=None)
    b = sample_naive(m, u, temperature=0)
    assert torch.equal(a, b)
    assert torch.equal(a, m.logits(a).argmax(-1))  # every sub-pixel is its own mode


# ---------------------------------------------------------------- learning


def _fixed_images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(8, 1, 8, 8, generator=g) < 0.5).long()  # 8 fixed random binary 8x8 images


@pytest.mark.parametrize("name", NAMES)
def test_tiny_model_overfits_a_handful_of_images(name):
    x = _fixed_images()
    p = x.float().mean(0).clamp(1e-6, 1 - 1e-6)  # the independent-pixels maximum-likelihood fit
    baseline = float(-(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3)).mean())
    m = tiny(name, hidden=8, out_features=16)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(60):
        loss = m.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = float(-m.log_prob(x).mean())
    assert baseline > 30  # ~39.5 nats: random bits are nearly incompressible pixel by pixel
    assert nll < 0.25 * baseline, f"{name}: {nll:.2f} nats vs independent pixels {baseline:.2f}"
    assert nll > math.log(8) - 1e-3  # cannot beat memorising 8 equiprobable images
