"""Gated PixelCNN, as in van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves &
Kavukcuoglu 2016, "Conditional Image Generation with PixelCNN Decoders"
(NeurIPS, arXiv:1606.05328), section 2 and Figure 2.

Two stacks remove PixelCNN's blind spot:

- the vertical stack sees every pixel in the rows above, through
  `(k//2+1) x k` convolutions over rows `i-k//2 .. i`, whose output is shifted
  down one row before the horizontal stack reads it;
- the horizontal stack sees the pixels to the left in the current row, through
  `1 x (k//2+1)` convolutions (mask A in the first layer, B after: the colour
  groups R, G, B of `masks.py` decide what the current pixel's features see).

Each layer (h hidden feature maps; `y` an optional class label):

    v_pre = Conv_v(v) + V_v[y]                     (B, 2h, H, W)
    v'    = tanh(v_pre[:h]) * sigmoid(v_pre[h:])   the gated activation
    h_pre = Conv_h(h) + Conv1x1(shift_down(v_pre)) + V_h[y]
    g     = tanh(h_pre[:h]) * sigmoid(h_pre[h:])
    h'    = Conv1x1(g) + h                         (no residual in the first layer)
    skip += Conv1x1(g)

    output: ReLU, 1x1 (mask B), ReLU, 1x1 (mask B) -> C*levels, a softmax per sub-pixel.

`sample_fast` computes the vertical stack one row at a time, when the row
above is complete, and the horizontal stack at the new pixel only, reading
earlier pixels' activations from caches.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.sampling import choose

from .common import PixelConv, check_labels, scale_input, to_logits
from .masks import MaskedConv2d

__all__ = ["GatedPixelCNN", "GatedLayer"]


def gate(x: torch.Tensor) -> torch.Tensor:
    """`tanh(first half) * sigmoid(second half)` of the feature dimension (dim 1): 2h -> h."""
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row i of the output is row i-1 of `x`; row 0 is zero. `(B, F, H, W)`."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def init_conv(conv: nn.Conv2d, gain: float) -> None:
    """Weights N(0, gain^2 / fan_in), fan_in counting only the unmasked inputs; zero bias."""
    fan_in = float(conv.mask[0].sum()) if isinstance(conv, MaskedConv2d) else conv.weight[0].numel()
    nn.init.normal_(conv.weight, 0.0, gain / max(fan_in, 1.0) ** 0.5)
    nn.init.zeros_(conv.bias)


class GatedLayer(nn.Module):
    """One layer of both stacks (Figure 2 of the paper)."""

    def __init__(self, in_channels: int, hidden: int, kernel: int, mask_type: str, colours: int,
                 skip_channels: int, num_classes: int | None, residual: bool, last: bool = False):
        super().__init__()
        self.kernel, self.residual = kernel, residual
        p = kernel // 2
        self.v_pads = (p, p, p, 0)  # left, right, top, bottom: output row i sees rows i-p .. i
        self.v_conv = nn.Conv2d(in_channels, 2 * hidden, (p + 1, kernel))
        self.v_to_h = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        # centre in the last column; [tanh | sigmoid] halves each split into colour groups
        self.h_conv = MaskedConv2d(in_channels, 2 * hidden, (1, p + 1), mask_type, colours,
                                   centre=(0, p), out_blocks=2)
        self.h_out = None if last else MaskedConv2d(hidden, hidden, 1, "B", colours)  # the last layer feeds only the skips
        self.skip = MaskedConv2d(hidden, skip_channels, 1, "B", colours)
        self.v_embed = nn.Embedding(num_classes, 2 * hidden) if num_classes else None
        self.h_embed = nn.Embedding(num_classes, 2 * hidden) if num_classes else None
        # tanh(f) * sigmoid(g) is about f/2 near 0: with N(0, 1/fan_in) weights the signal would
        # shrink 4x in variance per layer (the vertical stack has no residual path), and distant
        # pixels would barely move the output. N(0, 4/fan_in) keeps the variance through the gates.
        for conv in (self.v_conv, self.v_to_h, self.h_conv):
            init_conv(conv, gain=2.0)
        for conv in (self.h_out, self.skip):
            if conv is not None:
                init_conv(conv, gain=2.0 ** 0.5)

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None):
        """`v`, `h` `(B, F, H, W)` -> `(v', h', skip)`; `y` `(B,)` labels or None. The last layer gives h' = None."""
        v_pre = self.v_conv(F.pad(v, self.v_pads))  # (B, 2h, H, W): rows <= i
        if y is not None:
            v_pre = v_pre + self.v_embed(y)[:, :, None, None]
        h_pre = self.h_conv(h) + self.v_to_h(shift_down(v_pre))  # (B, 2h, H, W): rows < i, or row i left of j
        if y is not None:
            h_pre = h_pre + self.h_embed(y)[:, :, None, None]
        g = gate(h_pre)  # (B, h, H, W)
        if self.h_out is None:
            return None, None, self.skip(g)
        h_new = self.h_out(g) + (h if self.residual else 0)
        return gate(v_pre), h_new, self.skip(g)


