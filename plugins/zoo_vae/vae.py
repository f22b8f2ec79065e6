"""The variational autoencoder of Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (ICLR,
arXiv:1312.6114), with convolutional networks in place of the paper's MLPs, trained on the ELBO or
on the importance-weighted bound of Burda et al. 2016 (recipe key `iw_samples`, see trainer.py).

    z ~ N(0, I)                                              (B, L)
    decoder: linear L -> d, tanh, linear d -> d, tanh        (B, d)      the paper's MLP (appendix C.2)
             linear d -> C*H*W*(levels-1)                    (B, C, H, W, levels - 1), then a 0 logit
    p(x|z) = prod over sub-pixels of a softmax over levels   (B, C, H, W, levels)

The encoder is convolutional (latent.py); the decoder is the paper's two-layer MLP because the
bound with k samples runs the decoder k times per image, and a transposed-conv decoder of the
encoder's size was several times slower per pass in a trial here (docs/vae.md). For binary data the softmax over
2 levels is the paper's Bernoulli. The sub-pixels are independent given z, so the whole image is
drawn in one pass, and completion is not offered (latent.py).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.nn import check_int
from zoo.protocols import DataSpec
from zoo.sampling import choose, draw_uniforms

from .latent import ConvEncoder, LatentVariableModel

__all__ = ["VAE", "MLPDecoder"]


class MLPDecoder(nn.Module):
    """z `(B, L)` -> logits `(B, C, H, W, levels)`; the layers of the module docstring. The first
    level's logit is fixed at 0 (a softmax is unchanged by a shift), so binary data costs one
    output per sub-pixel: the Bernoulli logit."""

    def __init__(self, channels: int, height: int, width: int, levels: int, latent: int, hidden: int):
        super().__init__()
        self.shape = (channels, height, width, levels)
        self.net = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, channels * height * width * (levels - 1)),
        )

    def free_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The logits of levels 1 .. levels-1 `(B, C, H, W, levels - 1)`; for binary data, the Bernoulli logit."""
        C, H, W, levels = self.shape
        return self.net(z).view(-1, C, H, W, levels - 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        free = self.free_logits(z)  # (B, C, H, W, levels - 1)
        return torch.cat([torch.zeros_like(free[..., :1]), free], dim=-1)  # (B, C, H, W, levels)


class VAE(LatentVariableModel):
    """A `zoo.protocols.BoundedLikelihood` and `Sampler`: `log_prob_bound(x, k)`, `sample(n)`,
    `reconstruct(x)`, `interpolate(x0, x1)`. Constructor arguments are its config."""

    def __init__(
        self,
        channels: int = 1,
        height: int = 28,
        width: int = 28,
        levels: int = 2,
        latent: int = 50,  # L: units of z (Burda et al. 2016 use 50)
        hidden: int = 64,  # the encoder's h / 2h maps
        decoder_hidden: int = 512,  # d: the decoder MLP's width
    ):
        spec = DataSpec(channels, height, width, levels)
        super().__init__(spec, check_int("latent", latent), ConvEncoder(spec, check_int("hidden", hidden), latent))
        self.decoder_hidden = check_int("decoder_hidden", decoder_hidden)
        self.decoder = MLPDecoder(channels, height, width, levels, latent, self.decoder_hidden)

    def decoder_logits(self, x: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """logits `(B, C, H, W, levels)` of p(x|z); `x` is not looked at (sub-pixels independent given z)."""
        return self.decoder(z)

    def bernoulli_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Binary data: the Bernoulli logits `(B, C, H, W)` straight from the decoder, without the zero
        logit of level 0 that `decoder_logits` puts beside them (the same numbers: l - 0 = l)."""
        return self.decoder.free_logits(z)[..., 0]

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """x ~ p(x|z) `(n, C, H, W)` long, each sub-pixel by inverse CDF at a uniform from `generator`
        (`zoo.sampling.choose`, as the autoregressive samplers do); temperature 0: the most likely levels."""
        logits = self.decoder(z)  # (n, C, H, W, levels)
        u = draw_uniforms(z.shape[0], self.data_spec, generator).to(z.device)  # (n, C, H, W)
        levels = logits.shape[-1]
        return choose(logits.reshape(-1, levels), u.reshape(-1), temperature).view(u.shape).long()
