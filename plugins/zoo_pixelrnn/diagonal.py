"""Diagonal BiLSTM (van den Oord et al. 2016a, "Pixel Recurrent Neural Networks", section 3.2).

Each layer scans the image along diagonals in two directions. For one direction:

1. skew the map: row i is shifted right by i, so `(H, W)` becomes `(H, W + H - 1)` and each
   diagonal of the image is a column of the skewed map (Figure 3 of the paper);
2. input-to-state: a 1x1 convolution, mask B, 2h -> 4h (computed before skewing: a 1x1
   convolution commutes with the skew);
3. state-to-state: a column-wise 2x1 convolution over the previous column's hidden state,
   h -> 4h; in image coordinates it reads the pixel above and the pixel to the left;
4. columns processed left to right with the LSTM update of section 3.1 (o, f, i sigmoid,
   g tanh; c = f.c' + i.g, h = o.tanh(c));
5. unskew back to `(H, W)`.

The second direction runs on the mirrored map (so it reads above and *right*); its output,
mirrored back, is shifted down one row before being added to the first, so a pixel only
sees rows strictly above through it and never a future pixel. The sum goes through a 1x1
mask-B convolution up to 2h and is added to the layer's input (residual).

Initial states are zero: above the first row, left of the first column (right of the last
one for the mirrored direction).

How it is computed: the layers keep the map channels last, `(H, W, B, 2h)`, so that every
1x1 convolution is one matrix product; the recurrence (steps 1 and 3-5, both directions at
once) is `diagonal_scan.diagonal_bilstm`, which walks the diagonals without materialising
the skewed map's padding and has a hand-written backward. `diagonal_scan` also holds the
plain pixel-by-pixel version that the tests compare it with.

Receptive field: through the left-to-right scan a pixel sees everything above-left and to
its left; through the shifted right-to-left scan everything above-right, with one exception
in the paper's layer: the right-to-left scan reads the layer's input features at (i-1, j'),
which by mask A never hold pixel (i-1, j') itself, so pixel (i-1, W-1) is unseen by pixels
(i, j < W-4) at any depth. `full_context=True` (the default) also feeds the image to the
first layer's right-to-left scan through an unmasked 1x1 convolution (legal: that scan's
output is used one row down), which makes the field full; `full_context=False` is the
paper's layer exactly.

Incremental sampling is possible, and `fast_sampler` (`DiagonalBiLSTMSteps`, for
`zoo.sampling`'s raster driver) does it: when pixel (i, j) is drawn,
rows < i are complete, so
- the left-to-right state at (i, j) needs the input at (i, j), h at (i-1, j) (row above,
  final) and h, c at (i, j-1) (just computed; c travels along the scan, i.e. from the left
  neighbour): one LSTM step per layer;
- the right-to-left term needed at (i, j) is that direction's state at (i-1, j), which
  depends only on rows <= i-1; once row i-1 is complete we run that direction's scan over
  row i-1, right to left, from the carried h of row i-2.
So each layer does one step per pixel (left to right) plus one right-to-left scan per row,
instead of a full pass over the image per sub-pixel. It draws exactly the naive sampler's
images (tests/test_pixelrnn.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from zoo.nn import MaskedConv2d, bias_of, check_int

from .diagonal_scan import SlotLayout, diagonal_scan
from .layers import PixelRNN, PixelRNNSteps, fp32, lstm_cell

__all__ = ["DiagonalBiLSTM", "DiagonalBiLSTMLayer", "DiagonalBiLSTMSteps"]


class DiagonalBiLSTMLayer(nn.Module):
    """One residual Diagonal BiLSTM layer on a channels-last map: `(H, W, B, 2h) -> (H, W, B, 2h)`."""

    def __init__(self, hidden: int, colours: int, image_to_right_scan: bool = False):
        super().__init__()
        h = hidden
        self.hidden = h
        # optional: the image itself into the right-to-left gates (unmasked: that scan's output
        # is only used one row down), so that the last pixel of the row above is seen
        self.image_to_state = nn.Conv2d(colours, 4 * h, 1, bias=False) if image_to_right_scan else None
        # [left-to-right o | f | i | g | right-to-left o | f | i | g], each block split into colours
        self.input_to_state = MaskedConv2d(2 * h, 8 * h, 1, "B", colours, out_blocks=8)
        # column-wise 2x1 kernels of both directions; tap 0 reads the row above, tap 1 the same row
        # (held as a grouped Conv1d for its shape and init; applied as matrices in the scan)
        self.state_to_state = nn.Conv1d(2 * h, 8 * h, 2, groups=2, bias=False)
        self.up = MaskedConv2d(h, 2 * h, 1, "B", colours)
        with torch.no_grad():  # forget-gate bias 1 (Gers et al. 2000): remember by default
            bias_of(self.input_to_state)[h : 2 * h] = 1.0
            bias_of(self.input_to_state)[5 * h : 6 * h] = 1.0
        self._layout: tuple[SlotLayout, torch.Tensor] | None = None  # index tables, for the last image size

    def state_matrix(self) -> torch.Tensor:
        """The 2x1 kernels as matrices `(2, 2h, 4h)`: per direction, [h above; h same row] -> gates."""
        h = self.hidden
        w = self.state_to_state.weight.view(2, 4 * h, h, 2)  # (direction, gates, h, tap)
        return torch.cat([w[..., 0], w[..., 1]], 2).transpose(1, 2)

    def layout(self, height: int, width: int, device: torch.device) -> tuple[SlotLayout, torch.Tensor]:
        """The scan's layout for this image size, and where each image cell reads the right-to-left
        state of the pixel above it (slot 0, zero, for the first row)."""
        if self._layout is None or (self._layout[0].height, self._layout[0].width, self._layout[1].device) != (
            height,
            width,
            device,
        ):
            lay = SlotLayout(height, width, device)
            self._layout = lay, torch.cat([lay.slots.new_zeros(width), lay.slots[1, :-width]])
        return self._layout

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """`x` `(H, W, B, 2h)`; `image` `(H, W, B, C)` encoded, used when `image_to_right_scan`."""
        H, W, B, F2 = x.shape
        h, N = self.hidden, H * W
        layout, right_above = self.layout(H, W, x.device)
        w_in = self.input_to_state.masked_weight()[:, :, 0, 0].view(2, 4 * h, F2).transpose(1, 2)  # (2, 2h, 4h)
        feats = x
        if self.image_to_state is not None:  # the image feeds the right-to-left gates only
            assert image is not None, "this layer's right-to-left scan reads the image: pass it"
            feats = torch.cat([x, image], -1)  # (H, W, B, 2h + C)
            w_img = self.image_to_state.weight[:, :, 0, 0].t()  # (C, 4h)
            w_in = torch.stack([torch.cat([w_in[0], torch.zeros_like(w_img)]), torch.cat([w_in[1], w_img])])
        cells = feats.reshape(N, -1).index_select(0, layout.cells.flatten()).view(2, N, B, -1)  # diagonal orders
        hs = diagonal_scan(
            cells, w_in.contiguous(), bias_of(self.input_to_state).view(2, 4 * h), self.state_matrix(), layout
        )  # (2, slots, B, h)
        both = hs[0].index_select(0, layout.slots[0]) + hs[1].index_select(0, right_above)  # (N, B, h)
        return (
            torch.addmm(x.reshape(N * B, F2), both.view(N * B, h), self.up.masked_weight()[:, :, 0, 0].t())
            .add_(bias_of(self.up))
            .view(H, W, B, F2)
        )


class DiagonalBiLSTM(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers. Logits `(B, C, H, W, levels)`.

    Args (the constructor's keywords are the registered config):
        channels, height, width, levels: the data (binarized MNIST: 1, 28, 28, 2).
        layers: residual Diagonal BiLSTM layers (paper, binarized MNIST: 7).
        hidden: h, features per gate and direction; the residual stream has 2h (paper: 16).
        out_features: width of the first 1x1 output convolution.
        full_context: also feed the image to the first layer's right-to-left scan (an unmasked
            1x1 convolution, C -> 4h). Without it, pixel (i-1, W-1) is unseen by pixels (i, j)
            with j < W - 4, at any depth: the right-to-left scan at row i-1 reads the features
            at (i-1, j'), which by mask A never contain pixel (i-1, j') itself, and nothing
            else after (i-1, W-1) reaches (i, j). False gives the paper's layer exactly.
    """

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 2,
        layers: int = 7,
        hidden: int = 16,
        out_features: int = 32,
        full_context: bool = True,
    ):
        super().__init__(channels, height, width, levels, hidden, out_features)
        check_int("layers", layers, 1)
        if not isinstance(full_context, bool):
            raise ValueError(f"full_context must be True or False, got {full_context!r}")
        self.full_context = full_context
        self.layers = nn.ModuleList(
            DiagonalBiLSTMLayer(hidden, channels, image_to_right_scan=full_context and k == 0) for k in range(layers)
        )

    @property
    def _diagonal_layers(self) -> Sequence[DiagonalBiLSTMLayer]:
        """`self.layers` as what it holds (to a type checker, an `nn.ModuleList` holds plain `nn.Module`s)."""
        return cast("Sequence[DiagonalBiLSTMLayer]", self.layers)

    @fp32
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.data_spec.validate(x)
        image = self.encode(x)  # (B, C, H, W) in [-1, 1]
        f = self.input_conv(image).permute(2, 3, 0, 1).contiguous()  # (H, W, B, 2h): channels last
        image_hwbc = image.permute(2, 3, 0, 1).contiguous() if self.full_context else None  # (H, W, B, C)
        for layer in self.layers:
            f = layer(f, image_hwbc)  # (H, W, B, 2h), residual inside
        w1, w2 = self.out1.masked_weight()[:, :, 0, 0], self.out2.masked_weight()[:, :, 0, 0]
        out = F.linear(F.relu(F.linear(F.relu(f), w1, self.out1.bias)), w2, self.out2.bias)  # (H, W, B, C * n_out)
        return self._to_logits(out).permute(2, 3, 0, 1, 4)  # (B, C, H, W, levels)

    def fast_sampler(self, x: torch.Tensor) -> DiagonalBiLSTMSteps:
        """Incremental steps from the start image `x` `(n, C, H, W)` (FAST SAMPLER CONTRACT, zoo/sampling.py)."""
        return DiagonalBiLSTMSteps(self, x)


