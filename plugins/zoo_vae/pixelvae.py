"""PixelVAE, as in Gulrajani, Kumar, Ahmed, Taiga, Visin, Vazquez & Courville 2017, "PixelVAE: A Latent
Variable Model for Natural Images" (ICLR, arXiv:1611.05013), section 3 and its MNIST model: the VAE's
latent variable with a small PixelCNN as the decoder, so that z carries the global shape and the few
masked layers the local detail.

    z ~ N(0, I)                                            (B, L)
    z -> linear -> (2h', H/4, W/4), ReLU,                  the VAE's up-sampling, here
         4x4 transposed conv stride 2 -> h', ReLU,         to a map of conditioning features
         4x4 transposed conv stride 2 -> h                 (B, h, H, W)
    x -> 7x7 conv mask A, C -> h, + the z features         (B, h, H, W)
         `layers` x [ReLU, 3x3 conv mask B h -> h, + the z features (a 1x1 of them per layer)]
         ReLU, 1x1 conv mask B h -> C*levels               (B, C, H, W, levels)

The masked convolutions are `zoo.nn.MaskedConv2d` (colour groups for C = 3); the z features enter
every layer, unmasked, since z is not part of the image. The decoder is an `AutoregressiveModel`
given z (`ConditionalPixelCNN.logits(x, z=z)`): `zoo.check(decoder, cond={"z": z})` verifies its
causality, and it samples through the zoo's raster driver (`zoo.sampling`) with incremental steps
(`ConditionalSteps`: z's features once, each layer at the new pixel only). The encoder and the
bounds are in `latent.py`. A few masked layers see only a small neighbourhood (3 + 2*layers pixels
wide); the paper's point is that this suffices once z is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from zoo.autoregressive import AutoregressiveModel
from zoo.nn import MaskedConv2d, PixelConv, check_int, scale_input
from zoo.protocols import DataSpec

from .latent import ConvEncoder, LatentVariableModel

__all__ = ["PixelVAE", "ConditionalPixelCNN", "ConditionalSteps"]

# Every feature map of the decoder is channels-last (NHWC in memory, still indexed (B, F, H, W)): oneDNN runs
# the transposed convolutions about 3x and the masked ones faster on it than on NCHW, with the same values.
CHANNELS_LAST = torch.channels_last


class ConditionalPixelCNN(AutoregressiveModel):
    """p(x|z): a PixelCNN whose every layer adds features computed from z (the module docstring)."""

    def __init__(self, spec: DataSpec, latent: int, hidden: int, layers: int, cond_hidden: int):
        super().__init__()
        C, H, W = spec.shape
        self.data_spec = spec
        self.hidden = hidden
        self.base = (2 * cond_hidden, H // 4, W // 4)
        self.cond_linear = nn.Linear(latent, 2 * cond_hidden * (H // 4) * (W // 4))
        self.cond_up = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * cond_hidden, cond_hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(cond_hidden, hidden * (layers + 1), 4, stride=2, padding=1),
        )
        self.first = MaskedConv2d(C, hidden, 7, "A", colours=C)
        self.layers = nn.ModuleList(MaskedConv2d(hidden, hidden, 3, "B", colours=C) for _ in range(layers))
        self.out = MaskedConv2d(hidden, C * spec.levels, 1, "B", colours=C)

    def conditioning(self, z: torch.Tensor) -> torch.Tensor:
        """z `(B, L)` -> features `(B, layers + 1, h, H, W)`: one map added to each masked layer's output."""
        _, H, W = self.data_spec.shape
        base = self.cond_linear(z).view(-1, *self.base).contiguous(memory_format=CHANNELS_LAST)
        maps = self.cond_up(base)  # (B, h*(layers+1), H, W), channels-last in memory
        return maps.view(z.shape[0], -1, self.hidden, H, W)

    def logits(  # type: ignore[override]  # its one condition is z; the base's **cond is any model's own
        self, x: torch.Tensor, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`x` (B, C, H, W) levels and `z` (B, L) -> `(B, C, H, W, levels)`; sub-pixel k sees z and the
        sub-pixels before it."""
        if z is None:
            raise ValueError("ConditionalPixelCNN.logits needs the latent code z=(B, L)")
        spec = self.data_spec
        cond = self.conditioning(z)
        img = scale_input(x, spec.levels, self.first.weight.dtype).contiguous(memory_format=CHANNELS_LAST)
        # in place where autograd allows: a sum's backward keeps neither operand, a ReLU's only its output
        h = self.first.forward_view(img) + cond[:, 0]  # (B, h, H, W)
        for i, layer in enumerate(cast("Sequence[MaskedConv2d]", self.layers)):
            h = layer.forward_view(F.relu_(h)) + cond[:, i + 1]
        out = self.out(F.relu_(h))  # (B, C*levels, H, W), channels grouped R.. G.. B..
        C, H, W = spec.shape
        return out.view(-1, C, spec.levels, H, W).permute(0, 1, 3, 4, 2)  # (B, C, H, W, levels)

    def fast_sampler(self, x: torch.Tensor, z: torch.Tensor | None = None, **cond: object) -> ConditionalSteps:
        """Incremental steps from the start image `x` `(n, C, H, W)` given `z` `(n, L)` (FAST SAMPLER
        CONTRACT, zoo/sampling.py)."""
        if cond:
            raise ValueError(f"the PixelVAE decoder takes only z, not {', '.join(map(repr, cond))}")
        if z is None or z.shape[0] != x.shape[0]:
            raise ValueError(f"the PixelVAE decoder's fast sampler needs z=(n, L) with n={x.shape[0]}")
        return ConditionalSteps(self, x, z)


class ConditionalSteps:
    """The decoder's incremental steps for `zoo.sampling` (FAST SAMPLER CONTRACT, zoo/sampling.py).

    z's feature maps are computed once, not at every sub-pixel; each masked layer is evaluated at
    the new pixel only, from a cache of its padded input (`zoo.nn.PixelConv`): a few small matrix
    products per sub-pixel instead of a whole decoder pass.
    """

    def __init__(self, model: ConditionalPixelCNN, x: torch.Tensor, z: torch.Tensor):
        n, C, H, W = x.shape
        self.levels, dt = model.data_spec.levels, model.out.weight.dtype
        self.first = PixelConv(model.first)
        self.layers = [PixelConv(cast(MaskedConv2d, layer)) for layer in model.layers]
        self.out = PixelConv(model.out)
        self.cond = model.conditioning(z.to(dt)).permute(3, 4, 0, 1, 2).contiguous()  # (H, W, n, layers+1, h)
        self.pad = model.first.pads[0]  # 7x7: 3 on every side
        self.img = F.pad(scale_input(x, self.levels, dt), model.first.pads)  # (n, C, H+2p, W+2p)
        # each masked layer's input, padded by 1: image pixel (i, j) at [i+1, j+1]
        self.caches = [torch.zeros(n, model.hidden, H + 2, W + 2, device=x.device, dtype=dt) for _ in self.layers]

    def logits(self, i: int, j: int, c: int) -> torch.Tensor:
        """`(n, levels)` of sub-pixel (c, i, j); the sub-pixels before it are in `self.img`."""
        cond = self.cond[i, j]  # (n, layers+1, h)
        h = self.first(self.img, i, j) + cond[:, 0]  # (n, h)
        for k, (layer, cache) in enumerate(zip(self.layers, self.caches, strict=True)):
            cache[:, :, i + 1, j + 1] = F.relu(h)
            h = layer(cache, i, j) + cond[:, k + 1]
        out = self.out.vector(F.relu(h))  # (n, C*levels), channels grouped R.. G.. B..
        return out[:, c * self.levels : (c + 1) * self.levels]

    def put(self, i: int, j: int, c: int, level: torch.Tensor) -> None:
        self.img[:, c, i + self.pad, j + self.pad] = scale_input(level, self.levels, self.img.dtype)

    def row_done(self, i: int) -> None:
        pass  # every cache is written pixel by pixel


class PixelVAE(LatentVariableModel):
    """A `zoo.protocols.BoundedLikelihood` and `Sampler` (see `latent.py`); constructor arguments are its config."""

    # Every (x, z) pair runs the PixelCNN, whose z features are (n, h*(layers+1), H, W): 0.5 MB an image.
    # 48 images keep a pass's tensors under glibc's largest mmap threshold (32 MiB, zoo.util.keep_freed_memory),
    # so they are reused instead of mapped and zeroed again at every pass: at 1024, half the time was the kernel's.
    bound_pass = 48

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 2,
        latent: int = 32,
        hidden: int = 32,
        decoder_hidden: int = 64,
        layers: int = 4,
        cond_hidden: int = 64,
    ):
        spec = DataSpec(channels, height, width, levels)
        super().__init__(spec, check_int("latent", latent), ConvEncoder(spec, check_int("hidden", hidden), latent))
        self.decoder = ConditionalPixelCNN(
            spec,
            latent,
            check_int("decoder_hidden", decoder_hidden),
            check_int("layers", layers, minimum=0),
            check_int("cond_hidden", cond_hidden),
        )

    def decoder_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.logits(x, z=z)

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """x ~ p(x|z) `(n, C, H, W)` long through the zoo's raster sampler and the decoder's incremental
        steps (`ConditionalSteps`; uniforms drawn from `generator` up front); temperature 0: greedy."""
        return self.decoder.sample(z.shape[0], generator=generator, temperature=temperature, z=z)
