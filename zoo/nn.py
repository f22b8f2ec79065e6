"""Public building blocks for autoregressive model plugins: masked convolutions with colour
groups, the input scaling of integer levels, and the argument check of model constructors.

Importing `zoo` does not import this module (it imports torch); a plugin's model file does:
`from zoo.nn import MaskedConv2d, scale_input, check_int`.

Masked convolutions (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural
Networks", arXiv:1601.06759, section 3.4 and Figure 2). Every feature map belongs to one
colour group: R, G or B (one group per image channel). A convolution's mask, at each kernel
position, relative to its *centre* (the position that lines up with the output pixel):

- before the centre (rows above it, or left of it in its row): all open;
- after the centre (right of it in its row, or rows below): all closed;
- at the centre, input group `a` -> output group `b` is open when `a < b`
  (mask "A", the first layer: a sub-pixel never sees itself) or `a <= b`
  (mask "B", later layers: a feature sees its own group's features).

With one colour channel this is the familiar PixelCNN mask. The centre is the middle of the
kernel by default; a kernel whose centre is elsewhere (e.g. the `1 x (k//2+1)` horizontal
stack of gated PixelCNN, centre in the last column) names it with `centre=(row, col)`.

Features are split into colour groups in contiguous blocks: of F features, feature f is in
group `f * colours // F` (so 2h features with 3 colours are R..R G..G B..B). A layer whose
outputs are several stacked blocks that must each follow the colour split (e.g. the gate
halves `[tanh | sigmoid]` of gated PixelCNN, or the four LSTM gates `[o | f | i | g]`)
passes `out_blocks=2` or `4`: each block is split into colour groups on its own. The same
holds for `in_blocks` on the input side.

    colour_groups(features, colours, blocks=1) -> LongTensor (features,)
    causal_mask(in_ch, out_ch, kernel_size, mask_type, colours=1, *, centre=None,
                in_blocks=1, out_blocks=1) -> FloatTensor (out_ch, in_ch, kh, kw)
    MaskedConv2d(in_ch, out_ch, kernel_size, mask_type="B", colours=1, *, centre=None,
                 in_blocks=1, out_blocks=1, bias=True)   # output size = input size

Speed: the rows below the centre are always masked to zero, so `MaskedConv2d` convolves
with the kernel cropped to rows `0 .. ci` (`causal_weight()`: a 3x3 mask-B kernel is
computed as 2x3, a 7x7 mask-A one as 4x7) and pads the input above and at the sides only;
`forward_view(x)` gives the same values without copying `x` into a padded tensor. The
parameter keeps its full `(out, in, kh, kw)` shape (saved weights load strictly); only the
arithmetic skips the zeros. The mask multiply itself is skipped when the cropped mask is all
ones (1x1 and mask-B kernels of one colour). The output is the plain masked convolution's up
to float rounding, in the memory format of the input (channels-last in, channels-last out).

Activations: `fast_tanh(x, out=None)` is tanh computed as `2 sigmoid(2x) - 1` (the same function, up to
float rounding, about 2e-7 in float32) where that is faster: PyTorch's CPU tanh ran about 6x slower than its
sigmoid in float32 here (2.96 against 0.49 ns an element on one thread). `sigmoid_and_tanh_(a, t)`
applies a sigmoid to `a` and a tanh to `t`, a block of `a` (an LSTM's [o | f | i | g]), in place with one
sigmoid over the whole of `a`: a sigmoid over a strided block of a tensor ran about 3x slower than over a
contiguous one. Both are forward-only (no autograd): for passes whose backward is written by hand.

Fast sampling: `PixelConv(conv)` evaluates a masked (or 1x1) convolution at one output pixel from
a cache of its padded input, one matrix product: the incremental steps of `zoo.sampling`'s fast
sampler contract are built from it (Ramachandran et al. 2017, "Fast Generation for Convolutional
Autoregressive Models", arXiv:1704.06001).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .util import is_int

__all__ = [
    "colour_groups",
    "causal_mask",
    "MaskedConv2d",
    "PixelConv",
    "MASK_TYPES",
    "scale_input",
    "check_int",
    "fast_tanh",
    "sigmoid_and_tanh_",
]

MASK_TYPES = ("A", "B")


def scale_input(x: torch.Tensor, levels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer levels in `[0, levels)` to floats in `[-1, 1]`, the networks' input (same shape)."""
    return x.to(dtype) * (2.0 / (levels - 1)) - 1.0


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """`value` if it is an int (not a bool) of at least `minimum`; else ValueError naming `name`."""
    if not is_int(value) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value


