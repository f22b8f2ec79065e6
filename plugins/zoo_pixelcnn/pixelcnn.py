"""PixelCNN, as in van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent
Neural Networks" (ICML, arXiv:1601.06759), Table 1 and Figure 5.

    7x7 conv, mask A                                   image (C) -> 2h
    residual blocks x `residual_blocks`:               2h -> 2h
        ReLU, 1x1 conv 2h->h, ReLU, 3x3 conv mask B h->h, ReLU, 1x1 conv h->2h, + input
    ReLU, 1x1 conv mask B 2h -> out_hidden
    ReLU, 1x1 conv mask B out_hidden -> C*levels       a softmax over levels per sub-pixel

Every convolution is masked with colour groups (R, G, B), see `zoo.nn`; the
1x1 convolutions therefore carry mask B too. For binary data the output is a
2-way softmax (the same family as the paper's sigmoid). The paper's 15 layers
are the mask-A layer, 12 residual blocks and the 2 output layers.

Stacked 3x3 masked convolutions leave a blind spot: pixels above and to the
right of the current one that it never sees (van den Oord et al. 2016b,
Figure 1); `zoo check pixelcnn` measures it.

`fast_sampler` gives `zoo.sampling`'s raster driver incremental steps (`FastSteps`) that
compute every layer at the new pixel only, reading the earlier pixels' activations from caches: one small
matrix product per layer per sub-pixel instead of a whole forward pass
(the idea of Ramachandran et al. 2017, "Fast Generation for Convolutional
Autoregressive Models").

Speed, with the same arithmetic (up to float rounding) as the equations above:
every feature map is channels-last (see `common.py`); the masked kernels are
cropped to the rows that can be non-zero (7x7 mask A -> 4x7, 3x3 mask B -> 2x3,
see `zoo.nn`); the first layer is one matrix product over image patches; in
training a residual block is one autograd node whose backward applies each
ReLU's derivative in place (`_ResidualBlockFn`); scoring without autograd runs
large batches in cache-sized chunks (`common.inference_chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo
from zoo.nn import MaskedConv2d, PixelConv, check_int, scale_input

from .common import autocast_dtype, image_patches, inference_chunks, to_logits

__all__ = ["PixelCNN", "ResidualBlock", "FastSteps"]


class ResidualBlock(nn.Module):
    """Figure 5 of the PixelRNN paper: 2h -> h (1x1) -> h (3x3, mask B) -> 2h (1x1), plus the input."""

    def __init__(self, hidden: int, colours: int):
        super().__init__()
        self.conv_in = MaskedConv2d(2 * hidden, hidden, 1, "B", colours)
        self.conv = MaskedConv2d(hidden, hidden, 3, "B", colours)
        self.conv_out = MaskedConv2d(hidden, 2 * hidden, 1, "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, 2h, H, W) -> (B, 2h, H, W)`, channels-last in and out."""
        if torch.is_grad_enabled():  # training: the same arithmetic, with a hand-written backward
            return _ResidualBlockFn.apply(
                x,
                self.conv_in.causal_weight(),
                self.conv_in.bias,
                self.conv.causal_weight(),
                self.conv.bias,
                self.conv_out.causal_weight(),
                self.conv_out.bias,
            )
        y = self.conv_in(F.relu(x)).relu_()  # (B, h, H, W)
        # the 3x3 mask-B conv as 2x3 (the row below is masked), padded by conv2d itself: a view of
        # (B, h, H+1, W) without its last row, which the ReLU makes dense again
        y = F.relu(self.conv.forward_view(y))  # (B, h, H, W)
        return self.conv_out(y).add_(x)  # (B, 2h, H, W): the residual, into the fresh conv output


_conv_backward = torch.ops.aten.convolution_backward  # (grad_out, input, weight, ...) -> (grad_in, grad_w, grad_b)
_relu_backward = torch.ops.aten.threshold_backward  # (grad_out, relu_out, 0): grad_out where relu_out > 0, else 0


