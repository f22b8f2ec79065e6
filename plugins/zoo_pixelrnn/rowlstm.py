"""Row LSTM (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", section 3.1).

The image is processed row by row from top to bottom, all pixels of a row at once. Each
layer is a residual LSTM over rows:

    [o, f, i, g] = sigma(K_ss (*) h_{i-1} + K_is (*) x_i)       sigma: sigmoid for o, f, i; tanh for g
    c_i = f . c_{i-1} + i . g,     h_i = o . tanh(c_i)

- input-to-state K_is: a 1 x k convolution along the row (k = 3), mask B, 2h -> 4h,
  computed for the whole map in one call;
- state-to-state K_ss: a 1 x k convolution over the previous row's hidden state, h -> 4h,
  unmasked (the whole previous row is in the past for every colour);
- residual: h -> 2h by a 1x1 mask-B convolution, added to the layer's input.

Implementation: the recurrence over rows is `row_scan` (row_scan.py, a hand-written
backward), and between the input convolution and the head the features are laid out
`(2h, H, B, W)`, so that the 1 x k and 1x1 convolutions are single matrix products. Without
gradients (scoring), `logits` runs all layers row by row instead of layer by layer, which keeps
every intermediate one row in size. `forward_reference` / `logits_reference` are the plain
versions that the tests compare against (tests/test_row_scan.py).

The initial state (the row above the image) is zero, h and c. Each pixel sees a triangle
of the rows above it (Figure 4 of the paper): with k = 3 the triangle widens by one pixel
per row on either side, plus what the 7x7 input convolution adds.

`fast_sampler` (`RowLSTMSteps`, for `zoo.sampling`'s raster driver) carries each layer's
(h, c) from row to row and computes only the new pixel:
the 7x7 input convolution on one patch, then per layer the k - 1 left neighbours and the
pixel itself through K_is, plus K_ss applied once per row to the previous row's state.
It draws exactly the naive sampler's images (tests/test_pixelrnn.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn import MaskedConv2d, bias_of, check_int

from .layers import PixelRNN, PixelRNNSteps, fp32, lstm_cell
from .row_scan import lstm_row, row_scan, row_scan_reference

__all__ = ["RowLSTM", "RowLSTMLayer", "RowLSTMSteps"]


def _read_shifted(dst: torch.Tensor, src: torch.Tensor, s: int) -> None:
    """`dst[..., j] = src[..., j + s]` for every column j + s inside the row; the other columns
    of `dst` are left as they are."""
    W = src.shape[-1]
    if s <= 0:
        dst[..., -s:] = src[..., : W + s]
    else:
        dst[..., : W - s] = src[..., s:]


class RowLSTMLayer(nn.Module):
    """One residual Row LSTM layer: `(B, 2h, H, W) -> (B, 2h, H, W)`."""

    def __init__(self, hidden: int, kernel: int, colours: int):
        super().__init__()
        h = hidden
        self.hidden, self.kernel = h, kernel
        # gates are 4 blocks [o | f | i | g] of h features, each split into colour groups
        self.input_to_state = MaskedConv2d(2 * h, 4 * h, (1, kernel), "B", colours, out_blocks=4)
        self.state_to_state = nn.Conv1d(h, 4 * h, kernel, padding=kernel // 2, bias=False)
        self.up = MaskedConv2d(h, 2 * h, 1, "B", colours)
        with torch.no_grad():  # forget-gate bias 1 (Gers et al. 2000): remember by default
            bias_of(self.input_to_state)[h : 2 * h] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, 2h, H, W) -> (B, 2h, H, W)`. `RowLSTM.logits` calls `forward_chbw`, without the transposes."""
        return self.forward_chbw(x.permute(1, 2, 0, 3).contiguous()).permute(2, 0, 1, 3)

    def forward_chbw(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on features laid out `(2h, H, B, W)` (as in row_scan.py): `-> (2h, H, B, W)`.

        The masked convolutions are matrix products over the channels. The 1 x k mask-B
        input-to-state reads the p = k // 2 pixels to the left and the pixel itself (its taps
        to the right are masked off entirely, the centre tap by colour groups); the 1x1 `up`
        is one matrix. The recurrence over rows is `row_scan`."""
        F2, H, B, W = x.shape
        p = self.kernel // 2
        w_is = self.input_to_state.masked_weight()[:, :, 0]  # (4h, 2h, k): tap t reads column j + t - p
        b_is = bias_of(self.input_to_state)[:, None]  # (4h, 1)
        pre = torch.addmm(b_is, w_is[:, :, p], x.view(F2, -1))  # (4h, H B W): the centre
        for t in range(p):  # and the taps to its left (those to its right are masked off)
            pre.addmm_(w_is[:, :, t], F.pad(x, (p - t, t - p)).view(F2, -1))  # x at j + t - p, zero outside
        h = row_scan(pre.view(-1, H, B, W), self.state_to_state.weight)  # (h, H, B, W)
        out = torch.addmm(x.view(F2, -1), self.up.masked_weight()[:, :, 0, 0], h.reshape(self.hidden, -1))  # x + K_up h
        return out.add_(bias_of(self.up)[:, None]).view_as(x)

    # -- scoring without gradients, one row at a time (RowLSTM._layers_by_rows)
    def row_begin(self, x: torch.Tensor) -> dict[str, Any]:
        """Weights and buffers for `row_step` on rows like `x` `(2h, B, W)`; the state above the image is zero."""
        hid, k, p = self.hidden, self.kernel, self.kernel // 2
        w_ss = self.state_to_state.weight.permute(0, 2, 1)  # (4h, k, h)
        w_is = self.input_to_state.masked_weight()[:, :, 0, : p + 1].permute(0, 2, 1)  # (4h, p+1, 2h)
        _, B, W = x.shape
        return {
            "w": torch.cat([w_ss.reshape(4 * hid, -1), w_is.reshape(4 * hid, -1)], 1),  # (4h, k h + (p+1) 2h)
            "b": bias_of(self.input_to_state)[:, None],
            "up_w": self.up.masked_weight()[:, :, 0, 0],
            "up_b": bias_of(self.up)[:, None],
            # what "w" multiplies, `(k h + (p+1) 2h, B, W)`: k blocks of h, block t holding the row
            # above at column j + t - p, then p + 1 blocks of this row's input, block t at column
            # j + t - p; zero where that column is outside the image (never written)
            "win": x.new_zeros(k * hid + (p + 1) * x.shape[0], B, W),
            "gates": x.new_empty(4 * hid, B, W),
            "c": x.new_zeros(hid, B, W),
            "tanh_c": x.new_empty(hid, B, W),
        }

    def row_step(self, x: torch.Tensor, s: dict[str, Any]) -> torch.Tensor:
        """The layer on the next row `x` `(2h, B, W)`, advancing its state `s` by one row: `(2h, B, W)`."""
        hid, k, p = self.hidden, self.kernel, self.kernel // 2
        F2, B, W = x.shape
        win = s["win"]
        for t in range(p + 1):
            _read_shifted(win[k * hid + t * F2 : k * hid + (t + 1) * F2], x, t - p)
        gates = torch.addmm(s["b"], s["w"], win.view(len(win), -1), out=s["gates"].view(4 * hid, -1))
        h = win[p * hid : (p + 1) * hid]  # (h, B, W): the centre block for the next row
        lstm_row(gates.view(-1, B, W), s["c"], s["c"], s["tanh_c"], h)
        for t in range(k):
            if t != p:
                _read_shifted(win[t * hid : (t + 1) * hid], h, t - p)
        return torch.addmm(x.reshape(F2, -1), s["up_w"], h.view(hid, -1)).add_(s["up_b"]).view(F2, B, W)

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The plain version of `forward`, the convolutions as convolutions and the loop over rows
        under autograd: `(B, 2h, H, W) -> (B, 2h, H, W)` (the tests compare against it)."""
        pre = self.input_to_state(x).permute(1, 2, 0, 3)  # (4h, H, B, W)
        h = row_scan_reference(pre, self.state_to_state.weight)  # (h, H, B, W)
        return x + self.up(h.permute(2, 0, 1, 3))  # (B, 2h, H, W)


