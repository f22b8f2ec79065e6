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

The initial state (the row above the image) is zero, h and c. Each pixel sees a triangle
of the rows above it (Figure 4 of the paper): with k = 3 the triangle widens by one pixel
per row on either side, plus what the 7x7 input convolution adds.

`sample_fast` carries each layer's (h, c) from row to row and computes only the new pixel:
the 7x7 input convolution on one patch, then per layer the k - 1 left neighbours and the
pixel itself through K_is, plus K_ss applied once per row to the previous row's state.
It draws exactly the naive sampler's images (tests/test_pixelrnn.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MaskedConv2d, PixelRNN, check_int, lstm_cell

__all__ = ["RowLSTM", "RowLSTMLayer"]


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
            self.input_to_state.bias[h:2 * h] = 1.0

    def state_matrix(self) -> torch.Tensor:
        """K_ss as a matrix `(h * k, 4h)` acting on a row's k-wide windows of h (channels last)."""
        return self.state_to_state.weight.permute(1, 2, 0).reshape(self.hidden * self.kernel, 4 * self.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        hid, k, p = self.hidden, self.kernel, self.kernel // 2
        # channels last inside the loop: small matmuls are much cheaper than small convolutions
        gates_in = self.input_to_state(x).permute(2, 0, 3, 1).unbind(0)  # H x (B, W, 4h); one backward node
        w_ss = self.state_matrix()  # (h*k, 4h)
        h = x.new_zeros(B, W, hid)  # zero initial state: the row above the image
        c = x.new_zeros(B, W, hid)
        rows = []
        for i in range(H):  # top to bottom, the whole row at once
            windows = F.pad(h, (0, 0, p, p)).unfold(1, k, 1).reshape(B, W, hid * k)  # (B, W, h*k)
            h, c = lstm_cell(torch.baddbmm(gates_in[i], windows, w_ss.expand(B, -1, -1)), c)  # (B, W, h)
            rows.append(h)
        hs = torch.stack(rows, 1).permute(0, 3, 1, 2)  # (B, h, H, W)
        return x + self.up(hs)


class RowLSTM(PixelRNN):
    """PixelRNN with Row LSTM layers. Logits `(B, C, H, W, levels)`.

    Args (the constructor's keywords are the registered config):
        channels, height, width, levels: the data (binarized MNIST: 1, 28, 28, 2).
        layers: residual Row LSTM layers.
        hidden: h, features per gate; the residual stream has 2h.
        kernel: k of the 1 x k input-to-state and state-to-state convolutions (odd, >= 3).
        out_features: width of the first 1x1 output convolution.
    """

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28, levels: int = 2,
                 layers: int = 7, hidden: int = 16, kernel: int = 3, out_features: int = 32):
        super().__init__(channels, height, width, levels, hidden, out_features)
        check_int("layers", layers, 1)
        check_int("kernel", kernel, 3)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centre pixel and k//2 on each side), got {kernel}")
        self.kernel = kernel
        self.layers = nn.ModuleList(RowLSTMLayer(hidden, kernel, channels) for _ in range(layers))

    # ------------------------------------------------------------------ fast sampler
    def sample_fast(self, u: torch.Tensor, *, temperature: float = 1.0, known: torch.Tensor | None = None,
                    mask: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
        """Incremental sampler (FAST SAMPLER CONTRACT in zoo/sampling.py): `(n, C, H, W)` levels."""
        return self._sample_incremental(u, temperature=temperature, known=known, mask=mask, progress=progress)

    def _fast_begin(self, n: int, device: torch.device) -> dict[str, Any]:
        h, W, p = self.hidden, self.data_spec.width, self.kernel // 2
        Wt = self._position_weights()
        layers = []
        for layer in self.layers:
            w_is = layer.input_to_state.masked_weight()[:, :, 0, :p + 1]  # (4h, 2h, p+1): left p and centre
            zeros = w_is.new_zeros(n, h, W)
            layers.append({
                "is_w": w_is.reshape(4 * h, -1), "is_b": layer.input_to_state.bias,
                "up_w": layer.up.masked_weight()[:, :, 0, 0], "up_b": layer.up.bias,
                "row_in": w_is.new_zeros(n, 2 * h, W + p),  # this row's layer inputs, p zeros on the left
                "ss": layer.state_to_state(zeros),  # (n, 4h, W): K_ss (*) h of the row above (zero at the top)
                "c_prev": zeros.clone(),  # c of the row above
                "h": zeros.clone(), "c": zeros.clone(),  # this row's state, filled pixel by pixel
            })
        return {"w": Wt, "layers": layers, "p": p}

    def _fast_position(self, state: dict[str, Any], xe: torch.Tensor, i: int, j: int) -> torch.Tensor:
        p = state["p"]
        f = self._position_input(state["w"], xe, i, j)  # (n, 2h)
        for layer, s in zip(self.layers, state["layers"]):
            s["row_in"][:, :, p + j] = f
            window = s["row_in"][:, :, j:j + p + 1].reshape(f.shape[0], -1)  # (n, 2h*(p+1))
            gates = F.linear(window, s["is_w"], s["is_b"]) + s["ss"][:, :, j]  # (n, 4h)
            h, c = lstm_cell(gates, s["c_prev"][:, :, j])
            s["h"][:, :, j], s["c"][:, :, j] = h, c
            f = f + F.linear(h, s["up_w"], s["up_b"])
        return self._position_head(state["w"], f)  # (n, C, levels)

    def _fast_row_end(self, state: dict[str, Any], i: int) -> None:
        for layer, s in zip(self.layers, state["layers"]):
            s["ss"] = layer.state_to_state(s["h"])
            s["c_prev"] = s["c"]
            s["h"], s["c"] = torch.zeros_like(s["h"]), torch.zeros_like(s["c"])
