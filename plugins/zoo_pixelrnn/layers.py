"""Pieces shared by the Row LSTM and the Diagonal BiLSTM (van den Oord et al. 2016a, "Pixel
Recurrent Neural Networks", arXiv:1601.06759, section 3 and Table 1).

- masks A/B with colour groups (section 3.4) come from `zoo.nn.MaskedConv2d`: every feature
  map belongs to one colour group (R, G or B, contiguous blocks); at the kernel centre a
  connection from group a to group b is open when a < b (mask A) or a <= b (mask B).
- `PixelRNN`: the parts around the recurrent layers, common to both models:
  7x7 mask-A input convolution (2h features), the residual LSTM layers (the subclass
  builds them), then ReLU + two 1x1 mask-B convolutions and a sigmoid (2 levels) or a
  softmax over `levels` per sub-pixel.
- `PixelRNNSteps`: what both models' incremental steps for `zoo.sampling`'s raster driver
  share (FAST SAMPLER CONTRACT, zoo/sampling.py): the scaled, padded image, the input
  convolution at one pixel and the output head; each model adds its layers' state.

Shapes: B batch, C image channels, H x W image, h hidden units per gate, F = 2h features.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.autoregressive import AutoregressiveModel
from zoo.nn import MaskedConv2d, bias_of, check_int, scale_input
from zoo.protocols import DataSpec

__all__ = ["PixelRNN", "PixelRNNSteps", "lstm_cell", "fp32", "bias_of"]


def fp32(logits: Any) -> Any:
    """Run a `logits` method with autocast off: the recurrent layers are fused by hand (in-place
    matrix products, whole-scan autograd functions) and bf16 rounding would compound over the
    rows or diagonals, so a `precision: "bf16"` recipe trains a PixelRNN in fp32."""

    @functools.wraps(logits)
    def run(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return logits(self, x, *args, **kwargs)

    return run


def lstm_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTM update of section 3.1 from pre-activations `gates` `(..., 4h)`, blocks [o | f | i | g]
    on the last dim, and the previous cell state `c` `(..., h)`: o, f, i sigmoid, g tanh,
    c' = f.c + i.g, h' = o.tanh(c'). Returns `(h', c')`."""
    h = c.shape[-1]
    sig = torch.sigmoid(gates[..., : 3 * h])
    c = sig[..., h : 2 * h] * c + sig[..., 2 * h :] * torch.tanh(gates[..., 3 * h :])
    return sig[..., :h] * torch.tanh(c), c


# --------------------------------------------------------------------------- the model around the LSTMs


class PixelRNN(AutoregressiveModel):
    """Input conv, residual recurrent layers (built by the subclass in `self.layers`), output head.

    The input image is fed as levels scaled to [-1, 1]. Binary data (levels == 2) gets one
    logit per sub-pixel and a sigmoid, as in the paper; `logits` returns it as the
    equivalent 2-way softmax `[0, s]`.
    """

    layers: nn.ModuleList  # the residual recurrent layers, built by the subclass

    def __init__(self, channels: int, height: int, width: int, levels: int, hidden: int, out_features: int):
        super().__init__()
        self.data_spec = DataSpec(channels, height, width, levels)
        check_int("hidden", hidden, max(1, channels))
        check_int("out_features", out_features, max(1, channels))
        C, h = channels, hidden
        self.hidden = h
        self.n_out = 1 if levels == 2 else levels  # sigmoid for binary data, softmax otherwise
        # Table 1: "7x7 conv mask A", 2h features
        self.input_conv = MaskedConv2d(C, 2 * h, 7, "A", C)
        # Table 1: "ReLU followed by 1x1 conv, mask B (2 layers)"; the last one has n_out
        # outputs per colour, in colour order (R block, G block, B block)
        self.out1 = MaskedConv2d(2 * h, out_features, 1, "B", C)
        self.out2 = MaskedConv2d(out_features, C * self.n_out, 1, "B", C)

    # -- the parallel (training / likelihood) path
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels -> floats in [-1, 1] (`zoo.nn.scale_input`), the input conv's dtype."""
        return scale_input(x, self.data_spec.levels, self.input_conv.weight.dtype)

    def _to_logits(self, out: torch.Tensor) -> torch.Tensor:
        """Head output `(..., C * n_out)` -> `(..., C, levels)`."""
        out = out.unflatten(-1, (self.data_spec.channels, self.n_out))
        if self.n_out == 1:
            out = torch.cat([torch.zeros_like(out), out], -1)  # sigmoid(s) = softmax([0, s])[1]
        return out

    @fp32
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.data_spec.validate(x)
        f = self.input_conv(self.encode(x))  # (B, 2h, H, W)
        for layer in self.layers:
            f = layer(f)  # (B, 2h, H, W), residual inside
        out = self.out2(F.relu(self.out1(F.relu(f))))  # (B, C * n_out, H, W)
        logits = self._to_logits(out.permute(0, 2, 3, 1))  # (B, H, W, C, levels)
        return logits.permute(0, 3, 1, 2, 4)  # (B, C, H, W, levels)