def fast_tanh(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """`torch.tanh(x)` (into `out` if given; `out` may be `x`), as `2 sigmoid(2x) - 1` on a CPU in float32
    or float64; elsewhere, and in reduced precision (where the identity would lose digits near 0), tanh itself."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return torch.tanh(x) if out is None else torch.tanh(x, out=out)
    y = x * 2 if out is None else torch.mul(x, 2, out=out)
    return y.sigmoid_().mul_(2).sub_(1)


def sigmoid_and_tanh_(a: torch.Tensor, t: torch.Tensor) -> None:
    """In place: `a` becomes `sigmoid(a)`, except its block `t` (a view into `a`), which becomes `tanh(t)`.
    One sigmoid over all of `a` does both, by `tanh(x) = 2 sigmoid(2x) - 1`, where `fast_tanh` would use the
    identity; elsewhere the block's tanh is taken first and written back after the sigmoid."""
    if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64):
        tanh = torch.tanh(t)
        a.sigmoid_()
        t.copy_(tanh)
        return
    t.mul_(2)
    a.sigmoid_()
    t.mul_(2).sub_(1)


def bias_of(conv: nn.Conv1d | nn.Conv2d) -> torch.Tensor:
    """The bias of a convolution built with one (every biased convolution of the zoo's models); torch
    types `conv.bias` as `Tensor | None`, since a convolution may be built without."""
    assert conv.bias is not None, f"{conv} was built without a bias"
    return conv.bias


def _pair(k: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (k, k) if is_int(k) else k
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, int) and v >= 1 for v in pair)):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {k!r}")
    return pair


