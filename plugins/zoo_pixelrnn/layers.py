"""Pieces shared by the Row LSTM and the Diagonal BiLSTM (van den Oord et al. 2016a, "Pixel
Recurrent Neural Networks", arXiv:1601.06759, section 3 and Table 1).

- masks A/B with colour groups (section 3.4) come from `zoo_pixelcnn.masks`: every feature
  map belongs to one colour group (R, G or B, contiguous blocks); at the kernel centre a
  connection from group a to group b is open when a < b (mask A) or a <= b (mask B).
- `PixelRNN`: the parts around the recurrent layers, common to both models:
  7x7 mask-A input convolution (2h features), the residual LSTM layers (the subclass
  builds them), then ReLU + two 1x1 mask-B convolutions and a sigmoid (2 levels) or a
  softmax over `levels` per sub-pixel.
- the fast-sampler driver: visits sub-pixels in raster order and asks the model's
  incremental hooks for the logits of one position at a time.

Shapes: B batch, C image channels, H x W image, h hidden units per gate, F = 2h features.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from zoo.autoregressive import AutoregressiveModel
from zoo.protocols import DataSpec
from zoo.sampling import choose
from zoo_pixelcnn.masks import MaskedConv2d

__all__ = ["PixelRNN", "MaskedConv2d", "check_int", "lstm_cell", "fp32"]


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
    sig = torch.sigmoid(gates[..., :3 * h])
    c = sig[..., h:2 * h] * c + sig[..., 2 * h:] * torch.tanh(gates[..., 3 * h:])
    return sig[..., :h] * torch.tanh(c), c


def check_int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


# --------------------------------------------------------------------------- the model around the LSTMs

class PixelRNN(AutoregressiveModel):
    """Input conv, residual recurrent layers (built by the subclass in `self.layers`), output head.

    The input image is fed as levels scaled to [-1, 1]. Binary data (levels == 2) gets one
    logit per sub-pixel and a sigmoid, as in the paper; `logits` returns it as the
    equivalent 2-way softmax `[0, s]`.
    """

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
        """Integer levels -> floats in [-1, 1]."""
        return x.to(self.input_conv.weight.dtype) * (2.0 / (self.data_spec.levels - 1)) - 1.0

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    # -- per-position pieces for the fast samplers (plain matrices, computed once per sampling run)
    def _position_weights(self) -> dict[str, torch.Tensor]:
        """Masked weights of the input conv (top 4 kernel rows, flattened) and the head."""
        w_in = self.input_conv.masked_weight()[:, :, :4, :]  # rows i-3..i of the 7x7 kernel
        return {
            "in_w": w_in.reshape(w_in.shape[0], -1), "in_b": self.input_conv.bias,
            "o1_w": self.out1.masked_weight()[:, :, 0, 0], "o1_b": self.out1.bias,
            "o2_w": self.out2.masked_weight()[:, :, 0, 0], "o2_b": self.out2.bias,
        }

    def _position_input(self, W_: dict[str, torch.Tensor], xe: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """The input conv at pixel (i, j) from the zero-padded encoded image `xe` `(n, C, H+6, W+6)`: `(n, 2h)`."""
        patch = xe[:, :, i:i + 4, j:j + 7].reshape(xe.shape[0], -1)  # (n, C*4*7)
        return F.linear(patch, W_["in_w"], W_["in_b"])

    def _position_head(self, W_: dict[str, torch.Tensor], f: torch.Tensor) -> torch.Tensor:
        """`(n, 2h)` features of one pixel -> `(n, C, levels)` logits."""
        out = F.linear(F.relu(F.linear(F.relu(f), W_["o1_w"], W_["o1_b"])), W_["o2_w"], W_["o2_b"])
        return self._to_logits(out)

    # hooks a subclass implements for `sample_fast`
    def _fast_begin(self, n: int, device: torch.device) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fast_position(self, state: dict[str, Any], xe: torch.Tensor, i: int, j: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _fast_row_end(self, state: dict[str, Any], i: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def _sample_incremental(self, u: torch.Tensor, *, temperature: float, known: torch.Tensor | None,
                            mask: torch.Tensor | None, progress: bool = False) -> torch.Tensor:
        """The raster-order driver of the FAST SAMPLER CONTRACT (zoo/sampling.py).

        For each pixel it calls `_fast_position` once per colour channel (G's logits need the
        R just drawn); the last call leaves the layers' state of that pixel final, because no
        feature of a pixel depends on its own last channel (mask A, then mask B).
        """
        from tqdm.auto import tqdm

        n, C, H, W = u.shape
        device = u.device
        L = self.data_spec.levels
        x = torch.zeros((n, C, H, W), dtype=torch.long, device=device)
        if mask is not None:
            x = torch.where(mask, known, x)
        xe = torch.zeros((n, C, H + 6, W + 6), device=device, dtype=self.input_conv.weight.dtype)  # encoded, zero-padded by 3
        xe[:, :, 3:H + 3, 3:W + 3] = self.encode(x)
        state = self._fast_begin(n, device)
        scale = 2.0 / (L - 1)
        with tqdm(total=H * W, disable=not progress, desc="fast sampling", unit="pixel", leave=False) as bar:
            for i in range(H):
                for j in range(W):
                    for c in range(C):
                        all_known = mask is not None and bool(mask[:, c, i, j].all())
                        if all_known and c < C - 1:
                            continue  # nothing to draw, and the state is computed at the last channel
                        logits = self._fast_position(state, xe, i, j)[:, c]  # (n, levels)
                        if all_known:
                            continue
                        level = choose(logits, u[:, c, i, j], temperature)
                        if mask is not None:
                            level = torch.where(mask[:, c, i, j], known[:, c, i, j], level)
                        x[:, c, i, j] = level
                        xe[:, c, i + 3, j + 3] = level.to(xe.dtype) * scale - 1.0
                    bar.update(1)
                self._fast_row_end(state, i)
        return x
