"""The causality checker must catch leaks and measure receptive fields correctly."""

import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.autoregressive import AutoregressiveModel
from zoo.checks import check
from zoo.protocols import DataSpec


class PrefixSum(AutoregressiveModel):
    """Logits of sub-pixel k are a function of the sum of all earlier sub-pixels (full context).
    With `leak=d`, sub-pixel k also sees sub-pixel k+d (d=0: itself)."""

    def __init__(self, channels=1, height=5, width=6, levels=3, leak=None):
        super().__init__()
        self.data_spec = DataSpec(channels, height, width, levels)
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, levels))
        self.leak = leak

    def logits(self, x):
        x = self.data_spec.validate(x)
        B, C, H, W = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(B, -1).float()
        prefix = torch.cumsum(flat, 1) - flat  # sum of strictly earlier sub-pixels
        if self.leak is not None:
            prefix = prefix + torch.roll(flat, -self.leak, 1) * 0.37
        out = torch.sin(prefix.unsqueeze(-1) * self.w)  # (B, D, L)
        return out.view(B, H, W, C, -1).permute(0, 3, 1, 2, 4)


class StackedMasked(AutoregressiveModel):
    """PixelCNN-like: a 3x3 mask-A conv then 3x3 mask-B convs (single channel): has a blind spot."""

    def __init__(self, height=8, width=8, layers=3):
        super().__init__()
        self.data_spec = DataSpec(1, height, width, 2)
        g = torch.Generator().manual_seed(0)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(4, 1 if k == 0 else 4, 3, 3, generator=g)) for k in range(layers)]
        )
        self.out = nn.Parameter(torch.randn(2, 4, 1, 1, generator=g))

    def logits(self, x):
        x = self.data_spec.validate(x)
        h = x.float() * 2 - 1
        for k, w in enumerate(self.weights):
            mask = torch.ones(3, 3)
            mask[1, 1 if k == 0 else 2 :] = 0
            mask[2:] = 0
            h = torch.tanh(F.conv2d(h, w * mask, padding=1))
        return F.conv2d(h, self.out).permute(0, 2, 3, 1).unsqueeze(1)  # (B, 1, H, W, 2)


def test_full_context_model_passes_with_full_field():
    report = check(PrefixSum())
    assert report.passed and report.causal and report.max_leak == 0.0
    assert report.last_pixel_full and not report.blind_spot
    assert "PASSED" in str(report)


def test_colour_channel_order_is_measured():
    report = check(PrefixSum(channels=3, height=3, width=4))
    assert report.passed
    assert report.channel_field == [[False, False, False], [True, False, False], [True, True, False]]
    assert "G<-R" in str(report) and "B<-RG" in str(report)


def test_seeing_itself_is_caught():
    report = check(PrefixSum(leak=0))
    assert not report.causal and not report.passed
    assert len(report.violations) > 0 and report.max_leak > 0.01
    assert report.subpixels == 30 and report.leaking == 30
    assert {v["sees"] for v in report.violations} == {"itself"}
    assert "FAILED" in str(report) and "30 of 30 sub-pixels leak" in str(report)
    assert "(c=0, i=0, j=0) sees itself" in str(report)


def test_seeing_a_later_colour_channel_is_caught():
    report = check(PrefixSum(channels=3, height=2, width=2, leak=1))
    assert not report.causal
    assert {v["subpixel"][0] for v in report.violations} >= {0, 1}
    assert {v["sees"] for v in report.violations} == {"later"} and "sees a later sub-pixel" in str(report)


def test_blind_spot_of_stacked_masked_convolutions():
    report = check(StackedMasked())
    assert report.passed
    assert report.blind_spot and report.blind_spot_pixels
    assert not report.last_pixel_full
    pi, pj = report.probe
    # the classic blind spot: the pixel up-right of the probe, beyond the first layer's reach
    assert (pi - 1, pj + 2) in report.blind_spot_pixels
    assert report.receptive_field[pi - 2][pj + 2] == 1


def test_inconsistent_log_prob_is_caught():
    class Lies(PrefixSum):
        def log_prob(self, x):
            return super().log_prob(x) + 1.0

    assert not check(Lies()).log_prob_consistent


def test_check_by_name_and_non_autoregressive():
    report = check("independent")
    assert report.passed and report.model == "independent"

    class Gan(nn.Module):
        data_spec = DataSpec(1, 2, 2, 2)

    import pytest

    with pytest.raises(zoo.ZooError, match="autoregressive"):
        check(Gan())


def test_zoo_check_seed_seeds_the_weights(cli_runner, monkeypatch):
    """`zoo check --seed S` checks the same random weights every time (and other weights for another seed)."""
    import zoo.checks

    seen = []
    real = zoo.checks.check

    def spy(model, **kw):
        seen.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        return real(model, **kw)

    monkeypatch.setattr(zoo.checks, "check", spy)
    for seed in (1, 1, 2):
        assert cli_runner("check", "pixelcnn", "--tiny", "--seed", str(seed)).exit_code == 0
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


def test_zoo_check_reports_a_spec_that_disagrees_with_its_code(cli_runner, fresh_plugins):
    import zoo.plugins

    class Plugin:
        @zoo.hookimpl
        def zoo_register_models(self, register):
            base = dict(family="t", summary="s", paper="p", capabilities={"likelihood"})
            register(
                zoo.ModelSpec(
                    name="typo",
                    builder="zoo_independent.model:IndependentPixel",
                    config={"height": 4, "width": 4},
                    data_spec=DataSpec(1, 4, 4, 2),
                    **base,
                )
            )
            register(
                zoo.ModelSpec(
                    name="extra-key",
                    builder="zoo_independent.model:IndependentPixels",
                    config={"height": 4, "width": 4, "depth": 3},
                    data_spec=DataSpec(1, 4, 4, 2),
                    **base,
                )
            )
            register(
                zoo.ModelSpec(
                    name="levels",
                    builder="zoo_independent.model:IndependentPixels",
                    config={"height": 4, "width": 4},
                    data_spec=DataSpec(1, 4, 4, 4),
                    **base,
                )
            )

    with zoo.plugins.use_plugins({"bad": Plugin()}):
        r = cli_runner("check", "typo")
        assert r.exit_code == 1 and "has no attribute 'IndependentPixel'" in r.output and "FAILED" in r.output
        r = cli_runner("check", "extra-key")
        assert r.exit_code == 1 and "'depth' that the builder does not take" in r.output
        r = cli_runner("check", "levels")
        assert (
            r.exit_code == 1
            and "declares data_spec 1x4x4, 4 levels, but the builder made a model with 1x4x4, 2 levels" in r.output
        )
        assert "spec (builder, config keys, data_spec): FAIL" in r.output
