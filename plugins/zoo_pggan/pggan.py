"""PGGAN: a GAN whose generator and discriminator grow, resolution by resolution, during training.

Paper: Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation" (ICLR 2018, arXiv:1710.10196). Followed here:
- growth (section 3): training starts at a low resolution; each new resolution's layers are
  faded in (Figure 2): the output of the new block is blended with the upsampled output of the
  previous one with a weight `alpha` going from 0 to 1, and the discriminator's input mirrors it;
  then the new resolution is stabilised with `alpha = 1`. `stage` and `alpha` are buffers of the
  model, so a checkpoint knows where the growth stands and the released weights sample at full size;
- minibatch standard deviation (section 3): the discriminator's last block gets one more feature
  map, the standard deviation of each feature over a group of images, averaged;
- equalized learning rate (section 4.1): weights drawn from N(0, 1) and multiplied at run time by
  He's constant sqrt(2 / fan_in), so Adam's step is the same for every layer;
- pixelwise feature normalisation in the generator (section 4.2): each pixel's feature vector
  scaled to unit RMS after every convolution, and the latent too;
- an exponential moving average of the generator's weights (appendix A.1, decay 0.999) is the
  generator that `sample` uses (the released one).
The network layout follows the paper's Table 2 at MNIST scale: for 28x28 the stages are 7x7,
14x14 and 28x28 (28 = 7 * 2^2, so every stage's reals are exact 2x2 average pools of the data,
with no padding), widths 64, 32, 16 by default (`base_width >> stage`; the paper uses 512 at low resolutions).

The generator's output is a centred intensity `x` in about [-1, 1]; the intensity is
`p = clamp((x + 1) / 2, 0, 1)`. `sample` turns it into levels: a Bernoulli draw per sub-pixel for
binary data (as binarized MNIST was drawn from MNIST's intensities), the nearest level for more.
A `zoo.Sampler`, not a `zoo.Likelihood`: a GAN defines no density.
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from zoo.errors import CompletionNotSupported
from zoo.nn import check_int
from zoo.protocols import DataSpec
from zoo.sampling import SampleMethod, check_sample_args

__all__ = ["PGGAN", "Generator", "Discriminator", "ScaledConv2d", "PixelNorm", "minibatch_stddev", "fade"]


class ScaledConv2d(nn.Module):
    """A convolution (a linear layer is a convolution over a 1x1 map) with He's constant.

    `equalized=True`: weight ~ N(0, 1), multiplied by sqrt(2 / fan_in) in every forward pass
    (Karras et al. 2018, section 4.1). `equalized=False`: the same effective weights at the start
    (N(0, 2 / fan_in), He initialisation), stored as they are.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, equalized: bool, gain: float = math.sqrt(2)):
        super().__init__()
        he = gain / math.sqrt(cin * kernel * kernel)
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * (1.0 if equalized else he))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = he if equalized else 1.0
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Each pixel's feature vector divided by its RMS over the channels (section 4.2): (B, C, H, W) -> same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 1, H, W): the mean over features and pixels of each feature's standard
    deviation within a group of `group` images (section 3), appended as a constant map."""
    B, _, H, W = x.shape
    g = min(group, B)
    if B % g:
        raise ValueError(f"minibatch stddev: the batch ({B}) must divide into groups of {g}")
    s = x.view(g, B // g, *x.shape[1:])  # (g, B/g, C, H, W): image i is in group i % (B/g)
    s = (s.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # (B/g,)
    return torch.cat([x, s.repeat(g).view(B, 1, 1, 1).expand(B, 1, H, W)], 1)


def fade(new: torch.Tensor, old: torch.Tensor, alpha: float) -> torch.Tensor:
    """The fade-in of Figure 2: (1 - alpha) * old + alpha * new."""
    return new if alpha >= 1 else torch.lerp(old, new, alpha)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class Generator(nn.Module):
    """z (B, nz) -> centred intensities (B, C, r, r) at the resolution r of `stage`.

    28x28, base width 64: z -> (64, 7, 7) -> [up, conv, conv] (32, 14, 14) -> [up, conv, conv] (16, 28, 28);
    a 1x1 "toRGB" convolution per stage gives the image.
    """

    def __init__(
        self, channels: int, base: int, stages: int, nz: int, width: int, *, equalized: bool, pixel_norm: bool
    ):
        super().__init__()
        self.base = base
        self.norm = PixelNorm() if pixel_norm else nn.Identity()
        w = [width >> s for s in range(stages)]
        self.project = ScaledConv2d(nz, w[0] * base * base, 1, equalized=equalized, gain=math.sqrt(2) / 4)
        self.first = ScaledConv2d(w[0], w[0], 3, equalized=equalized)
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [ScaledConv2d(w[s - 1], w[s], 3, equalized=equalized), ScaledConv2d(w[s], w[s], 3, equalized=equalized)]
            )
            for s in range(1, stages)
        )
        self.to_rgb = nn.ModuleList(
            ScaledConv2d(w[s], channels, 1, equalized=equalized, gain=1.0) for s in range(stages)
        )

    def forward(self, z: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        h = self.project(self.norm(z)[:, :, None, None])  # (B, w0 * base^2, 1, 1): a dense layer
        h = self.norm(_act(h.view(z.shape[0], -1, self.base, self.base)))  # (B, w0, base, base)
        h = self.norm(_act(self.first(h)))
        prev = h
        for block in self.blocks[:stage]:
            prev = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, w, 2r, 2r)
            for conv in cast(nn.ModuleList, block):  # blocks holds ModuleLists of two convolutions
                h = self.norm(_act(conv(h)))
        out = self.to_rgb[stage](h)  # (B, C, r, r)
        if stage > 0 and alpha < 1:
            out = fade(out, F.interpolate(self.to_rgb[stage - 1](prev), scale_factor=2, mode="nearest"), alpha)
        return out


class Discriminator(nn.Module):
    """Centred intensities (B, C, r, r) at the resolution of `stage` -> one score per image (B,).

    The mirror of the generator: a 1x1 "fromRGB" per stage, [conv, conv, 2x2 average pool] per
    stage down to the base map, then [minibatch stddev], a 3x3 conv, a dense layer and the score.
    """

    def __init__(self, channels: int, base: int, stages: int, width: int, *, equalized: bool, mbstd: bool):
        super().__init__()
        self.mbstd = mbstd
        w = [width >> s for s in range(stages)]
        self.from_rgb = nn.ModuleList(ScaledConv2d(channels, w[s], 1, equalized=equalized) for s in range(stages))
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [ScaledConv2d(w[s], w[s], 3, equalized=equalized), ScaledConv2d(w[s], w[s - 1], 3, equalized=equalized)]
            )
            for s in range(1, stages)
        )
        self.last = ScaledConv2d(w[0] + int(mbstd), w[0], 3, equalized=equalized)
        self.dense = ScaledConv2d(w[0] * base * base, w[0], 1, equalized=equalized)
        self.score = ScaledConv2d(w[0], 1, 1, equalized=equalized, gain=1.0)

    def forward(self, x: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        h = _act(self.from_rgb[stage](x))  # (B, w_stage, r, r)
        for s in range(stage, 0, -1):
            for conv in cast(nn.ModuleList, self.blocks[s - 1]):  # blocks holds ModuleLists of two convolutions
                h = _act(conv(h))
            h = F.avg_pool2d(h, 2)  # (B, w_{s-1}, r/2, r/2)
            if s == stage and alpha < 1:
                h = fade(h, _act(self.from_rgb[s - 1](F.avg_pool2d(x, 2))), alpha)
        if self.mbstd:
            h = minibatch_stddev(h)  # (B, w0 + 1, base, base)
        h = _act(self.last(h))
        h = _act(self.dense(h.flatten(1)[:, :, None, None]))  # (B, w0, 1, 1)
        return self.score(h).flatten()  # (B,)


class PGGAN(SampleMethod, nn.Module):
    """A progressively grown generator and discriminator for images of integer levels.

    Constructor arguments are the registered config:
        channels, height, width, levels: the data spec (MNIST: 1, 28, 28, 256)
        stages: resolutions, each twice the last; the first is height / 2^(stages - 1) (28: 7, 14, 28)
        nz: size of the latent z ~ N(0, I)
        base_width: feature maps at the first resolution, halved at each next one
        equalized_lr, pixel_norm, minibatch_stddev: the paper's switches (sections 4.1, 4.2, 3)
        ema: keep `generator_ema`, the moving average of the generator, and sample from it
    """

    sample_batch_size = 500  # images per generator pass in `sample`; results do not depend on it
    # buffers, registered in __init__: where the growth stands
    stage: torch.Tensor  # () long, the current resolution's index
    alpha: torch.Tensor  # () float, its fade-in weight

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 256,
        stages: int = 3,
        nz: int = 128,
        base_width: int = 64,
        equalized_lr: bool = True,
        pixel_norm: bool = True,
        minibatch_stddev: bool = True,
        ema: bool = True,
    ):
        super().__init__()
        self.data_spec = DataSpec(channels, height, width, levels)
        for name, value in (("stages", stages), ("nz", nz), ("base_width", base_width)):
            check_int(f"PGGAN: {name}", value)
        for name, value in (
            ("equalized_lr", equalized_lr),
            ("pixel_norm", pixel_norm),
            ("minibatch_stddev", minibatch_stddev),
            ("ema", ema),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"PGGAN: {name} must be True or False, got {value!r}")
        f = 2 ** (stages - 1)
        if height != width or height % f or height // f < 2:
            raise ValueError(
                f"PGGAN: square images whose side divides by 2^(stages-1) = {f} into a first "
                f"resolution of at least 2 are needed, got {height}x{width} with stages={stages}"
            )
        if base_width >> (stages - 1) < 1:
            raise ValueError(f"PGGAN: base_width {base_width} cannot halve {stages - 1} times")
        self.nz, self.stages, self.base = nz, stages, height // f
        self.resolutions = [self.base << s for s in range(stages)]
        self.generator = Generator(
            channels, self.base, stages, nz, base_width, equalized=equalized_lr, pixel_norm=pixel_norm
        )
        self.discriminator = Discriminator(
            channels, self.base, stages, base_width, equalized=equalized_lr, mbstd=minibatch_stddev
        )
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if ema else None
        # where the growth stands: trained by zoo_pggan.trainer, saved with the weights
        self.register_buffer("stage", torch.tensor(stages - 1))
        self.register_buffer("alpha", torch.tensor(1.0))

    # -- growth ------------------------------------------------------------------
    def set_growth(self, stage: int, alpha: float) -> None:
        if not 0 <= stage < self.stages or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"growth: stage in [0, {self.stages}) and alpha in [0, 1], got {stage}, {alpha}")
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    @property
    def growth(self) -> tuple[int, float]:
        return int(self.stage), float(self.alpha)

    @property
    def resolution(self) -> int:
        return self.resolutions[int(self.stage)]

    # -- the networks at the current growth -----------------------------------------
    def generate(self, z: torch.Tensor, *, ema: bool = False) -> torch.Tensor:
        """Latents (B, nz) -> centred intensities (B, C, r, r) at the current resolution r."""
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z: expected latents of shape (B, {self.nz}), got {tuple(z.shape)}")
        g = self.generator_ema if ema and self.generator_ema is not None else self.generator
        return g(z, *self.growth)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """Centred intensities (B, C, r, r) at the current resolution -> scores (B,)."""
        r = self.resolution
        if x.shape[1:] != (self.data_spec.channels, r, r):
            raise ValueError(
                f"discriminate: expected images (B, {self.data_spec.channels}, {r}, {r}) at stage "
                f"{int(self.stage)}, got {tuple(x.shape)}"
            )
        return self.discriminator(x, *self.growth)

    def reals(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels (B, C, H, W) -> centred intensities at the current resolution, faded like the
        generator's output (the real images are blended between resolutions too during a fade-in)."""
        x = self.data_spec.validate(x).float() / (self.data_spec.levels - 1) * 2 - 1  # (B, C, H, W) in [-1, 1]
        stage, alpha = self.growth
        f = 2 ** (self.stages - 1 - stage)
        x = F.avg_pool2d(x, f) if f > 1 else x  # (B, C, r, r)
        if stage > 0 and alpha < 1:
            x = fade(x, F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), alpha)
        return x

    # -- sampling --------------------------------------------------------------------
    def draw_noise(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> dict[str, torch.Tensor | None]:
        """All randomness of `n` samples, drawn up front on the CPU: z (n, nz) float32 normal scaled by
        `temperature`; for binary data one uniform per sub-pixel (n, C, H, W) float64."""
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
        z = torch.randn((n, self.nz), generator=generator) * temperature
        binary = self.data_spec.levels == 2
        u = torch.rand((n, *self.data_spec.shape), generator=generator, dtype=torch.float64) if binary else None
        return {"z": z, "u": u}

    @torch.no_grad()
    def intensities(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (n, nz) -> intensities p in [0, 1], (n, C, H, W) float64 on the CPU, from the EMA generator
        (when there is one) at the current growth, upsampled (nearest) to the full size."""
        device = next(self.parameters()).device
        out = []
        for s in range(0, z.shape[0], self.sample_batch_size):
            x = self.generate(z[s : s + self.sample_batch_size].to(device), ema=True)  # (b, C, r, r)
            x = F.interpolate(x, size=self.data_spec.shape[1:], mode="nearest")  # (b, C, H, W)
            out.append(((x.double().cpu() + 1) / 2).clamp_(0, 1))
        return torch.cat(out)

    def decode(self, z: torch.Tensor, u: torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Latents -> integer levels (n, C, H, W), long, on the CPU; deterministic given z and u.

        Binary data: level 1 where u < p (temperature T != 1 draws from sigmoid(logit(p) / T); T = 0:
        where p > 1/2). More levels: the nearest level, round(p * (levels - 1)).
        """
        spec = self.data_spec
        if spec.levels == 2 and (u is None or u.shape != (z.shape[0], *spec.shape)):
            raise ValueError(f"u: binary data needs one uniform per sub-pixel, shape {(z.shape[0], *spec.shape)}")
        p = self.intensities(z)
        if spec.levels > 2:
            return torch.round(p * (spec.levels - 1)).long()
        if temperature == 0:
            return (p > 0.5).long()
        if temperature != 1:
            p = torch.sigmoid(torch.logit(p, eps=1e-12) / temperature)
        assert u is not None  # checked above: binary data comes with u
        return (u < p).long()

    def draw(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        **cond: Any,
    ) -> torch.Tensor:
        """`n` images (n, C, H, W) of integer levels (long, CPU): what `model.sample(n, ...)` returns.

        All randomness comes from `generator` (a CPU `torch.Generator`). `temperature` scales z, which the
        generator's pixelwise normalisation undoes (with `pixel_norm`, only T = 0, z = 0, changes the image),
        and, for binary data, the Bernoulli logits. `known`/`mask` raise: a GAN cannot complete images.
        """
        check_sample_args(n, temperature)
        if known is not None or mask is not None:
            raise CompletionNotSupported(
                "pggan is an implicit model (a GAN): it cannot condition on known pixels, so image completion "
                "(known/mask) is not supported; use an autoregressive model such as pixelrnn-diag"
            )
        if cond:
            raise ValueError(f"PGGAN.sample takes no conditions, got {sorted(cond)}")
        noise = self.draw_noise(n, generator, float(temperature))
        z = noise["z"]
        assert z is not None  # draw_noise always draws z
        return self.decode(z, noise["u"], float(temperature))
