"""DCGAN: the implicit-density baseline of the zoo.

Papers:
- Goodfellow et al. 2014, "Generative Adversarial Nets" (the minimax game and the
  non-saturating generator loss -log D(G(z)), section 3).
- Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks" (arXiv:1511.06434): strided
  (transposed) convolutions instead of pooling, batch norm in both networks
  except the generator's output and the discriminator's input, ReLU in the
  generator, LeakyReLU(0.2) in the discriminator, weights from N(0, 0.02).
- Mirza & Osindero 2014, "Conditional Generative Adversarial Nets": the class
  label as a one-hot vector appended to the noise and to the discriminator's input.

The generator maps noise z ~ N(0, I) to per-sub-pixel intensities in [0, 1]
(a sigmoid output). `sample` turns them into the integer levels of the data
spec: a Bernoulli draw per sub-pixel for binary data, the nearest level for
more levels. The model is a `zoo.Sampler` and not a `zoo.Likelihood`: it has
no `log_prob` and no `logits`, because a GAN defines no density. Its public
`sample(n, ...)` is the zoo's (`zoo.sampling.SampleMethod`), which checks the
arguments and calls `draw`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo.errors import CompletionNotSupported
from zoo.nn import check_int
from zoo.protocols import DataSpec
from zoo.sampling import SampleMethod, check_sample_args

__all__ = ["DCGAN", "Generator", "Discriminator", "CompletionNotSupported", "dcgan_init"]


def _num_resamplings(height: int, width: int) -> int:
    """How many stride-2 stages lead from a base map of at least 4x4 to `height` x `width`.

    28x28 -> 2 (7x7 base), 32x32 -> 3 (4x4 base), 8x8 -> 1 (4x4 base).
    """
    k = 0
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= 4 and width // 2 >= 4:
        height, width, k = height // 2, width // 2, k + 1
    return k


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016, section 4): conv/linear weights from
    N(0, 0.02), batch-norm scales from N(1, 0.02), biases zero."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, nz) [+ one-hot label (B, K)] -> logits of the intensities (B, C, H, W).

    Project and reshape to (ngf * 2^(k-1), H / 2^k, W / 2^k), then k transposed
    4x4 stride-2 convolutions, halving the channels and doubling the size each time.
    For 28x28 and ngf=64: 100 -> (128, 7, 7) -> (64, 14, 14) -> (C, 28, 28).
    """

    def __init__(self, channels: int, height: int, width: int, nz: int, ngf: int, num_classes: int, k: int):
        super().__init__()
        self.base = (ngf * 2 ** (k - 1), height >> k, width >> k)  # (channels, h, w) of the first map
        features = self.base[0] * self.base[1] * self.base[2]
        self.project = nn.Sequential(
            nn.Linear(nz + num_classes, features, bias=False),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c = self.base[0]
        for _ in range(k - 1):
            blocks += [
                nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(inplace=True),
            ]
            c //= 2
        blocks.append(nn.ConvTranspose2d(c, channels, 4, 2, 1))  # no batch norm on the output
        self.upsample = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], *self.base)  # (B, ngf*2^(k-1), H/2^k, W/2^k)
        return self.upsample(h)  # (B, C, H, W) logits; sigmoid gives intensities


class Discriminator(nn.Module):
    """Intensities (B, C, H, W) [+ one-hot label planes (B, K, H, W)] -> one logit per image (B,).

    The mirror of the generator: k 4x4 stride-2 convolutions doubling the
    channels (no batch norm on the first), LeakyReLU(0.2), then a linear layer.
    """

    def __init__(self, channels: int, height: int, width: int, ndf: int, num_classes: int, k: int):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(channels + num_classes, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = ndf
        for _ in range(k - 1):
            blocks += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, inplace=True)]
            c *= 2
        self.features = nn.Sequential(*blocks)
        self.classify = nn.Linear(c * (height >> k) * (width >> k), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, ndf*2^(k-1), H/2^k, W/2^k)
        return self.classify(h.flatten(1)).squeeze(1)  # (B,)