def colour_groups(features: int, colours: int, blocks: int = 1) -> torch.Tensor:
    """The colour group of each of `features` feature maps: `(features,)` long in `[0, colours)`.

    The features are `blocks` equal stacked blocks; each block is split into
    `colours` contiguous groups of (nearly) equal size.
    """
    check_int("colours", colours)
    if not isinstance(blocks, int) or blocks < 1 or features % blocks:
        raise ValueError(f"{features} features cannot be split into {blocks!r} equal blocks")
    per_block = features // blocks
    if per_block < colours:
        raise ValueError(
            f"{per_block} features per block cannot hold {colours} colour groups; "
            f"use at least {colours} features per block (one per colour)"
        )
    return (torch.arange(per_block) * colours // per_block).repeat(blocks)


def causal_mask(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    mask_type: str,
    colours: int = 1,
    *,
    centre: tuple[int, int] | None = None,
    in_blocks: int = 1,
    out_blocks: int = 1,
) -> torch.Tensor:
    """The 0/1 mask `(out_channels, in_channels, kh, kw)` described in the module docstring."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = _pair(kernel_size, "kernel_size")
    ci, cj = (kh // 2, kw // 2) if centre is None else centre
    if not (0 <= ci < kh and 0 <= cj < kw):
        raise ValueError(f"centre {centre!r} lies outside the {kh}x{kw} kernel")
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    if mask.is_meta:  # a build on the meta device (zoo.factory counting parameters): only the shape exists
        return mask
    mask[:, :, :ci, :] = 1  # rows above the centre
    mask[:, :, ci, :cj] = 1  # left of the centre in its row
    g_in = colour_groups(in_channels, colours, in_blocks)  # (in,)
    g_out = colour_groups(out_channels, colours, out_blocks)  # (out,)
    if mask_type == "A":
        centre_open = g_in.view(1, -1) < g_out.view(-1, 1)
    else:
        centre_open = g_in.view(1, -1) <= g_out.view(-1, 1)
    mask[:, :, ci, cj] = centre_open.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by `causal_mask(...)` on every call.

    Zero padding keeps the output the size of the input, with the kernel's
    centre over each output pixel: `(B, in_ch, H, W) -> (B, out_ch, H, W)`.
    Only the kernel rows `0 .. ci` (the centre row and those above it) are
    computed; the rows below are masked out anyway.
    """

    mask: torch.Tensor  # a buffer, `(out_ch, in_ch, kh, kw)`

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        mask_type: str = "B",
        colours: int = 1,
        *,
        centre: tuple[int, int] | None = None,
        in_blocks: int = 1,
        out_blocks: int = 1,
        bias: bool = True,
    ):
        kh, kw = _pair(kernel_size, "kernel_size")
        super().__init__(in_channels, out_channels, (kh, kw), padding=0, bias=bias)
        self.mask_type = mask_type
        self.colours = colours
        self.centre: tuple[int, int] = (kh // 2, kw // 2) if centre is None else cast(tuple[int, int], tuple(centre))
        mask = causal_mask(
            in_channels,
            out_channels,
            (kh, kw),
            mask_type,
            colours,
            centre=self.centre,
            in_blocks=in_blocks,
            out_blocks=out_blocks,
        )
        self.register_buffer("mask", mask, persistent=False)  # derived from the config, not saved
        ci, cj = self.centre
        self.pads = (cj, kw - 1 - cj, ci, kh - 1 - ci)  # F.pad order: left, right, top, bottom
        self.rows = ci + 1  # kernel rows that can be non-zero: 0 .. ci
        # Multiplying by an all-ones mask changes nothing: skip it (and its backward). (No values on meta.)
        self.mask_is_ones = not mask.is_meta and bool((mask[:, :, : self.rows] == 1).all())

    def masked_weight(self) -> torch.Tensor:
        """The effective weight `(out_ch, in_ch, kh, kw)`."""
        return self.weight * self.mask

    def causal_weight(self) -> torch.Tensor:
        """The effective weight cropped to the rows that can be non-zero: `(out_ch, in_ch, ci+1, kw)`."""
        kh = self.kernel_size[0]
        w = self.weight if self.rows == kh else self.weight[:, :, : self.rows]
        if self.mask_is_ones:
            return w
        return w * (self.mask if self.rows == kh else self.mask[:, :, : self.rows])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, in_ch, H, W) -> (B, out_ch, H, W)`, in the memory format of `x`."""
        w = self.causal_weight()  # (out, in, ci+1, kw)
        left, right, top, _ = self.pads  # nothing below: the cropped kernel ends at the centre row
        if left == right:  # conv2d pads the sides itself, symmetric
            if top:
                x = F.pad(x, (0, 0, top, 0))  # (B, in, ci + H, W)
            return F.conv2d(x, w, self.bias, padding=(0, left))
        return F.conv2d(F.pad(x, (left, right, top, 0)), w, self.bias)

    def forward_view(self, x: torch.Tensor) -> torch.Tensor:
        """`forward(x)` without copying `x` into a padded tensor: conv2d pads all sides itself
        (by `ci` rows and `max(cj, kw-1-cj)` columns), and the result is the wanted `H x W`
        window of its larger output, a view that is not contiguous when `ci > 0` or `cj`
        is off-centre (an elementwise op after it makes it dense again).

        Output row `r` of the padded convolution sees input rows `r-ci .. r`, so the rows
        beyond `H` that are cut off come after the image and influence nothing kept.
        """
        w = self.causal_weight()  # (out, in, ci+1, kw)
        left, right, top, _ = self.pads
        side = max(left, right)
        out = F.conv2d(x, w, self.bias, padding=(top, side))  # (B, out, H + ci, W + 2*side - (kw-1))
        H, W = x.shape[-2:]
        # output column c covers input columns c-side .. c-side+kw-1; pixel j's window starts at j-left
        off = side - left
        return out[:, :, :H, off : off + W]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mask_type={self.mask_type}, colours={self.colours}, centre={self.centre}"


class PixelConv:
    """A convolution evaluated at one output pixel, reading its input from a padded cache.

    For a `MaskedConv2d` (or a 1x1 `nn.Conv2d`) with kernel `kh x kw` and centre
    `(ci, cj)`: the cache holds the layer's input padded like the layer pads it,
    `(n, in, H + ci + kh-1-ci, W + cj + kw-1-cj)`; the output at image pixel
    `(i, j)` reads rows `i .. i+ci` and columns `j .. j+kw-1` of the cache (rows
    below the centre are masked out, so they are not read). One matrix product
    `(n, in*(ci+1)*kw) @ (in*(ci+1)*kw, out)`. Built in eval mode for sampling.
    """

    def __init__(self, conv: nn.Conv2d):
        if isinstance(conv, MaskedConv2d):
            w, (ci, _) = conv.masked_weight(), conv.centre
        else:
            w, ci = conv.weight, conv.kernel_size[0] - 1
        w = w[:, :, : ci + 1].detach()  # (out, in, ci+1, kw)
        self.rows, self.cols = ci + 1, w.shape[-1]
        self.weight = w.reshape(w.shape[0], -1).t().contiguous()  # (in*rows*cols, out)
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.pointwise = self.rows == 1 and self.cols == 1

    def __call__(self, cache: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """`(n, out)` at image pixel `(i, j)` from `cache` `(n, in, Hp, Wp)`."""
        patch = cache[:, :, i : i + self.rows, j : j + self.cols].reshape(cache.shape[0], -1)
        return self.vector(patch)

    def vector(self, v: torch.Tensor) -> torch.Tensor:
        """`(n, out)` from the flattened patch (for a 1x1 conv: the input features) `v`."""
        if self.bias is None:
            return v @ self.weight
        return torch.addmm(self.bias, v, self.weight)