class RowLSTM(PixelRNN):
    """PixelRNN with Row LSTM layers. Logits `(B, C, H, W, levels)`.

    Args (the constructor's keywords are the registered config):
        channels, height, width, levels: the data (binarized MNIST: 1, 28, 28, 2).
        layers: residual Row LSTM layers.
        hidden: h, features per gate; the residual stream has 2h.
        kernel: k of the 1 x k input-to-state and state-to-state convolutions (odd, >= 3).
        out_features: width of the first 1x1 output convolution.
    """

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 2,
        layers: int = 7,
        hidden: int = 32,
        kernel: int = 3,
        out_features: int = 64,
    ):
        super().__init__(channels, height, width, levels, hidden, out_features)
        check_int("layers", layers, 1)
        check_int("kernel", kernel, 3)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centre pixel and k//2 on each side), got {kernel}")
        self.kernel = kernel
        self.layers = nn.ModuleList(RowLSTMLayer(hidden, kernel, channels) for _ in range(layers))

    @property
    def _row_layers(self) -> Sequence[RowLSTMLayer]:
        """`self.layers` as what it holds (to a type checker, an `nn.ModuleList` holds plain `nn.Module`s)."""
        return cast("Sequence[RowLSTMLayer]", self.layers)

    @fp32
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """As `PixelRNN.logits`, with the features laid out `(2h, H, B, W)` from the input convolution
        to the head, so that every 1 x k and 1x1 convolution after the first is one matrix product
        and no layer transposes its input (see row_scan.py for why this layout)."""
        x = self.data_spec.validate(x)
        f = self.input_conv(self.encode(x)).permute(1, 2, 0, 3).contiguous()  # (2h, H, B, W)
        if torch.is_grad_enabled():
            for layer in self._row_layers:
                f = layer.forward_chbw(f)  # (2h, H, B, W), residual inside
        else:
            f = self._layers_by_rows(f)
        w1, w2 = self.out1.masked_weight()[:, :, 0, 0], self.out2.masked_weight()[:, :, 0, 0]
        out = F.relu(torch.addmm(bias_of(self.out1)[:, None], w1, F.relu(f).view(f.shape[0], -1)))
        out = torch.addmm(bias_of(self.out2)[:, None], w2, out).view(-1, *f.shape[1:])  # (C n_out, H, B, W)
        return self._to_logits(out.permute(2, 1, 3, 0)).permute(0, 3, 1, 2, 4)  # (B, C, H, W, levels)

    @torch.no_grad()
    def _layers_by_rows(self, f: torch.Tensor) -> torch.Tensor:
        """The layers without gradients, row by row: all layers on row 0, then on row 1, ...
        `(2h, H, B, W) -> (2h, H, B, W)`. The same arithmetic as layer by layer, but each layer
        only carries its state from the row above, so every intermediate is one row in size and
        stays in the CPU's caches; layer by layer, each is a whole batch of images in size."""
        states = [layer.row_begin(f[:, 0]) for layer in self._row_layers]
        out = torch.empty_like(f)
        for i in range(f.shape[1]):
            g = f[:, i]  # (2h, B, W)
            for layer, s in zip(self._row_layers, states, strict=True):
                g = layer.row_step(g, s)
            out[:, i] = g
        return out

    def logits_reference(self, x: torch.Tensor) -> torch.Tensor:
        """`logits` computed plainly: convolutions, and each layer's `forward_reference` (for the tests)."""
        x = self.data_spec.validate(x)
        f = self.input_conv(self.encode(x))  # (B, 2h, H, W)
        for layer in self._row_layers:
            f = layer.forward_reference(f)
        out = self.out2(F.relu(self.out1(F.relu(f))))  # (B, C * n_out, H, W)
        return self._to_logits(out.permute(0, 2, 3, 1)).permute(0, 3, 1, 2, 4)  # (B, C, H, W, levels)

    def fast_sampler(self, x: torch.Tensor) -> RowLSTMSteps:
        """Incremental steps from the start image `x` `(n, C, H, W)` (FAST SAMPLER CONTRACT, zoo/sampling.py)."""
        return RowLSTMSteps(self, x)