class DiagonalBiLSTMSteps(PixelRNNSteps):
    """The Diagonal BiLSTM's incremental steps (see the module docstring): per pixel one
    left-to-right LSTM step per layer; per completed row one right-to-left scan over it."""

    def __init__(self, model: DiagonalBiLSTM, x: torch.Tensor):
        super().__init__(model, x)
        n, h, W = x.shape[0], model.hidden, model.data_spec.width
        self.layers: list[dict[str, Any]] = []  # per layer: its weights and carried state
        for layer in model._diagonal_layers:
            w_is = layer.input_to_state.masked_weight()[:, :, 0, 0]  # (8h, 2h)
            b_is = bias_of(layer.input_to_state)
            w_ss = layer.state_to_state.weight  # (8h, h, 2)
            zeros = w_is.new_zeros(n, h, W)
            self.layers.append(
                {
                    "is_l": w_is[: 4 * h],
                    "is_l_b": b_is[: 4 * h],
                    "is_r": w_is[4 * h :],
                    "is_r_b": b_is[4 * h :],
                    "above_l": w_ss[: 4 * h, :, 0],
                    "left_l": w_ss[: 4 * h, :, 1],
                    "above_r": w_ss[4 * h :, :, 0],
                    "right_r": w_ss[4 * h :, :, 1],
                    "up_w": layer.up.masked_weight()[:, :, 0, 0],
                    "up_b": bias_of(layer.up),
                    "row_in": w_is.new_zeros(n, 2 * h, W),  # this row's layer inputs
                    "img_r": None if layer.image_to_state is None else layer.image_to_state.weight[:, :, 0, 0],
                    "ss_l": w_is.new_zeros(n, 4 * h, W),  # above_l applied to the row above's left-to-right h
                    "h_l": zeros.clone(),
                    "c_l": zeros.clone(),  # this row's left-to-right state
                    "h_r_prev": zeros.clone(),  # right-to-left h of the row above
                }
            )

    def layers_at(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:
        for s in self.layers:
            s["row_in"][:, :, j] = f
            gates = F.linear(f, s["is_l"], s["is_l_b"]) + s["ss_l"][:, :, j]  # (n, 4h)
            if j > 0:  # state of the left neighbour: h through the 2x1 kernel, c carried as is
                gates = gates + F.linear(s["h_l"][:, :, j - 1], s["left_l"])
                h, c = lstm_cell(gates, s["c_l"][:, :, j - 1])
            else:
                h, c = lstm_cell(gates, torch.zeros_like(s["c_l"][:, :, 0]))
            s["h_l"][:, :, j], s["c_l"][:, :, j] = h, c
            f = f + F.linear(h + s["h_r_prev"][:, :, j], s["up_w"], s["up_b"])
        return f  # (n, 2h)

    def row_done(self, i: int) -> None:
        """Row i is complete: run the right-to-left scan over it and roll the left-to-right state."""
        for s in self.layers:
            n, h, W = s["h_l"].shape
            pre = (
                torch.einsum("oc,ncw->now", s["is_r"], s["row_in"])
                + s["is_r_b"].view(1, -1, 1)
                + torch.einsum("oc,ncw->now", s["above_r"], s["h_r_prev"])
            )  # (n, 4h, W)
            if s["img_r"] is not None:  # the image row i, complete now
                pre = pre + torch.einsum("oc,ncw->now", s["img_r"], self.xe[:, :, i + 3, 3 : W + 3])
            h_r = torch.zeros_like(s["h_r_prev"])
            right, c = h_r.new_zeros(n, h), h_r.new_zeros(n, h)  # zero state right of the last column
            for j in range(W - 1, -1, -1):
                right, c = lstm_cell(pre[:, :, j] + F.linear(right, s["right_r"]), c)
                h_r[:, :, j] = right
            s["h_r_prev"] = h_r
            s["ss_l"] = torch.einsum("oc,ncw->now", s["above_l"], s["h_l"])
            s["h_l"], s["c_l"] = torch.zeros_like(s["h_l"]), torch.zeros_like(s["c_l"])
