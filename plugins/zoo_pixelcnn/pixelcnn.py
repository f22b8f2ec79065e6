"""PixelCNN, as in van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent
Neural Networks" (ICML, arXiv:1601.06759), Table 1 and Figure 5.

    7x7 conv, mask A                                   image (C) -> 2h
    residual blocks x `residual_blocks`:               2h -> 2h
        ReLU, 1x1 conv 2h->h, ReLU, 3x3 conv mask B h->h, ReLU, 1x1 conv h->2h, + input
    ReLU, 1x1 conv mask B 2h -> out_hidden
    ReLU, 1x1 conv mask B out_hidden -> C*levels       a softmax over levels per sub-pixel

Every convolution is masked with colour groups (R, G, B), see `masks.py`; the
1x1 convolutions therefore carry mask B too. For binary data the output is a
2-way softmax (the same family as the paper's sigmoid). The paper's 15 layers
are the mask-A layer, 12 residual blocks and the 2 output layers.

Stacked 3x3 masked convolutions leave a blind spot: pixels above and to the
right of the current one that it never sees (van den Oord et al. 2016b,
Figure 1); `zoo check pixelcnn` measures it.

`sample_fast` generates pixel by pixel and computes every layer at the new
pixel only, reading the earlier pixels' activations from caches: one small
matrix product per layer per sub-pixel instead of a whole forward pass
(the idea of Ramachandran et al. 2017, "Fast Generation for Convolutional
Autoregressive Models").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.sampling import choose

from .common import PixelConv, scale_input, to_logits
from .masks import MaskedConv2d

__all__ = ["PixelCNN", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """Figure 5 of the PixelRNN paper: 2h -> h (1x1) -> h (3x3, mask B) -> 2h (1x1), plus the input."""

    def __init__(self, hidden: int, colours: int):
        super().__init__()
        self.conv_in = MaskedConv2d(2 * hidden, hidden, 1, "B", colours)
        self.conv = MaskedConv2d(hidden, hidden, 3, "B", colours)
        self.conv_out = MaskedConv2d(hidden, 2 * hidden, 1, "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 2h, H, W) -> (B, 2h, H, W)
        y = self.conv_in(F.relu(x))  # (B, h, H, W)
        y = self.conv(F.relu(y))  # (B, h, H, W)
        y = self.conv_out(F.relu(y))  # (B, 2h, H, W)
        return x + y


class PixelCNN(zoo.AutoregressiveModel):
    """PixelCNN with residual blocks. The constructor's arguments are its config."""

    def __init__(
        self,
        channels: int = 1,  # image channels C (1 for MNIST, 3 for CIFAR-10)
        height: int = 28,
        width: int = 28,
        levels: int = 2,  # 2 for binarized MNIST, 256 for 8-bit images
        hidden: int = 32,  # h: the residual stream has 2h feature maps
        residual_blocks: int = 12,  # 1 + 12 + 2 = the paper's 15 layers
        out_hidden: int = 64,  # feature maps between the two output 1x1 convolutions
        first_kernel: int = 7,  # the mask-A convolution
    ):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        for name, v in (("hidden", hidden), ("out_hidden", out_hidden), ("first_kernel", first_kernel)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(residual_blocks, int) or residual_blocks < 0:
            raise ValueError(f"residual_blocks must be an int >= 0, got {residual_blocks!r}")
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
        h = self.conv_in(scale_input(x, spec.levels, self.out2.weight.dtype))  # (B, 2h, H, W)
        for block in self.blocks:
            h = block(h)  # (B, 2h, H, W)
        out = self.out2(F.relu(self.out1(F.relu(h))))  # (B, C*levels, H, W)
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
        **cond: Any,
    ) -> torch.Tensor:
        """Cached sampler: the same images as `zoo.sampling.sample_naive` for the same `u`.

        `u` `(n, C, H, W)` holds one uniform per sub-pixel; `known`/`mask` come
        from `zoo.sampling.prepare_completion`. Called by `zoo.sample`.
        """
        if cond:
            raise ValueError(f"PixelCNN is unconditional; it takes no {', '.join(map(repr, cond))}")
        from tqdm.auto import tqdm

        spec = self.data_spec
        n, C, H, W = u.shape
        L = spec.levels
        dev, dt = self.out2.weight.device, self.out2.weight.dtype
        x = torch.zeros((n, C, H, W), dtype=torch.long, device=dev)
        if mask is not None:
            x = torch.where(mask, known, x)

        # Caches of each convolution's input, padded as the layer pads it (zero borders).
        first = PixelConv(self.conv_in)
        p = self.conv_in.pads[0]  # first_kernel // 2 on every side
        img = F.pad(scale_input(x, L, dt), self.conv_in.pads)  # (n, C, H+2p, W+2p)
        blocks = [(PixelConv(b.conv_in), PixelConv(b.conv), PixelConv(b.conv_out)) for b in self.blocks]
        caches = [torch.zeros(n, b.conv.in_channels, H + 2, W + 2, device=dev, dtype=dt) for b in self.blocks]
        out1, out2 = PixelConv(self.out1), PixelConv(self.out2)

        with tqdm(total=H * W, disable=not progress, desc="fast sampling", unit="pixel", leave=False) as bar:
            for i in range(H):
                for j in range(W):
                    for c in range(C):
                        # Every layer at pixel (i, j) only; the sub-pixels before c are in `img`.
                        h = first(img, i, j)  # (n, 2h)
                        for (conv_in, conv, conv_out), cache in zip(blocks, caches):
                            cache[:, :, i + 1, j + 1] = conv_in.vector(F.relu(h)).relu_()  # (n, h)
                            h = h + conv_out.vector(conv(cache, i, j).relu_())  # (n, 2h)
                        out = out2.vector(out1.vector(F.relu(h)).relu_())  # (n, C*L)
                        level = choose(out[:, c * L : (c + 1) * L], u[:, c, i, j], temperature)  # (n,)
                        if mask is not None:
                            level = torch.where(mask[:, c, i, j], known[:, c, i, j], level)
                        x[:, c, i, j] = level
                        img[:, c, i + p, j + p] = scale_input(level, L, dt)
                    bar.update(1)
        return x