class PixelRNNSteps:
    """The incremental steps of a PixelRNN for `zoo.sampling`, around its layers.

    Holds the image scaled to [-1, 1] and zero-padded by 3 (the 7x7 input convolution's
    reach), `xe` `(n, C, H+6, W+6)`, with image pixel (i, j) at [i+3, j+3]; `position(i, j)`
    gives the logits `(n, C, levels)` of pixel (i, j) from `input_at` (the input convolution
    at that pixel), the subclass's `layers_at` (every layer at that pixel, from the carried
    state) and the head. For colour images the driver asks once per channel (G's logits need
    the R just drawn); the last ask leaves the pixel's state final, because no feature of a
    pixel depends on its own last channel (mask A, then mask B).
    """

    def __init__(self, model: PixelRNN, x: torch.Tensor):
        n, C, H, W = x.shape
        self.model = model
        self.levels, self.dtype = model.data_spec.levels, model.input_conv.weight.dtype
        self.xe = x.new_zeros((n, C, H + 6, W + 6), dtype=self.dtype)  # encoded, zero-padded by 3
        self.xe[:, :, 3 : H + 3, 3 : W + 3] = model.encode(x)
        w_in = model.input_conv.masked_weight()[:, :, :4, :]  # rows i-3..i of the 7x7 kernel
        self.in_w, self.in_b = w_in.reshape(w_in.shape[0], -1), model.input_conv.bias
        self.o1_w, self.o1_b = model.out1.masked_weight()[:, :, 0, 0], model.out1.bias
        self.o2_w, self.o2_b = model.out2.masked_weight()[:, :, 0, 0], model.out2.bias

    def input_at(self, i: int, j: int) -> torch.Tensor:
        """The input conv at pixel (i, j): `(n, 2h)`."""
        patch = self.xe[:, :, i : i + 4, j : j + 7].reshape(self.xe.shape[0], -1)  # (n, C*4*7)
        return F.linear(patch, self.in_w, self.in_b)

    def layers_at(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:  # pragma: no cover - abstract
        """Every layer at pixel (i, j): the input conv's `(n, 2h)` in, the last layer's `(n, 2h)` out."""
        raise NotImplementedError

    def position(self, i: int, j: int) -> torch.Tensor:
        """`(n, C, levels)`: the logits of every channel of pixel (i, j)."""
        f = self.layers_at(self.input_at(i, j), i, j)  # (n, 2h)
        out = F.linear(F.relu(F.linear(F.relu(f), self.o1_w, self.o1_b)), self.o2_w, self.o2_b)
        return self.model._to_logits(out)

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        return self.position(i, j)[:, c]  # (n, levels)

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        self.xe[:, c, i + 3, j + 3] = scale_input(level, self.levels, self.dtype)

    def row_done(self, i: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
