"""The zoo_pixelcnn plugin: masks, PixelCNN and gated PixelCNN, their fast samplers, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import zoo
from zoo.nn import MaskedConv2d, causal_mask, colour_groups, fast_tanh, sigmoid_and_tanh_

NAMES = ["pixelcnn", "gated-pixelcnn"]
COLOUR = {"channels": 3, "levels": 256}
WITHIN_PIXEL = [[False, False, False], [True, False, False], [True, True, False]]  # G sees R; B sees R, G


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread (conftest)


def tiny(name, seed=0, **overrides):
    torch.manual_seed(seed)
    return zoo.create(name, **{**zoo.info(name).test_config, **overrides})


def images(n, spec, seed=0):
    return torch.randint(0, spec.levels, (n, *spec.shape), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- registration


def test_plugin_registers_both_without_importing_torch():
    code = (
        "import sys, zoo; names = zoo.list_models('*pixelcnn'); "
        "assert names == ['gated-pixelcnn', 'pixelcnn'], names; "
        "assert 'torch' not in sys.modules and 'zoo_pixelcnn.pixelcnn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in NAMES:
        spec = zoo.info(name)
        assert spec.plugin == "zoo_pixelcnn"
        assert spec.capabilities == {"likelihood", "sampler", "fast_sampler"}
        assert spec.data_spec == zoo.DataSpec(1, 28, 28, 2)
        assert {"optimizer", "lr", "batch_size", "epochs", "ema_decay"} <= set(spec.recipes["default"])


def test_pixelcnn_default_config_is_the_papers_15_layers():
    m = zoo.create("pixelcnn")
    masked = [mod for mod in m.modules() if isinstance(mod, MaskedConv2d)]
    assert m.conv_in.kernel_size == (7, 7) and m.conv_in.mask_type == "A"
    assert all(c.mask_type == "B" for c in masked if c is not m.conv_in)
    assert 1 + len(m.blocks) + 2 == 15


# ---------------------------------------------------------------- masks


def test_old_masks_module_warns_and_gives_the_same_objects():
    import zoo.nn
    import zoo_pixelcnn.masks as old

    for name in ("MaskedConv2d", "causal_mask", "colour_groups", "MASK_TYPES"):
        with pytest.warns(DeprecationWarning, match=f"zoo.nn.{name}"):
            assert getattr(old, name) is getattr(zoo.nn, name)
    with pytest.raises(AttributeError):
        _ = old.PixelConv


def test_colour_groups_split_each_block_contiguously():
    assert colour_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert colour_groups(12, 3, blocks=2).tolist() == [0, 0, 1, 1, 2, 2] * 2
    assert colour_groups(5, 1).tolist() == [0] * 5
    with pytest.raises(ValueError, match="colour groups"):
        colour_groups(2, 3)
    with pytest.raises(ValueError, match="equal blocks"):
        colour_groups(7, 1, blocks=2)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 3e-7), (torch.float64, 1e-15)])
def test_fast_tanh_is_tanh(dtype, tol):
    x = torch.cat([torch.linspace(-60, 60, 2001), torch.tensor([0.0, 1e-30, -1e-30, 1e-8])]).to(dtype)
    want = torch.tanh(x)
    assert (fast_tanh(x) - want).abs().max() <= tol
    out = x.clone()
    assert fast_tanh(out, out=out) is out and (out - want).abs().max() <= tol  # in place
    assert fast_tanh(x[:3])[0] == -1 and fast_tanh(x[-8:-6])[-1] == 1  # saturates exactly
    half = x.bfloat16()
    assert torch.equal(fast_tanh(half), torch.tanh(half))  # reduced precision: tanh itself


def test_sigmoid_and_tanh_in_place_on_a_block():
    a = torch.randn(5, 3, 16, dtype=torch.float64)
    want = torch.cat([a[..., :12].sigmoid(), a[..., 12:].tanh()], -1)
    sigmoid_and_tanh_(a, a[..., 12:])
    assert torch.allclose(a, want, rtol=0, atol=1e-15)
    b = torch.randn(5, 3, 16).bfloat16()  # reduced precision: torch's own tanh and sigmoid, exactly
    want = torch.cat([b[..., :12].sigmoid(), b[..., 12:].tanh()], -1)
    sigmoid_and_tanh_(b, b[..., 12:])
    assert torch.equal(b, want)


def test_mask_centre_follows_rgb_order():
    a = causal_mask(3, 3, 3, "A", colours=3)
    b = causal_mask(3, 3, 3, "B", colours=3)
    # [out group][in group] at the centre: A strictly earlier colours, B also the same colour
    assert a[:, :, 1, 1].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
    assert b[:, :, 1, 1].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    for m in (a, b):
        assert (m[:, :, 0] == 1).all() and (m[:, :, 1, 0] == 1).all()  # rows above, left: open
        assert (m[:, :, 1, 2] == 0).all() and (m[:, :, 2] == 0).all()  # right, rows below: closed
    one = causal_mask(1, 1, 3, "A")[0, 0]
    assert one.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask(1, 1, 3, "C")


def test_masked_conv_output_never_depends_on_later_subpixels():
    """Exact zeros (float64 Jacobian) for a stack of masked convs with colour groups and blocks."""
    torch.manual_seed(0)
    C, H, W = 3, 5, 5
    net = torch.nn.Sequential(
        MaskedConv2d(C, 12, 3, "A", C, out_blocks=2),
        torch.nn.Tanh(),
        MaskedConv2d(12, 6, (1, 3), "B", C, in_blocks=2, centre=(0, 2)),
        torch.nn.Tanh(),
        MaskedConv2d(6, C, 1, "B", C),
    ).double()
    x = torch.randn(1, C, H, W, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: net(t)[0], x)[:, :, :, 0]  # (C, H, W, C, H, W)
    order = torch.arange(C * H * W).view(H, W, C).permute(2, 0, 1)  # raster order, R G B within a pixel
    later_or_self = order.reshape(-1, 1) <= order.reshape(1, -1)  # [output k, input k']
    j = jac.reshape(C * H * W, C * H * W)
    assert (j[later_or_self] == 0).all()
    assert (j[~later_or_self] != 0).any()
    assert net(x).shape == (1, C, H, W)


# ---------------------------------------------------------------- zoo check


@pytest.mark.parametrize("colour", [False, True], ids=["binary", "colour"])
@pytest.mark.parametrize("name", NAMES)
def test_zoo_check(name, colour):
    model = tiny(name, **(COLOUR if colour else {}))
    report = zoo.check(model, name=name)
    assert report.passed, str(report)
    assert report.causal and report.log_prob_consistent and report.rejects_float_input
    if name == "pixelcnn":
        assert report.blind_spot and report.blind_spot_pixels, str(report)
    else:
        assert not report.blind_spot, str(report)
        assert report.last_pixel_full, str(report)  # the tiny config's 6 layers reach all of 8x8
    if colour:
        assert report.channel_field == WITHIN_PIXEL, str(report)


def test_zoo_check_conditional_gated():
    model = tiny("gated-pixelcnn", num_classes=4)
    report = zoo.check(model, cond={"y": torch.tensor([2])})
    assert report.passed and not report.blind_spot, str(report)


# ---------------------------------------------------------------- shapes and errors


@pytest.mark.parametrize("name", NAMES)
def test_logits_shape_and_input_errors(name):
    for cfg in ({}, COLOUR):
        model = tiny(name, **cfg)
        spec = model.data_spec
        x = images(2, spec)
        out = model.logits(x)
        assert out.shape == (2, spec.channels, spec.height, spec.width, spec.levels)
        assert out.dtype == torch.float32
        with pytest.raises(ValueError, match="integer tensor"):
            model.logits(x.float())
        with pytest.raises(ValueError, match="got shape"):
            model.logits(x[:, :, :-1])
    with pytest.raises(ValueError, match="colour groups"):
        tiny(name, hidden=2, **COLOUR)  # 2 feature maps cannot hold R, G and B
    with pytest.raises(ValueError, match="odd"):
        tiny(name, first_kernel=4)


def test_class_labels_are_checked_and_used():
    model = tiny("gated-pixelcnn", num_classes=3)
    x = images(2, model.data_spec)
    with pytest.raises(ValueError, match="class-conditional"):
        model.logits(x)
    with pytest.raises(ValueError, match=r"values in \[0, 3\)"):
        model.logits(x, y=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="dtype"):
        model.logits(x, y=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        model.logits(x, y=torch.tensor([0, 1, 2]))
    a, b = model.logits(x, y=torch.tensor([0, 0])), model.logits(x, y=1)
    assert not torch.allclose(a, b)  # the label changes the distribution
    assert torch.equal(model.logits(x, y=torch.tensor([1])), b)  # (1,) and an int broadcast
    lp = model.log_prob(x, y=torch.tensor([0, 2]))
    assert lp.shape == (2,)
    with pytest.raises(ValueError, match="unconditional"):
        tiny("gated-pixelcnn").logits(x, y=torch.tensor([0, 1]))


def test_state_dict_has_no_masks_and_loads_strictly():
    for name in NAMES:
        a, b = tiny(name, seed=0), tiny(name, seed=1)
        assert not any(k.endswith("mask") for k in a.state_dict())
        b.load_state_dict(a.state_dict(), strict=True)
        x = images(2, a.data_spec)
        assert torch.equal(a.logits(x), b.logits(x))


# ---------------------------------------------------------------- fast sampler == naive sampler


def _both(model, n, seed, **kw):
    fast = zoo.sample(model, n, method="fast", generator=torch.Generator().manual_seed(seed), **kw)
    naive = zoo.sample(model, n, method="naive", generator=torch.Generator().manual_seed(seed), **kw)
    return fast, naive


@pytest.mark.parametrize("completion", [False, True], ids=["sample", "complete"])
@pytest.mark.parametrize("colour", [False, True], ids=["binary", "colour"])
@pytest.mark.parametrize("name", NAMES)
def test_fast_sampler_equals_naive(name, colour, completion):
    model = tiny(name, height=6, width=6, **(COLOUR if colour else {}))
    spec = model.data_spec
    kw = {}
    if completion:
        known = images(3, spec, seed=7)
        mask = torch.zeros(3, *spec.shape, dtype=torch.bool)
        mask[:, :, :3] = True  # the top rows
        mask[0, :, 4, 2] = True  # and a lone pixel of one image
        mask[1, 0, 5, 4] = True  # and a lone R sub-pixel
        kw = {"known": known, "mask": mask}
    fast, naive = _both(model, 3, seed=11, **kw)
    assert fast.shape == (3, *spec.shape) and fast.dtype == torch.long
    assert torch.equal(fast, naive)
    if completion:
        assert torch.equal(fast[kw["mask"]], kw["known"][kw["mask"]])
    assert len(fast.unique()) > 1  # not a degenerate constant image


@pytest.mark.parametrize("colour", [False, True], ids=["binary", "colour"])
def test_fast_sampler_equals_naive_conditional(colour):
    model = tiny("gated-pixelcnn", num_classes=5, height=6, width=6, **({**COLOUR, "levels": 4} if colour else {}))
    y = torch.tensor([0, 3, 4])
    fast, naive = _both(model, 3, seed=3, y=y)
    assert torch.equal(fast, naive)
    other, _ = _both(model, 3, seed=3, y=torch.tensor([1, 1, 1]))
    assert not torch.equal(fast, other)  # the labels reach the samples


def test_fast_sampler_temperature_zero_and_errors():
    model = tiny("pixelcnn", height=6, width=6)
    fast, naive = _both(model, 2, seed=0, temperature=0.0)
    assert torch.equal(fast, naive)
    with pytest.raises(ValueError, match="unconditional"):
        zoo.sample(model, 2, method="fast", y=torch.tensor([0, 1]))


# ---------------------------------------------------------------- learning


@pytest.mark.parametrize("name", NAMES)
def test_tiny_model_overfits_a_handful_of_images(name):
    """8 fixed random 8x8 binary images: the NLL falls far below the independent-pixels fit of them."""
    from zoo_independent.model import IndependentPixels

    model = tiny(name)
    spec = model.data_spec
    x = images(8, spec, seed=3)
    baseline = -IndependentPixels(*spec.shape, spec.levels).fit(x, alpha=0.0).log_prob(x).mean().item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    nll = model.eval().loss(x).item()
    assert nll < 0.5 * baseline, (nll, baseline)


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize("name", NAMES)
def test_cli_sample_and_complete(cli_runner, tmp_path, name):
    from PIL import Image

    out = tmp_path / "grid.png"
    r = cli_runner("sample", name, "--tiny", "-n", "4", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] > 8
    img = tmp_path / "in.png"
    Image.fromarray((images(1, zoo.DataSpec(1, 8, 8, 2))[0, 0].numpy() * 255).astype("uint8")).save(img)
    done = tmp_path / "done.png"
    r = cli_runner("sample", name, "--tiny", "-n", "2", "--complete", str(img), "--out", str(done), "--scale", "1")
    assert r.exit_code == 0, r.output
    grid = torch.tensor(list(Image.open(done).convert("L").tobytes())).view(Image.open(done).size[1], -1)
    kept = torch.tensor(list(Image.open(img).convert("L").tobytes())).view(8, 8)[:4]
    assert torch.equal(grid[2:6, 2:10], kept)  # the top half of the first image is the input's
