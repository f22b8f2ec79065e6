"""Gated PixelCNN, as in van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves &
Kavukcuoglu 2016, "Conditional Image Generation with PixelCNN Decoders"
(NeurIPS, arXiv:1606.05328), section 2 and Figure 2.

Two stacks remove PixelCNN's blind spot:

- the vertical stack sees every pixel in the rows above, through
  `(k//2+1) x k` convolutions over rows `i-k//2 .. i`, whose output is shifted
  down one row before the horizontal stack reads it;
- the horizontal stack sees the pixels to the left in the current row, through
  `1 x (k//2+1)` convolutions (mask A in the first layer, B after: the colour
  groups R, G, B of `zoo.nn` decide what the current pixel's features see).

Each layer (h hidden feature maps; `y` an optional class label):

    v_pre = Conv_v(v) + V_v[y]                     (B, 2h, H, W)
    v'    = tanh(v_pre[:h]) * sigmoid(v_pre[h:])   the gated activation
    h_pre = Conv_h(h) + Conv1x1(shift_down(v_pre)) + V_h[y]
    g     = tanh(h_pre[:h]) * sigmoid(h_pre[h:])
    h'    = Conv1x1(g) + h                         (no residual in the first layer)
    skip += Conv1x1(g)

    output: ReLU, 1x1 (mask B), ReLU, 1x1 (mask B) -> C*levels, a softmax per sub-pixel.

`fast_sampler` gives `zoo.sampling`'s raster driver incremental steps (`FastSteps`) that
compute the vertical stack one row at a time, when the row above is complete, and the horizontal
stack at the new pixel only, reading earlier pixels' activations from caches.

Speed, with the same arithmetic (up to float rounding): feature maps are
channels-last (see `common.py`); the first layer's two convolutions of the
image are matrix products over image patches; `v_to_h`'s bias is folded into Conv_h's and the one-row
shift is an in-place add (`add_shifted_down`); the skip 1x1 convolutions are
accumulated by the matrix products themselves (`addmm_`); the gates have a
hand-written backward (`_Gate`); scoring without autograd runs large batches
in cache-sized chunks. Most of the training time is the vertical stack's
(k//2+1) x k convolutions, which already run near the CPU's peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.nn import MaskedConv2d, PixelConv, bias_of, check_int, fast_tanh, scale_input

from .common import check_labels, image_patches, inference_chunks, to_logits

__all__ = ["GatedPixelCNN", "GatedLayer", "FastSteps"]


def gate(x: torch.Tensor) -> torch.Tensor:
    """`tanh(first half) * sigmoid(second half)` of the feature dimension (dim 1): 2h -> h."""
    if torch.is_grad_enabled():
        return _Gate.apply(x)
    f, g = _halves(x)
    return fast_tanh(f).mul_(torch.sigmoid(g))  # inference: one full-size tensor fewer


def _halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of `x` `(B, 2h, ...)` along dim 1, as views; for a channels-last bfloat16/float16 `x`,
    as dense copies (one copy of `x`): PyTorch's reduced-precision sigmoid/tanh run several times slower
    on a channels-last half, whose rows of h values are strided, than on a dense tensor."""
    if (
        x.dtype in (torch.bfloat16, torch.float16)
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        B, F2, H, W = x.shape
        halves = (
            x.permute(0, 2, 3, 1).unflatten(-1, (2, F2 // 2)).permute(3, 0, 1, 2, 4).contiguous()
        )  # (2, B, H, W, h)
        return halves[0].permute(0, 3, 1, 2), halves[1].permute(0, 3, 1, 2)  # (B, h, H, W) channels-last each
    f, g = x.chunk(2, dim=1)
    return f, g


class _Gate(torch.autograd.Function):
    """`gate(x)` with autograd: the backward writes the two halves' gradients straight into one tensor
    (autograd would compute each half's, then copy both into a new tensor)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        f, g = _halves(x)
        t, s = fast_tanh(f), torch.sigmoid(g)  # (B, h, ...) each
        ctx.save_for_backward(t, s)
        ctx.x_shape = x.shape
        ctx.channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        return t * s

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        t, s = ctx.saved_tensors
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        out = torch.empty(ctx.x_shape, dtype=grad.dtype, device=grad.device, memory_format=fmt)  # (B, 2h, ...)
        h = t.shape[1]
        torch.ops.aten.tanh_backward.grad_input(grad * s, t, grad_input=out[:, :h])  # grad*s*(1 - t^2)
        torch.ops.aten.sigmoid_backward.grad_input(grad * t, s, grad_input=out[:, h:])  # grad*t*s*(1 - s)
        return out


class _AddShiftedDown(torch.autograd.Function):
    """`a += shift_down(b)` in place, and its gradient in one copy (autograd's pad-and-slice of `b`
    would make several): row i of `a` gets `b[i-1]`, row 0 nothing. `(B, F, H, W)`."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a[:, :, 1:] += b[:, :, :-1]
        ctx.mark_dirty(a)
        return a

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grad_b = torch.empty_like(grad)
        grad_b[:, :, :-1] = grad[:, :, 1:]  # b's row i went to row i+1
        grad_b[:, :, -1:] = 0  # b's last row went nowhere
        return grad, grad_b


def add_shifted_down(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a + shift_down(b)`, written into `a` (a fresh tensor that nothing else reads, e.g. a conv output):
    `shift_down` moves every row one down (row i of the result gets `b[i-1]`, row 0 none). `(B, F, H, W)`."""
    return _AddShiftedDown.apply(a, b)


def _embed(table: nn.Embedding | None, y: torch.Tensor) -> torch.Tensor:
    """`table(y)` `(n, 2h)`: labels `y` reach only a class-conditional layer, which has the table."""
    assert table is not None
    return table(y)


def init_conv(conv: nn.Conv2d, gain: float) -> None:
    """Weights N(0, gain^2 / fan_in), fan_in counting only the unmasked inputs; zero bias."""
    if conv.weight.is_meta:  # zoo.factory counting parameters: no values to initialise
        return
    fan_in = float(conv.get_buffer("mask")[0].sum()) if isinstance(conv, MaskedConv2d) else conv.weight[0].numel()
    nn.init.normal_(conv.weight, 0.0, gain / max(fan_in, 1.0) ** 0.5)
    nn.init.zeros_(bias_of(conv))


class GatedLayer(nn.Module):
    """One layer of both stacks (Figure 2 of the paper)."""

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        kernel: int,
        mask_type: str,
        colours: int,
        skip_channels: int,
        num_classes: int | None,
        residual: bool,
        last: bool = False,
        first: bool = False,
    ):
        super().__init__()
        self.kernel, self.residual, self.first = kernel, residual, first  # the first layer reads the image
        p = kernel // 2
        self.v_pads = (p, p, p, 0)  # left, right, top, bottom: output row i sees rows i-p .. i
        self.v_conv = nn.Conv2d(in_channels, 2 * hidden, (p + 1, kernel))
        self.v_to_h = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        # centre in the last column; [tanh | sigmoid] halves each split into colour groups
        self.h_conv = MaskedConv2d(in_channels, 2 * hidden, (1, p + 1), mask_type, colours, centre=(0, p), out_blocks=2)
        self.h_out = (
            None if last else MaskedConv2d(hidden, hidden, 1, "B", colours)
        )  # the last layer feeds only the skips
        self.skip = MaskedConv2d(hidden, skip_channels, 1, "B", colours)
        self.v_embed = nn.Embedding(num_classes, 2 * hidden) if num_classes else None
        self.h_embed = nn.Embedding(num_classes, 2 * hidden) if num_classes else None
        # tanh(f) * sigmoid(g) is about f/2 near 0: with N(0, 1/fan_in) weights the signal would
        # shrink 4x in variance per layer (the vertical stack has no residual path), and distant
        # pixels would barely move the output. N(0, 4/fan_in) keeps the variance through the gates.
        for conv in (self.v_conv, self.v_to_h, self.h_conv):
            init_conv(conv, gain=2.0)
        for out_conv in (self.h_out, self.skip):
            if out_conv is not None:
                init_conv(out_conv, gain=2.0**0.5)

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """`v`, `h` `(B, F, H, W)` -> `(v', h', skip)`; `y` `(B,)` labels or None. The last layer gives h' = None.

        (The model itself calls `stacks` and sums the skip connections of all layers in one buffer.)
        """
        v_new, h_new, g = self.stacks(v, h, y)
        return v_new, h_new, self.skip(g)

    def stacks(
        self, v: torch.Tensor, h: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """`v`, `h` `(B, F, H, W)` channels-last -> `(v', h', g)`: both stacks' outputs `(B, h, H, W)`
        (None for the last layer) and the horizontal gate's output `g` `(B, h, H, W)`, which the skip
        convolution reads. The first layer reads the image: `v` and `h` are both the scaled `(B, C, H, W)`.
        """
        p = self.kernel // 2
        if self.first:
            v_pre, h_pre = self._image_convs(v)
        else:
            # Conv_v over rows i-p .. i: the input padded p rows above (and p columns at each side by conv2d)
            v_pre = F.conv2d(
                F.pad(v, (0, 0, p, 0)), self.v_conv.weight, self.v_conv.bias, padding=(0, p)
            )  # (B, 2h, H, W)
            # Conv_h over columns j-p .. j (masked at j); its bias carries v_to_h's too (see below)
            h_pre = F.conv2d(
                F.pad(h, (p, 0, 0, 0)), self.h_conv.causal_weight(), bias_of(self.h_conv) + bias_of(self.v_to_h)
            )  # (B, 2h, H, W)
        if y is not None:
            v_pre = v_pre + _embed(self.v_embed, y)[:, :, None, None]
        # v_to_h(shift_down(v_pre)): row i of h_pre gets v_to_h of v_pre's row i-1; row 0 only v_to_h's
        # bias (shift_down's zero row), which h_pre already has.
        h_pre = add_shifted_down(h_pre, F.conv2d(v_pre, self.v_to_h.weight))  # (B, 2h, H, W)
        if y is not None:
            h_pre = h_pre + _embed(self.h_embed, y)[:, :, None, None]
        g = gate(h_pre)  # (B, h, H, W)
        if self.h_out is None:
            return None, None, g
        h_new = self.h_out(g)  # (B, h, H, W)
        if self.residual:
            h_new = h_new.add_(h)  # into the fresh conv output (its backward does not need it)
        return gate(v_pre), h_new, g

    def _image_convs(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's Conv_v and Conv_h of the scaled image `(B, C, H, W)`, as matrix products over
        each pixel's causal patch (rows i-p .. i, columns j-p .. j+p): `(v_pre, h_pre)`, each `(B, 2h, H, W)`
        channels-last; h_pre includes v_to_h's bias. Conv_h's 1 x (p+1) window is the patch's last row,
        left part, so its weight is placed there in a patch-sized kernel of zeros."""
        p = self.kernel // 2
        patches = image_patches(img, p + 1, p, p)  # (B, H, W, C*(p+1)*k)
        wv = self.v_conv.weight  # (2h, C, p+1, k)
        wh = F.pad(self.h_conv.causal_weight(), (0, p, p, 0))  # (2h, C, 1, p+1) -> (2h, C, p+1, k)
        v_pre = F.linear(patches, wv.reshape(wv.shape[0], -1), self.v_conv.bias)  # (B, H, W, 2h)
        h_pre = F.linear(patches, wh.reshape(wh.shape[0], -1), bias_of(self.h_conv) + bias_of(self.v_to_h))
        return v_pre.permute(0, 3, 1, 2), h_pre.permute(0, 3, 1, 2)


class GatedPixelCNN(zoo.AutoregressiveModel):
    """Gated PixelCNN, optionally class-conditional. The constructor's arguments are its config."""

    def __init__(
        self,
        channels: int = 1,  # image channels C
        height: int = 28,
        width: int = 28,
        levels: int = 2,  # 2 for binarized MNIST, 256 for 8-bit images
        hidden: int = 32,  # h: feature maps in each stack
        layers: int = 13,  # gated layers (the first one with mask A)
        first_kernel: int = 7,  # k of the first layer: 4x7 vertical, 1x4 horizontal
        kernel: int = 5,  # k of the later layers: 3x5 vertical, 1x3 horizontal
        skip_channels: int = 64,  # skip connections are summed in this many feature maps
        out_hidden: int = 64,  # feature maps between the two output 1x1 convolutions
        num_classes: int | None = None,  # class-conditional when set: logits(x, y=labels)
    ):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        for name, v in (
            ("hidden", hidden),
            ("layers", layers),
            ("skip_channels", skip_channels),
            ("out_hidden", out_hidden),
            ("first_kernel", first_kernel),
            ("kernel", kernel),
        ):
            check_int(name, v)
        for name, k in (("first_kernel", first_kernel), ("kernel", kernel)):
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd, got {k}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be None or a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        C = channels
        self.layers = nn.ModuleList(
            GatedLayer(
                C if index == 0 else hidden,
                hidden,
                first_kernel if index == 0 else kernel,
                "A" if index == 0 else "B",
                C,
                skip_channels,
                num_classes,
                residual=index > 0,
                last=index == layers - 1,
                first=index == 0,
            )
            for index in range(layers)
        )
        self.out1 = MaskedConv2d(skip_channels, out_hidden, 1, "B", C)
        self.out2 = MaskedConv2d(out_hidden, C * levels, 1, "B", C)
        init_conv(self.out1, gain=2.0**0.5)  # He init before a ReLU
        init_conv(self.out2, gain=1.0)

    @property
    def _gated_layers(self) -> Sequence[GatedLayer]:
        """`self.layers` as what it holds (to a type checker, an `nn.ModuleList` holds plain Modules)."""
        return cast("Sequence[GatedLayer]", self.layers)

    def logits(self, x: torch.Tensor, y: Any = None) -> torch.Tensor:
        """`(B, C, H, W)` integer levels (and labels `y` if conditional) -> `(B, C, H, W, levels)` logits.

        Without autograd (scoring), large batches run in chunks of a few MiB of activations each (see
        `common.inference_chunks`): the same logits, from tensors that stay in cache."""
        spec = self.data_spec
        x = spec.validate(x)
        y = check_labels(y, x.shape[0], self.num_classes, x.device)
        widest = max(
            2 * self._gated_layers[0].skip.in_channels,
            self.out1.in_channels,
            self.out1.out_channels,
            self.out2.out_channels,
        )
        n = inference_chunks(x, widest, self.out2.weight.dtype)
        if n > 1:
            ys = [None] * n if y is None else y.tensor_split(n)
            return torch.cat([self._logits(xc, yc) for xc, yc in zip(x.tensor_split(n), ys, strict=True)])
        return self._logits(x, y)

    def _logits(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """`logits` of validated `x` `(B, C, H, W)` and labels `y` `(B,)` or None."""
        spec = self.data_spec
        v: torch.Tensor | None
        h: torch.Tensor | None
        v = h = scale_input(x, spec.levels, self.out2.weight.dtype)  # (B, C, H, W)
        B, _, H, W = x.shape
        skip = None  # (B*H*W, skip): the running sum of the skip connections, pixels as rows
        for layer in self._gated_layers:
            assert v is not None and h is not None  # only the last layer gives None, and nothing reads it
            v, h, g = layer.stacks(v, h, y)  # (B, h, H, W) each, channels-last
            skip = self._add_skip(skip, layer, g)
        assert skip is not None  # a model has at least one layer
        skip = skip.view(B, H, W, -1).permute(0, 3, 1, 2)  # (B, skip, H, W) channels-last
        out = self.out2(F.relu(self.out1(F.relu(skip))))  # (B, C*levels, H, W)
        return to_logits(out, spec.channels, spec.levels)

    def _add_skip(self, acc: torch.Tensor | None, layer: GatedLayer, g: torch.Tensor) -> torch.Tensor:
        """`acc + layer.skip(g)`, pixels as rows: `(B*H*W, skip)`; `g` `(B, h, H, W)` channels-last.

        Channels-last, the 1x1 convolution is a matrix product over the pixels, and the matrix
        product itself adds it to the running sum (`addmm_`, beta=1): no separate full-size
        addition, no new tensor. The first layer's product starts the sum with every layer's bias.
        """
        w = layer.skip.causal_weight()  # (skip, h, 1, 1)
        w = w.view(w.shape[0], -1).t()  # (h, skip)
        g = g.permute(0, 2, 3, 1).reshape(-1, g.shape[1])  # (B*H*W, h), a view: g is channels-last
        if acc is None:
            bias = torch.stack([bias_of(layer.skip) for layer in self._gated_layers]).sum(0)  # (skip,)
            return torch.addmm(bias, g, w)
        return acc.addmm_(g.to(acc.dtype), w.to(acc.dtype))  # in place: addmm's backward needs neither acc
        # nor the result (the casts are for autocast, which leaves in-place products alone)

    def fast_sampler(self, x: torch.Tensor, y: Any = None, **cond: Any) -> FastSteps:
        """Incremental steps from the start image `x` `(n, C, H, W)` and labels `y` (FAST SAMPLER
        CONTRACT, zoo/sampling.py)."""
        if cond:
            raise ValueError(f"GatedPixelCNN takes only the class label y; got {', '.join(map(repr, cond))}")
        return FastSteps(self, x, check_labels(y, x.shape[0], self.num_classes, x.device))


class FastSteps:
    """Gated PixelCNN's incremental steps for `zoo.sampling` (FAST SAMPLER CONTRACT, zoo/sampling.py).

    The horizontal stack runs at the new pixel only, reading the earlier pixels' features from
    caches; the vertical stack runs once per row, when the row is complete (`row_done`), and
    gives every layer the vertical -> horizontal link of the next row.

    Per layer l: `v_in[l]`, its vertical input padded as v_conv pads it (image row r, column c
    at [p + r, p + c], p = kernel // 2), filled a row at a time; `h_in[l]`, its horizontal input
    padded on the left (image (r, c) at [h_row[l] + r, p + c]), filled a pixel at a time.
    Layer 0 reads the scaled image for both.
    """

    def __init__(self, model: GatedPixelCNN, x: torch.Tensor, y: torch.Tensor | None):
        n, C, H, W = x.shape
        self.layers, self.levels = model._gated_layers, model.data_spec.levels
        dev, dt = x.device, model.out2.weight.dtype
        self.dtype = dt
        self.p0 = p0 = self.layers[0].kernel // 2
        self.img = F.pad(scale_input(x, self.levels, dt), self.layers[0].v_pads)  # (n, C, H+p0, W+2p0)
        self.v_in: list[torch.Tensor | None] = [self.img]  # None after the last layer
        self.h_in: list[torch.Tensor | None] = [self.img]
        self.h_row = [p0]
        for layer in self.layers[1:]:
            p, hid = layer.kernel // 2, layer.skip.in_channels
            self.v_in.append(torch.zeros(n, hid, H + p, W + 2 * p, device=dev, dtype=dt))
            self.h_in.append(torch.zeros(n, hid, H, W + p, device=dev, dtype=dt))
            self.h_row.append(0)
        self.v_in.append(None)  # the last layer's outputs feed no further layer
        self.h_in.append(None)
        self.h_convs = [PixelConv(layer.h_conv) for layer in self.layers]
        self.h_outs = [PixelConv(layer.h_out) if layer.h_out is not None else None for layer in self.layers]
        self.skips = [PixelConv(layer.skip) for layer in self.layers]
        self.out1, self.out2 = PixelConv(model.out1), PixelConv(model.out2)
        self.h_bias = [_embed(layer.h_embed, y) if y is not None else None for layer in self.layers]  # (n, 2h)
        self.v_bias = [_embed(layer.v_embed, y)[:, :, None, None] if y is not None else None for layer in self.layers]
        # v_to_h of the row above for the current row, per layer: (W, n, 2h); row 0 has nothing above.
        zero_row = torch.zeros(n, self.layers[0].v_to_h.in_channels, 1, W, device=dev, dtype=dt)
        self.v_links = [self._row_link(layer, zero_row) for layer in self.layers]

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        """`(n, levels)` of sub-pixel (c, i, j): the horizontal stack at pixel (i, j), then the head."""
        h_in, h_row = self.h_in, self.h_row
        skip: torch.Tensor | int = 0
        for li, layer in enumerate(self.layers):
            cache, h_bias, h_out = h_in[li], self.h_bias[li], self.h_outs[li]
            assert cache is not None  # only the entry after the last layer is None
            hp = self.h_convs[li](cache, h_row[li] + i, j) + self.v_links[li][j]  # (n, 2h)
            if h_bias is not None:
                hp = hp + h_bias
            g = gate(hp)  # (n, h)
            skip = self.skips[li].vector(g) + skip  # (n, skip)
            if h_out is None:  # the last layer
                break
            h_new = h_out.vector(g)  # (n, h)
            if layer.residual:
                h_new = h_new + cache[:, :, h_row[li] + i, layer.kernel // 2 + j]
            next_cache = h_in[li + 1]
            assert next_cache is not None  # this layer is not the last
            next_cache[:, :, h_row[li + 1] + i, self.layers[li + 1].kernel // 2 + j] = h_new
        assert isinstance(skip, torch.Tensor)  # a model has at least one layer
        out = self.out2.vector(self.out1.vector(F.relu(skip)).relu_())  # (n, C*levels)
        return out[:, c * self.levels : (c + 1) * self.levels]

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        self.img[:, c, self.p0 + i, self.p0 + j] = scale_input(level, self.levels, self.dtype)

    def row_done(self, i: int) -> None:
        """Row i is complete: run the vertical stack on it, for the links into row i+1."""
        W = self.img.shape[-1] - 2 * self.p0
        for li, layer in enumerate(self.layers):
            cache, v_bias, next_cache = self.v_in[li], self.v_bias[li], self.v_in[li + 1]
            assert cache is not None  # only the entry after the last layer is None
            window = cache[:, :, i : i + layer.kernel // 2 + 1]  # (n, F, k//2+1, W+2p): rows i-p .. i
            v_pre = layer.v_conv(window)  # (n, 2h, 1, W)
            if v_bias is not None:
                v_pre = v_pre + v_bias
            self.v_links[li] = self._row_link(layer, v_pre)
            if next_cache is not None:
                q = self.layers[li + 1].kernel // 2
                next_cache[:, :, q + i, q : q + W] = gate(v_pre)[:, :, 0]

    @staticmethod
    def _row_link(layer: GatedLayer, v_pre_row: torch.Tensor) -> torch.Tensor:
        """The vertical -> horizontal link of one row: `(n, 2h, 1, W)` -> `(W, n, 2h)`."""
        return layer.v_to_h(v_pre_row)[:, :, 0].permute(2, 0, 1).contiguous()