def _conv_grads(
    grad: Tensor, inp: Tensor, weight: Tensor, has_bias: bool, padding: tuple[int, int], needs: tuple[bool, bool, bool]
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients `(input, weight, bias)` of `F.conv2d(inp, weight, bias, padding=padding)` (stride 1),
    None where `needs` says not wanted (or there is no bias)."""
    return _conv_backward(
        grad,
        inp,
        weight,
        [weight.shape[0]] if has_bias else None,
        [1, 1],
        list(padding),
        [1, 1],
        False,
        [0, 0],
        1,
        [needs[0], needs[1], needs[2] and has_bias],
    )


class _ResidualBlockFn(torch.autograd.Function):
    """`ResidualBlock.forward` with autograd: the same operations, and a backward that computes each
    ReLU's gradient in place into the fresh gradient that the convolution's backward returns (autograd
    would allocate a new full-size tensor for each ReLU and for the residual's sum).

    Inputs: `x` `(B, 2h, H, W)` channels-last and the three convolutions' causal (cropped, masked)
    weights and biases. Under autocast, everything runs in the autocast dtype (as autocast would run
    the convolutions), and the weight gradients are cast back by autograd.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        w_in: Tensor,
        b_in: Tensor | None,
        w_mid: Tensor,
        b_mid: Tensor | None,
        w_out: Tensor,
        b_out: Tensor | None,
    ) -> Tensor:
        dt = autocast_dtype(x)
        x, w_in, w_mid, w_out = x.to(dt), w_in.to(dt), w_mid.to(dt), w_out.to(dt)
        b_in, b_mid, b_out = (None if b is None else b.to(dt) for b in (b_in, b_mid, b_out))
        with torch.autocast(x.device.type, enabled=False):
            r0 = F.relu(x)  # (B, 2h, H, W)
            a = F.pad(F.conv2d(r0, w_in, b_in).relu_(), (0, 0, 1, 0))  # (B, h, 1+H, W): a zero row above
            r2 = F.conv2d(a, w_mid, b_mid, padding=(0, 1)).relu_()  # (B, h, H, W): the 2x3 conv
            out = F.conv2d(r2, w_out, b_out).add_(x)  # (B, 2h, H, W)
        ctx.save_for_backward(r0, a, r2, w_in, w_mid, w_out)
        ctx.biases = tuple(b is not None for b in (b_in, b_mid, b_out))
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # grad: (B, 2h, H, W)
        r0, a, r2, w_in, w_mid, w_out = ctx.saved_tensors
        need = ctx.needs_input_grad  # x, w_in, b_in, w_mid, b_mid, w_out, b_out
        has_in, has_mid, has_out = ctx.biases
        grad = grad.to(r0.dtype)
        g, gw_out, gb_out = _conv_grads(grad, r2, w_out, has_out, (0, 0), (True, need[5], need[6]))
        assert g is not None  # the input gradient was asked for (True in `needs`)
        _relu_backward.grad_input(g, r2, 0, grad_input=g)  # (B, h, H, W), in place
        g, gw_mid, gb_mid = _conv_grads(g, a, w_mid, has_mid, (0, 1), (True, need[3], need[4]))
        assert g is not None  # the input gradient was asked for (True in `needs`)
        g = _relu_backward(g[:, :, 1:], a[:, :, 1:], 0)  # (B, h, H, W): the padded row dropped
        g, gw_in, gb_in = _conv_grads(g, r0, w_in, has_in, (0, 0), (need[0], need[1], need[2]))
        if g is not None:
            _relu_backward.grad_input(g, r0, 0, grad_input=g)  # (B, 2h, H, W), in place
            g = g.add_(grad)  # plus the residual path
        return g, gw_in, gb_in, gw_mid, gb_mid, gw_out, gb_out


class PixelCNN(zoo.AutoregressiveModel):
    """PixelCNN with residual blocks. The constructor's arguments are its config."""

    def __init__(
        self,
        channels: int = 1,  # image channels C (1 for MNIST, 3 for CIFAR-10)
        height: int = 28,
        width: int = 28,
        levels: int = 2,  # 2 for binarized MNIST, 256 for 8-bit images
        hidden: int = 128,  # h: the residual stream has 2h feature maps
        residual_blocks: int = 12,  # 1 + 12 + 2 = the paper's 15 layers
        out_hidden: int = 256,  # feature maps between the two output 1x1 convolutions
        first_kernel: int = 7,  # the mask-A convolution
    ):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        for name, v in (("hidden", hidden), ("out_hidden", out_hidden), ("first_kernel", first_kernel)):
            check_int(name, v)
        check_int("residual_blocks", residual_blocks, 0)
        if first_kernel % 2 == 0:
            raise ValueError(f"first_kernel must be odd (the mask is centred), got {first_kernel}")
        C = channels
        self.conv_in = MaskedConv2d(C, 2 * hidden, first_kernel, "A", C)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, C) for _ in range(residual_blocks))
        self.out1 = MaskedConv2d(2 * hidden, out_hidden, 1, "B", C)
        self.out2 = MaskedConv2d(out_hidden, C * levels, 1, "B", C)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` integer levels -> `(B, C, H, W, levels)` logits of each sub-pixel given the earlier ones."""
        spec = self.data_spec
        x = spec.validate(x)
        widest = max(self.out1.in_channels, self.out1.out_channels, self.out2.out_channels)
        n = inference_chunks(x, widest, self.out2.weight.dtype)
        if n > 1:  # scoring a large batch: chunks whose activations stay in cache, the same logits
            return torch.cat([self._logits(c) for c in x.tensor_split(n)])
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """`logits` of validated `x`."""
        spec = self.data_spec
        h = self.first_layer(scale_input(x, spec.levels, self.out2.weight.dtype))  # (B, 2h, H, W)
        for block in self.blocks:
            h = block(h)  # (B, 2h, H, W)
        out = self.out2(F.relu(self.out1(F.relu(h))))  # (B, C*levels, H, W)
        return to_logits(out, spec.channels, spec.levels)

    def first_layer(self, img: torch.Tensor) -> torch.Tensor:
        """The 7x7 mask-A convolution of the scaled image: `(B, C, H, W)` -> `(B, 2h, H, W)` channels-last.

        Computed as one matrix product over each pixel's causal patch (the kernel's top
        `k//2 + 1` rows: the rows below the centre are masked), as `self.conv_in(img)` would.
        """
        conv = self.conv_in
        left, right, _, _ = conv.pads
        w = conv.causal_weight()  # (2h, C, k//2+1, k)
        patches = image_patches(img, conv.rows, left, right)  # (B, H, W, C*(k//2+1)*k)
        out = F.linear(patches, w.reshape(w.shape[0], -1), conv.bias)  # (B, H, W, 2h)
        return out.permute(0, 3, 1, 2)  # (B, 2h, H, W), channels-last in memory

    def fast_sampler(self, x: torch.Tensor, **cond: Any) -> FastSteps:
        """Incremental steps from the start image `x` `(n, C, H, W)` (FAST SAMPLER CONTRACT, zoo/sampling.py)."""
        if cond:
            raise ValueError(f"PixelCNN is unconditional; it takes no {', '.join(map(repr, cond))}")
        return FastSteps(self, x)


class FastSteps:
    """PixelCNN's incremental steps for `zoo.sampling` (FAST SAMPLER CONTRACT, zoo/sampling.py).

    Every layer is computed at the new pixel only: each convolution's input is kept in a
    cache padded as the layer pads it (zero borders), and a 7x7 or 3x3 convolution at pixel
    (i, j) is one matrix product over its cached neighbourhood (`PixelConv`). The caches of
    pixel (i, j) are written at every call and final at its last channel.
    """

    def __init__(self, model: PixelCNN, x: torch.Tensor):
        n, C, H, W = x.shape
        self.levels, self.dtype = model.data_spec.levels, model.out2.weight.dtype
        dev, dt = x.device, self.dtype
        self.first = PixelConv(model.conv_in)
        self.pad = model.conv_in.pads[0]  # p = first_kernel // 2 on every side
        self.img = F.pad(scale_input(x, self.levels, dt), model.conv_in.pads)  # (n, C, H+2p, W+2p)
        blocks = cast("Sequence[ResidualBlock]", model.blocks)  # to a type checker, a ModuleList holds Modules
        self.blocks = [(PixelConv(b.conv_in), PixelConv(b.conv), PixelConv(b.conv_out)) for b in blocks]
        # each block's 3x3 input, (n, h, H+2, W+2): image pixel (i, j) at [i+1, j+1]
        self.caches = [torch.zeros(n, b.conv.in_channels, H + 2, W + 2, device=dev, dtype=dt) for b in blocks]
        self.out1, self.out2 = PixelConv(model.out1), PixelConv(model.out2)

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        """`(n, levels)` of sub-pixel (c, i, j); the sub-pixels before it are in `self.img`."""
        h = self.first(self.img, i, j)  # (n, 2h)
        for (conv_in, conv, conv_out), cache in zip(self.blocks, self.caches, strict=True):
            cache[:, :, i + 1, j + 1] = conv_in.vector(F.relu(h)).relu_()  # (n, h)
            h = h + conv_out.vector(conv(cache, i, j).relu_())  # (n, 2h)
        out = self.out2.vector(self.out1.vector(F.relu(h)).relu_())  # (n, C*levels)
        return out[:, c * self.levels : (c + 1) * self.levels]

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        self.img[:, c, i + self.pad, j + self.pad] = scale_input(level, self.levels, self.dtype)

    def row_done(self, i: int) -> None:
        pass  # every cache is written pixel by pixel
