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
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(4, 1 if k == 0 else 4, 3, 3, generator=g)) for k in range(layers)])
        self.out = nn.Parameter(torch.randn(2, 4, 1, 1, generator=g))

    def logits(self, x):
        x = self.data_spec.validate(x)
        h = x.float() * 2 - 1
        for k, w in enumerate(self.weights):
            mask = torch.ones(3, 3)
            mask[1, 1 if k == 0 else 2:] = 0
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
    assert "FAILED" in str(report)


def test_seeing_a_later_colour_channel_is_caught():
    report = check(PrefixSum(channels=3, height=2, width=2, leak=1))
    assert not report.causal
    assert {v["subpixel"][0] for v in report.violations} >= {0, 1}


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
