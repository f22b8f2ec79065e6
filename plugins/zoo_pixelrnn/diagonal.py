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
Both directions run in the same column loop (a grouped convolution holds both kernels).

Initial states are zero: above the first row, left of the first column (right of the last
one for the mirrored direction). The skewed map's padding cells are reset to zero at every
step, so they carry nothing.

Receptive field: through the left-to-right scan a pixel sees everything above-left and to
its left; through the shifted right-to-left scan everything above-right, with one exception
in the paper's layer: the right-to-left scan reads the layer's input features at (i-1, j'),
which by mask A never hold pixel (i-1, j') itself, so pixel (i-1, W-1) is unseen by pixels
(i, j < W-4) at any depth. `full_context=True` (the default) also feeds the image to the
first layer's right-to-left scan through an unmasked 1x1 convolution (legal: that scan's
output is used one row down), which makes the field full; `full_context=False` is the
paper's layer exactly.

Incremental sampling is possible, and `sample_fast` does it: when pixel (i, j) is drawn,
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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MaskedConv2d, PixelRNN, check_int, lstm_cell

__all__ = ["DiagonalBiLSTM", "DiagonalBiLSTMLayer", "skew", "unskew"]


def skew(x: torch.Tensor) -> torch.Tensor:
    """`(B, F, H, W) -> (B, F, H, W + H - 1)`: row i shifted right by i, zeros elsewhere."""
    B, Fe, H, W = x.shape
    x = F.pad(x, (0, H)).flatten(2)  # (B, F, H * (W + H)): row i starts at i * (W + H)
    return x[:, :, : H * (W + H - 1)].view(B, Fe, H, W + H - 1)  # now row i starts at i * (W + H - 1)


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of `skew`: `(B, F, H, W + H - 1) -> (B, F, H, W)`."""
    B, Fe, H, T = x.shape
    x = F.pad(x.flatten(2), (0, H)).view(B, Fe, H, T + 1)
    return x[:, :, :, :width]


class DiagonalBiLSTMLayer(nn.Module):
    """One residual Diagonal BiLSTM layer: `(B, 2h, H, W) -> (B, 2h, H, W)`."""

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
        # (held as a grouped Conv1d for its shape and init; applied as matrices in the loop)
        self.state_to_state = nn.Conv1d(2 * h, 8 * h, 2, groups=2, bias=False)
        self.up = MaskedConv2d(h, 2 * h, 1, "B", colours)
        with torch.no_grad():  # forget-gate bias 1 (Gers et al. 2000): remember by default
            self.input_to_state.bias[h:2 * h] = 1.0
            self.input_to_state.bias[5 * h:6 * h] = 1.0

    def state_matrix(self) -> torch.Tensor:
        """The 2x1 kernels as matrices `(2, 2h, 4h)`: per direction, [h above; h same row] -> gates."""
        h = self.hidden
        w = self.state_to_state.weight.view(2, 4 * h, h, 2)  # (direction, gates, h, tap)
        return torch.cat([w[..., 0], w[..., 1]], 2).transpose(1, 2)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """`x` `(B, 2h, H, W)`; `image` `(B, C, H, W)` encoded, used when `image_to_right_scan`."""
        B, _, H, W = x.shape
        h = self.hidden
        gates_in = self.input_to_state(x)  # (B, 8h, H, W)
        right_in = gates_in[:, 4 * h:]
        if self.image_to_state is not None:
            right_in = right_in + self.image_to_state(image)
        gates_in = torch.cat([gates_in[:, :4 * h], right_in.flip(3)], 1)  # 2nd direction mirrored
        T = W + H - 1
        # channels last inside the loop, directions as a batch of 2: small matmuls are much
        # cheaper than small convolutions
        gates_in = skew(gates_in).view(B, 2, 4 * h, H, T).permute(4, 1, 0, 3, 2).reshape(T, 2, B * H, 4 * h)
        gates_in = gates_in.unbind(0)  # T x (2, B*H, 4h); one backward node (indexing makes T full-size grads)
        w_ss = self.state_matrix()  # (2, 2h, 4h): [row above; same row] -> gates, per direction
        cols = torch.arange(T, device=x.device).view(1, T) - torch.arange(H, device=x.device).view(H, 1)
        valid = ((cols >= 0) & (cols < W)).to(x.dtype).t().reshape(T, 1, 1, H, 1)  # image cells of each column
        state_h = x.new_zeros(2, B, H, h)  # hidden state of the previous column, per direction
        state_c = x.new_zeros(2, B, H, h)
        outs = []
        for t in range(T):  # columns of the skewed map = diagonals of the image
            above = F.pad(state_h, (0, 0, 1, 0))[:, :, :H]  # (2, B, H, h): the row above, zero on top
            inp = torch.cat([above, state_h], -1).view(2, B * H, 2 * h)
            pre = torch.baddbmm(gates_in[t], inp, w_ss).view(2, B, H, 4 * h)
            hh, cc = lstm_cell(pre, state_c)
            state_h, state_c = hh * valid[t], cc * valid[t]  # padding cells stay zero
            outs.append(state_h)
        hs = torch.stack(outs, -1)  # (2, B, H, h, T)
        hs = unskew(hs.permute(1, 0, 3, 2, 4).reshape(B, 2 * h, H, T), W)  # (B, 2h, H, W)
        left, right = hs[:, :h], hs[:, h:].flip(3)
        right = F.pad(right, (0, 0, 1, 0))[:, :, :H]  # shifted down one row: only rows above are seen
        return x + self.up(left + right)


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

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28, levels: int = 2,
                 layers: int = 7, hidden: int = 16, out_features: int = 32, full_context: bool = True):
        super().__init__(channels, height, width, levels, hidden, out_features)
        check_int("layers", layers, 1)
        if not isinstance(full_context, bool):
            raise ValueError(f"full_context must be True or False, got {full_context!r}")
        self.full_context = full_context
        self.layers = nn.ModuleList(DiagonalBiLSTMLayer(hidden, channels, image_to_right_scan=full_context and k == 0)
                                    for k in range(layers))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.data_spec.validate(x)
        image = self.encode(x)  # (B, C, H, W) in [-1, 1]
        f = self.input_conv(image)  # (B, 2h, H, W)
        for layer in self.layers:
            f = layer(f, image)  # (B, 2h, H, W), residual inside
        out = self.out2(F.relu(self.out1(F.relu(f))))  # (B, C * n_out, H, W)
        return self._to_logits(out.permute(0, 2, 3, 1)).permute(0, 3, 1, 2, 4)  # (B, C, H, W, levels)

    # ------------------------------------------------------------------ fast sampler
    def sample_fast(self, u: torch.Tensor, *, temperature: float = 1.0, known: torch.Tensor | None = None,
                    mask: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
        """Incremental sampler (FAST SAMPLER CONTRACT in zoo/sampling.py): `(n, C, H, W)` levels."""
        return self._sample_incremental(u, temperature=temperature, known=known, mask=mask, progress=progress)

    def _fast_begin(self, n: int, device: torch.device) -> dict[str, Any]:
        h, W = self.hidden, self.data_spec.width
        layers = []
        for layer in self.layers:
            w_is = layer.input_to_state.masked_weight()[:, :, 0, 0]  # (8h, 2h)
            b_is = layer.input_to_state.bias
            w_ss = layer.state_to_state.weight  # (8h, h, 2)
            zeros = w_is.new_zeros(n, h, W)
            layers.append({
                "is_l": w_is[:4 * h], "is_l_b": b_is[:4 * h], "is_r": w_is[4 * h:], "is_r_b": b_is[4 * h:],
                "above_l": w_ss[:4 * h, :, 0], "left_l": w_ss[:4 * h, :, 1],
                "above_r": w_ss[4 * h:, :, 0], "right_r": w_ss[4 * h:, :, 1],
                "up_w": layer.up.masked_weight()[:, :, 0, 0], "up_b": layer.up.bias,
                "row_in": w_is.new_zeros(n, 2 * h, W),  # this row's layer inputs
                "img_r": None if layer.image_to_state is None else layer.image_to_state.weight[:, :, 0, 0],
                "ss_l": w_is.new_zeros(n, 4 * h, W),  # above_l applied to the row above's left-to-right h
                "h_l": zeros.clone(), "c_l": zeros.clone(),  # this row's left-to-right state
                "h_r_prev": zeros.clone(),  # right-to-left h of the row above
            })
        return {"w": self._position_weights(), "layers": layers, "xe": None}

    def _fast_position(self, state: dict[str, Any], xe: torch.Tensor, i: int, j: int) -> torch.Tensor:
        state["xe"] = xe  # the padded encoded image, read again at the end of the row
        f = self._position_input(state["w"], xe, i, j)  # (n, 2h)
        for s in state["layers"]:
            s["row_in"][:, :, j] = f
            gates = F.linear(f, s["is_l"], s["is_l_b"]) + s["ss_l"][:, :, j]  # (n, 4h)
            if j > 0:  # state of the left neighbour: h through the 2x1 kernel, c carried as is
                gates = gates + F.linear(s["h_l"][:, :, j - 1], s["left_l"])
                h, c = lstm_cell(gates, s["c_l"][:, :, j - 1])
            else:
                h, c = lstm_cell(gates, torch.zeros_like(s["c_l"][:, :, 0]))
            s["h_l"][:, :, j], s["c_l"][:, :, j] = h, c
            f = f + F.linear(h + s["h_r_prev"][:, :, j], s["up_w"], s["up_b"])
        return self._position_head(state["w"], f)  # (n, C, levels)

    def _fast_row_end(self, state: dict[str, Any], i: int) -> None:
        """Row i is complete: run the right-to-left scan over it and roll the left-to-right state."""
        for s in state["layers"]:
            n, h, W = s["h_l"].shape
            pre = (torch.einsum("oc,ncw->now", s["is_r"], s["row_in"]) + s["is_r_b"].view(1, -1, 1)
                   + torch.einsum("oc,ncw->now", s["above_r"], s["h_r_prev"]))  # (n, 4h, W)
            if s["img_r"] is not None:  # the image row i, complete now
                W_ = self.data_spec.width
                pre = pre + torch.einsum("oc,ncw->now", s["img_r"], state["xe"][:, :, i + 3, 3:W_ + 3])
            h_r = torch.zeros_like(s["h_r_prev"])
            right, c = h_r.new_zeros(n, h), h_r.new_zeros(n, h)  # zero state right of the last column
            for j in range(W - 1, -1, -1):
                right, c = lstm_cell(pre[:, :, j] + F.linear(right, s["right_r"]), c)
                h_r[:, :, j] = right
            s["h_r_prev"] = h_r
            s["ss_l"] = torch.einsum("oc,ncw->now", s["above_l"], s["h_l"])
            s["h_l"], s["c_l"] = torch.zeros_like(s["h_l"]), torch.zeros_like(s["c_l"])