class GatedPixelCNN(zoo.AutoregressiveModel):
    """Gated PixelCNN, optionally class-conditional. The constructor's arguments are its config."""

    def __init__(
        self,
        channels: int = 1,  # image channels C
        height: int = 28,
        width: int = 28,
        levels: int = 2,  # 2 for binarized MNIST, 256 for 8-bit images
        hidden: int = 32,  # h: feature maps in each stack
        layers: int = 12,  # gated layers (the first one with mask A)
        first_kernel: int = 7,  # k of the first layer: 4x7 vertical, 1x4 horizontal
        kernel: int = 3,  # k of the later layers: 2x3 vertical, 1x2 horizontal
        skip_channels: int = 64,  # skip connections are summed in this many feature maps
        out_hidden: int = 64,  # feature maps between the two output 1x1 convolutions
        num_classes: int | None = None,  # class-conditional when set: logits(x, y=labels)
    ):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        for name, v in (("hidden", hidden), ("layers", layers), ("skip_channels", skip_channels),
                        ("out_hidden", out_hidden), ("first_kernel", first_kernel), ("kernel", kernel)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name, k in (("first_kernel", first_kernel), ("kernel", kernel)):
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd, got {k}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be None or a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        C = channels
        self.layers = nn.ModuleList(
            GatedLayer(C if l == 0 else hidden, hidden, first_kernel if l == 0 else kernel,
                       "A" if l == 0 else "B", C, skip_channels, num_classes, residual=l > 0, last=l == layers - 1)
            for l in range(layers)
        )
        self.out1 = MaskedConv2d(skip_channels, out_hidden, 1, "B", C)
        self.out2 = MaskedConv2d(out_hidden, C * levels, 1, "B", C)
        init_conv(self.out1, gain=2.0 ** 0.5)  # He init before a ReLU
        init_conv(self.out2, gain=1.0)

    def logits(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        """`(B, C, H, W)` integer levels (and labels `y` if conditional) -> `(B, C, H, W, levels)` logits."""
        spec = self.data_spec
        x = spec.validate(x)
        y = check_labels(y, x.shape[0], self.num_classes, x.device)
        v = h = scale_input(x, spec.levels, self.out2.weight.dtype)  # (B, C, H, W)
        skip = 0
        for layer in self.layers:
            v, h, s = layer(v, h, y)  # (B, h, H, W) each; s (B, skip, H, W)
            skip = skip + s
        out = self.out2(F.relu(self.out1(F.relu(skip))))  # (B, C*levels, H, W)
        return to_logits(out, spec.channels, spec.levels)

    @torch.no_grad()
    def sample_fast(
        self,
        u: torch.Tensor,
        *,
        temperature: float = 1.0,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        progress: bool = False,
        y: Any = None,
        **cond: Any,
    ) -> torch.Tensor:
        """Cached sampler: the same images as `zoo.sampling.sample_naive` for the same `u` (and `y`)."""
        if cond:
            raise ValueError(f"GatedPixelCNN takes only the class label y; got {', '.join(map(repr, cond))}")
        from tqdm.auto import tqdm

        spec = self.data_spec
        n, C, H, W = u.shape
        L = spec.levels
        dev, dt = self.out2.weight.device, self.out2.weight.dtype
        y = check_labels(y, n, self.num_classes, dev)
        x = torch.zeros((n, C, H, W), dtype=torch.long, device=dev)
        if mask is not None:
            x = torch.where(mask, known, x)

        # Per layer l: v_in[l], its vertical input padded as v_conv pads it (image row r, column c at
        # [p + r, p + c], p = kernel // 2), filled a row at a time; h_in[l], its horizontal input padded on
        # the left (image (r, c) at [h_row[l] + r, p + c]), filled a pixel at a time. Layer 0 reads the image.
        p0 = self.layers[0].kernel // 2
        img = F.pad(scale_input(x, L, dt), self.layers[0].v_pads)  # (n, C, H+p0, W+2p0)
        v_in, h_in, h_row = [img], [img], [p0]
        for layer in self.layers[1:]:
            p, hid = layer.kernel // 2, layer.skip.in_channels
            v_in.append(torch.zeros(n, hid, H + p, W + 2 * p, device=dev, dtype=dt))
            h_in.append(torch.zeros(n, hid, H, W + p, device=dev, dtype=dt))
            h_row.append(0)
        v_in.append(None)  # the last layer's outputs feed no further layer
        h_in.append(None)
        h_convs = [PixelConv(layer.h_conv) for layer in self.layers]
        h_outs = [PixelConv(layer.h_out) if layer.h_out is not None else None for layer in self.layers]
        skips = [PixelConv(layer.skip) for layer in self.layers]
        out1, out2 = PixelConv(self.out1), PixelConv(self.out2)
        h_bias = [layer.h_embed(y) if y is not None else None for layer in self.layers]  # (n, 2h)
        v_bias = [layer.v_embed(y)[:, :, None, None] if y is not None else None for layer in self.layers]
        # v_to_h of the row above for the current row, per layer: (W, n, 2h); row 0 has nothing above.
        zero_row = torch.zeros(n, self.layers[0].v_to_h.in_channels, 1, W, device=dev, dtype=dt)
        v_links = [self._row_link(layer, zero_row) for layer in self.layers]

        with tqdm(total=H * W, disable=not progress, desc="fast sampling", unit="pixel", leave=False) as bar:
            for i in range(H):
                for j in range(W):
                    for c in range(C):
                        skip = 0
                        for l, layer in enumerate(self.layers):
                            hp = h_convs[l](h_in[l], h_row[l] + i, j) + v_links[l][j]  # (n, 2h)
                            if h_bias[l] is not None:
                                hp = hp + h_bias[l]
                            g = gate(hp)  # (n, h)
                            skip = skips[l].vector(g) + skip  # (n, skip)
                            if h_outs[l] is None:  # the last layer
                                break
                            h_new = h_outs[l].vector(g)  # (n, h)
                            if layer.residual:
                                h_new = h_new + h_in[l][:, :, h_row[l] + i, layer.kernel // 2 + j]
                            h_in[l + 1][:, :, h_row[l + 1] + i, self.layers[l + 1].kernel // 2 + j] = h_new
                        out = out2.vector(out1.vector(F.relu(skip)).relu_())  # (n, C*L)
                        level = choose(out[:, c * L : (c + 1) * L], u[:, c, i, j], temperature)  # (n,)
                        if mask is not None:
                            level = torch.where(mask[:, c, i, j], known[:, c, i, j], level)
                        x[:, c, i, j] = level
                        img[:, c, p0 + i, p0 + j] = scale_input(level, L, dt)
                    bar.update(1)
                # Row i is complete: run the vertical stack on it, for the links into row i+1.
                for l, layer in enumerate(self.layers):
                    k = layer.kernel
                    window = v_in[l][:, :, i : i + k // 2 + 1]  # (n, F, k//2+1, W+2p): rows i-p .. i
                    v_pre = layer.v_conv(window)  # (n, 2h, 1, W)
                    if v_bias[l] is not None:
                        v_pre = v_pre + v_bias[l]
                    v_links[l] = self._row_link(layer, v_pre)
                    if v_in[l + 1] is not None:
                        q = self.layers[l + 1].kernel // 2
                        v_in[l + 1][:, :, q + i, q : q + W] = gate(v_pre)[:, :, 0]
        return x

    @staticmethod
    def _row_link(layer: GatedLayer, v_pre_row: torch.Tensor) -> torch.Tensor:
        """The vertical -> horizontal link of one row: `(n, 2h, 1, W)` -> `(W, n, 2h)`."""
        return layer.v_to_h(v_pre_row)[:, :, 0].permute(2, 0, 1).contiguous()