class DCGAN(SampleMethod, nn.Module):
    """A DCGAN generator and discriminator for images of integer levels.

    Constructor arguments are the registered config:
        channels, height, width, levels: the data spec (binarized MNIST: 1, 28, 28, 2)
        nz: size of the noise vector z ~ N(0, I)
        ngf, ndf: base widths of the generator and the discriminator
        num_classes: > 0 for a class-conditional GAN (`sample(n, y=labels)`)
    """

    sample_batch_size = 500  # images per generator pass in `sample`; results do not depend on it

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 2,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        num_classes: int = 0,
    ):
        super().__init__()
        self.data_spec = DataSpec(channels, height, width, levels)
        for name, value in (("nz", nz), ("ngf", ngf), ("ndf", ndf)):
            check_int(f"DCGAN: {name}", value)
        check_int("DCGAN: num_classes (0 = unconditional)", num_classes, 0)
        k = _num_resamplings(height, width)
        if k == 0:
            raise ValueError(
                f"DCGAN: height and width must halve at least once to a map of 4x4 or more "
                f"(e.g. 28x28, 32x32, 8x8), got {height}x{width}"
            )
        if ngf % 2 ** (k - 1):
            raise ValueError(f"DCGAN: ngf must be divisible by 2^{k - 1} for {height}x{width} images, got {ngf}")
        self.nz, self.num_classes = nz, num_classes
        self.generator = Generator(channels, height, width, nz, ngf, num_classes, k)
        self.discriminator = Discriminator(channels, height, width, ndf, num_classes, k)
        self.apply(dcgan_init)

    # -- conditioning --------------------------------------------------------
    def _labels(self, y: Any, n: int, device: torch.device) -> torch.Tensor | None:
        """Check class labels `y` ((n,) ints in [0, num_classes) or one int) and return them (n,) long."""
        if self.num_classes == 0:
            if y is not None:
                raise ValueError("this DCGAN is unconditional (num_classes=0); it takes no labels y")
            return None
        if y is None:
            raise ValueError(f"this DCGAN is class-conditional (num_classes={self.num_classes}); pass labels y")
        if isinstance(y, int) and not isinstance(y, bool):
            y = torch.full((n,), y, dtype=torch.long)
        if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool or y.shape != (n,):
            got = f"{y.dtype} tensor of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y: expected an int or an integer tensor of shape ({n},), got {got}")
        if n and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"y: labels must lie in [0, {self.num_classes}), got [{int(y.min())}, {int(y.max())}]")
        return y.to(device=device, dtype=torch.long)

    def _with_labels_g(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            return z
        return torch.cat([z, nn.functional.one_hot(y, self.num_classes).to(z)], 1)  # (B, nz + K)

    def _with_labels_d(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            return x
        B, _, H, W = x.shape
        planes = nn.functional.one_hot(y, self.num_classes).to(x).view(B, -1, 1, 1).expand(B, self.num_classes, H, W)
        return torch.cat([x, planes], 1)  # (B, C + K, H, W)

    # -- the two networks ------------------------------------------------------
    def generator_logits(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        """Noise (B, nz) -> logits (B, C, H, W) of the intensities (their sigmoid)."""
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z: expected noise of shape (B, {self.nz}), got {tuple(z.shape)}")
        return self.generator(self._with_labels_g(z, self._labels(y, z.shape[0], z.device)))

    def forward(self, z: torch.Tensor, y: Any = None) -> torch.Tensor:
        """Noise (B, nz) -> intensities (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.generator_logits(z, y))

    def discriminate(self, intensities: torch.Tensor, y: Any = None) -> torch.Tensor:
        """Intensities (B, C, H, W) in [0, 1] -> logits (B,) of "real"."""
        return self.discriminator(
            self._with_labels_d(intensities, self._labels(y, intensities.shape[0], intensities.device))
        )

    def intensities(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels (B, C, H, W) -> intensities level / (levels - 1): real data as the discriminator sees it."""
        x = self.data_spec.validate(x)
        return x.float() / (self.data_spec.levels - 1)

    # -- sampling --------------------------------------------------------------
    def draw_noise(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0, y: Any = None
    ) -> dict[str, torch.Tensor | None]:
        """All the randomness of `n` samples, drawn up front on the CPU, in this order:
        z (n, nz) float32 normal (scaled by `temperature`); labels y (n,) uniform over the
        classes if the model is conditional and none are given; for binary data one uniform
        per sub-pixel (n, C, H, W) float64 for the Bernoulli draws."""
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
        z = torch.randn((n, self.nz), generator=generator) * temperature
        if self.num_classes and y is None:
            y = torch.randint(self.num_classes, (n,), generator=generator)
        u = (
            torch.rand((n, *self.data_spec.shape), generator=generator, dtype=torch.float64)
            if self.data_spec.levels == 2
            else None
        )
        return {"z": z, "y": y, "u": u}

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, u: torch.Tensor | None = None, y: Any = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Noise -> integer levels (n, C, H, W), long, on the CPU. Deterministic given z and u.

        Binary data: level 1 where u < sigmoid(logit / temperature) (temperature 0: where logit > 0).
        More levels: the nearest level to the intensity, round(p * (levels - 1)).
        """
        spec = self.data_spec
        if spec.levels == 2 and (u is None or u.shape != (z.shape[0], *spec.shape)):
            raise ValueError(f"u: binary data needs one uniform per sub-pixel, shape {(z.shape[0], *spec.shape)}")
        device = next(self.parameters()).device
        y = self._labels(y, z.shape[0], torch.device("cpu"))
        was_training = self.training
        self.eval()  # batch norm from running statistics: an image does not depend on its batch
        try:
            out = []
            for s in range(0, z.shape[0], self.sample_batch_size):
                part = slice(s, s + self.sample_batch_size)
                logits = (
                    self.generator_logits(z[part].to(device), None if y is None else y[part].to(device)).double().cpu()
                )
                if spec.levels == 2:
                    if temperature == 0:
                        levels = (logits > 0).long()
                    else:
                        assert u is not None  # checked above: binary data comes with u
                        levels = (u[part] < torch.sigmoid(logits / temperature)).long()
                else:
                    levels = torch.round(torch.sigmoid(logits) * (spec.levels - 1)).long()
                out.append(levels)
        finally:
            self.train(was_training)
        return torch.cat(out).clamp_(0, spec.levels - 1)

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
        """`n` images (n, C, H, W) of integer levels (long, CPU): what `model.sample(n, ...)` and
        `zoo.sample(model, n, ...)` return for this model, after checking `n` and `temperature`.

        All randomness comes from `generator` (a CPU `torch.Generator`), so a seed gives
        the same images on any device. `temperature` scales the noise (z ~ N(0, T^2 I))
        and, for binary data, the Bernoulli logits as in the autoregressive samplers;
        T = 1 is the model. A class-conditional model takes `y=labels` ((n,) or one int);
        without labels it draws them uniformly from `generator`. `known`/`mask` raise
        `CompletionNotSupported`: a GAN cannot condition on pixels. (`sample`'s `progress`
        does not reach here: one generator pass has nothing to show.)
        """
        check_sample_args(n, temperature)
        if known is not None or mask is not None:
            raise CompletionNotSupported(
                "dcgan is an implicit model (a GAN): it cannot condition on known pixels, so image "
                "completion (known/mask) is not supported; use an autoregressive model such as pixelrnn-diag"
            )
        y = cond.pop("y", None)
        if cond:
            raise ValueError(f"DCGAN.sample takes the condition y only, got {sorted(cond)}")
        y = self._labels(y, n, torch.device("cpu")) if y is not None else None
        noise = self.draw_noise(n, generator, float(temperature), y)
        z = noise["z"]
        assert z is not None  # draw_noise always draws z
        return self.decode(z, noise["u"], noise["y"], float(temperature))