class RowLSTMSteps(PixelRNNSteps):
    """The Row LSTM's incremental steps: each layer carries (h, c) of the row above; at pixel
    (i, j) it runs K_is on the k//2 left neighbours and the pixel, plus K_ss of the row above
    (computed once per row, in `row_done`), and one LSTM step."""

    def __init__(self, model: RowLSTM, x: torch.Tensor):
        super().__init__(model, x)
        n, h, W, p = x.shape[0], model.hidden, model.data_spec.width, model.kernel // 2
        self.p = p
        self.layers: list[dict[str, Any]] = []  # per layer: its weights and carried state
        for layer in model._row_layers:
            w_is = layer.input_to_state.masked_weight()[:, :, 0, : p + 1]  # (4h, 2h, p+1): left p and centre
            zeros = w_is.new_zeros(n, h, W)
            self.layers.append(
                {
                    "layer": layer,
                    "is_w": w_is.reshape(4 * h, -1),
                    "is_b": bias_of(layer.input_to_state),
                    "up_w": layer.up.masked_weight()[:, :, 0, 0],
                    "up_b": bias_of(layer.up),
                    "row_in": w_is.new_zeros(n, 2 * h, W + p),  # this row's layer inputs, p zeros on the left
                    "ss": layer.state_to_state(zeros),  # (n, 4h, W): K_ss (*) h of the row above (zero at the top)
                    "c_prev": zeros.clone(),  # c of the row above
                    "h": zeros.clone(),
                    "c": zeros.clone(),  # this row's state, filled pixel by pixel
                }
            )

    def layers_at(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:
        p = self.p
        for s in self.layers:
            s["row_in"][:, :, p + j] = f
            window = s["row_in"][:, :, j : j + p + 1].reshape(f.shape[0], -1)  # (n, 2h*(p+1))
            gates = F.linear(window, s["is_w"], s["is_b"]) + s["ss"][:, :, j]  # (n, 4h)
            h, c = lstm_cell(gates, s["c_prev"][:, :, j])
            s["h"][:, :, j], s["c"][:, :, j] = h, c
            f = f + F.linear(h, s["up_w"], s["up_b"])
        return f  # (n, 2h)

    def row_done(self, i: int) -> None:
        for s in self.layers:
            s["ss"] = s["layer"].state_to_state(s["h"])
            s["c_prev"] = s["c"]
            s["h"], s["c"] = torch.zeros_like(s["h"]), torch.zeros_like(s["c"])
