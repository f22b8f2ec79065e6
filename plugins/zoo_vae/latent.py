"""What the VAE and the PixelVAE share: a latent variable z with a standard normal prior, a
convolutional encoder q(z|x) (a diagonal Gaussian), and the bounds on log p(x) built from them.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (ICLR, arXiv:1312.6114): the ELBO
    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),
trained with the reparameterisation z = mu + sigma * eps. Burda, Grosse & Salakhutdinov 2016,
"Importance Weighted Autoencoders" (ICLR, arXiv:1509.00519), eq. (8): the bound with k samples
    L_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)],   z_i ~ q(z|x),
which is the ELBO at k=1, never decreases in k and tends to log p(x). Its Monte Carlo estimate is
what `log_prob_bound(x, k)` returns (the zoo's `BoundedLikelihood`); the expectation, not each
draw, is below log p(x), and the harness reports it as an upper bound on the NLL.

A subclass implements `decoder_logits(x, z) -> (B, C, H, W, levels)`: the logits of p(x|z) per
sub-pixel (for an autoregressive decoder, given z and every earlier sub-pixel of x).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from zoo.autoregressive import categorical_log_prob
from zoo.errors import CompletionNotSupported
from zoo.nn import check_int, scale_input
from zoo.protocols import DataSpec
from zoo.sampling import SampleMethod, check_sample_args

__all__ = ["LatentVariableModel", "ConvEncoder", "importance_bound", "CompletionNotSupported"]

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last dimension: `(..., L) -> (...)`."""
    return -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar)).sum(-1)


def importance_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """`(B, k)` log importance weights log p(x, z_i) - log q(z_i|x) -> `(B,)`: log (1/k) sum_i w_i."""
    return torch.logsumexp(log_weights, dim=1) - math.log(log_weights.shape[1])


class ConvEncoder(nn.Module):
    """q(z|x): two stride-2 convolutions and a linear map to the mean and log-variance of z.

    x (B, C, H, W) levels -> scaled to [-1, 1]
    4x4 conv stride 2, C -> h, ReLU              (B, h, H/2, W/2)
    4x4 conv stride 2, h -> 2h, ReLU             (B, 2h, H/4, W/4)
    flatten, linear -> 2L                        (B, 2L): mean | log-variance
    """

    def __init__(self, spec: DataSpec, hidden: int, latent: int):
        super().__init__()
        for name, value in (("height", spec.height), ("width", spec.width)):
            if value % 4:
                raise ValueError(
                    f"ConvEncoder: {name} must be a multiple of 4 (two stride-2 convolutions), got {value}"
                )
        self.levels = spec.levels
        self.net = nn.Sequential(
            nn.Conv2d(spec.channels, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * hidden * (spec.height // 4) * (spec.width // 4), 2 * latent),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = cast(nn.Conv2d, self.net[0]).weight.dtype  # the first layer's, a convolution
        mean, logvar = self.net(scale_input(x, self.levels, dtype)).chunk(2, dim=1)  # (B, L) each
        return mean, logvar


class LatentVariableModel(SampleMethod, nn.Module):
    """p(z) = N(0, I) over `latent` units, q(z|x) from `encoder` (images -> mean, log-variance `(B, L)`;
    `ConvEncoder` in the zoo's models), p(x|z) from the subclass's `decoder_logits` and `decode`.

    `bound_pass` caps the images (x, z pairs) one decoder pass scores while estimating the bound:
    the k samples of a batch are drawn in chunks of `bound_pass // B` (at least 1), and scored in
    passes of at most `bound_pass` images.
    """

    bound_pass = 8192

    def __init__(self, data_spec: DataSpec, latent: int, encoder: nn.Module):
        super().__init__()
        self.data_spec = data_spec
        self.latent = check_int("latent", latent)
        self.encoder = encoder

    # -- what a subclass provides ----------------------------------------------------
    def decoder_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """`x` (B, C, H, W) levels, `z` (B, L) -> logits `(B, C, H, W, levels)` of p(x|z)."""
        raise NotImplementedError

    # -- the pieces --------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance `(B, L)` of q(z|x) for images `x` (integer levels)."""
        return self.encoder(self.data_spec.validate(x))

    def bernoulli_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Binary data: the logit of each sub-pixel being 1 given z (and, for an autoregressive decoder,
        the sub-pixels before it), `(B, C, H, W)`: the difference of `decoder_logits`' two levels. A
        decoder that computes it directly overrides this (the VAE's: about 20% of a k=50 training step)."""
        logits = self.decoder_logits(x, z)  # (B, C, H, W, 2)
        return logits[..., 1] - logits[..., 0]

    def decoder_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats: `(B,)`."""
        if self.data_spec.levels == 2:  # the same number as the softmax, as a Bernoulli (about 4x faster)
            bernoulli = self.bernoulli_logits(x, z).float()  # (B, C, H, W)
            return -F.binary_cross_entropy_with_logits(bernoulli, x.float(), reduction="none").flatten(1).sum(1)
        return categorical_log_prob(self.decoder_logits(x, z), x)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`(B, k)`: log p(x, z_i) - log q(z_i|x) for z_i ~ q(z|x), drawn from `generator`, scored in
        decoder passes of at most `bound_pass` images."""
        x = self.data_spec.validate(x)
        B = x.shape[0]
        mean, logvar = self.encoder(x)  # (B, L)
        std = torch.exp(0.5 * logvar)
        chunk = max(1, self.bound_pass // max(B, 1))
        out = []
        for start in range(0, k, chunk):
            kc = min(chunk, k - start)
            eps = torch.randn((kc, B, self.latent), generator=generator).to(
                x.device
            )  # drawn on the CPU: same on any device
            z = mean + std * eps  # (kc, B, L)
            log_q = gaussian_log_density(z, mean, logvar)  # (kc, B)
            log_prior = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            xs = x.unsqueeze(0).expand(kc, *x.shape).reshape(kc * B, *x.shape[1:])  # (kc*B, C, H, W)
            pieces = math.ceil(kc * B / self.bound_pass)  # when one sample of a large batch is already more
            passes = zip(xs.tensor_split(pieces), z.reshape(kc * B, -1).tensor_split(pieces), strict=True)
            log_px = torch.cat([self.decoder_log_prob(xp, zp) for xp, zp in passes]).view(kc, B)
            out.append((log_px + log_prior - log_q).T)  # (B, kc)
        return torch.cat(out, dim=1)

    # -- the bounds ----------------------------------------------------------------------
    def log_prob_bound(self, x: torch.Tensor, k: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The importance-weighted lower bound on log p(x) with `k` samples (k=1: the ELBO), in nats
        per image: `(B,)`, one Monte Carlo draw from `generator` (same generator state, same value)."""
        check_int("k", k)
        return importance_bound(self.log_weights(x, k, generator))

    def loss(self, x: torch.Tensor, k: int = 1) -> torch.Tensor:
        """The training objective, a scalar in nats per image: the negative ELBO with the KL term in
        closed form (k=1, Kingma & Welling 2014, appendix B), else the negative IWAE bound L_k."""
        x = self.data_spec.validate(x)
        if check_int("k", k) > 1:
            return -importance_bound(self.log_weights(x, k)).mean()
        mean, logvar = self.encoder(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(1)  # KL(q(z|x) || N(0, I)), (B,)
        return (kl - self.decoder_log_prob(x, z)).mean()

    # -- sampling and the latent space ------------------------------------------------------
    @torch.no_grad()
    def draw(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        **cond,
    ) -> torch.Tensor:
        """`n` images `(n, C, H, W)` of integer levels: z ~ N(0, T^2 I), then x ~ p(x|z) at temperature T
        (what `model.sample(n, ...)` and `zoo.sample(model, n, ...)` return). All randomness comes from
        `generator` (CPU): z first, then the decoder's uniforms. `known`/`mask` raise
        `CompletionNotSupported`: completing an image needs p(z | known pixels), which the encoder
        (trained on whole images) does not give."""
        check_sample_args(n, temperature)
        if known is not None or mask is not None:
            raise CompletionNotSupported(
                f"{type(self).__name__} does not complete images (known/mask): that needs the posterior of z "
                "given part of an image, which its encoder (trained on whole images) does not give; use an "
                "autoregressive model such as pixelrnn-diag"
            )
        if cond:
            raise ValueError(f"{type(self).__name__}.sample takes no conditions, got {sorted(cond)}")
        return self.decode(
            self.prior_sample(n, generator, float(temperature)), generator=generator, temperature=float(temperature)
        )

    def prior_sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """`n` draws `(n, L)` from the prior (on the CPU generator), scaled by `temperature` (0: its mean)."""
        device = next(self.parameters()).device
        return (torch.randn((n, self.latent), generator=generator) * temperature).to(device)

    @torch.no_grad()
    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode the posterior means of two images and `steps - 2` points on the line between them:
        `(steps, C, H, W)` levels, each the most likely image given its z (for the VAE) or a greedy
        raster decode (for the PixelVAE)."""
        if check_int("steps", steps) < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        spec = self.data_spec
        m0, _ = self.encode(spec.validate(x0, name="x0", batch=False).unsqueeze(0))
        m1, _ = self.encode(spec.validate(x1, name="x1", batch=False).unsqueeze(0))
        t = torch.linspace(0, 1, steps, device=m0.device).unsqueeze(1)  # (steps, 1)
        return self.decode(m0 * (1 - t) + m1 * t, temperature=0.0)

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 0.0
    ) -> torch.Tensor:
        """Decode the posterior mean of each image: `(B, C, H, W)` levels (temperature 0: the most
        likely levels; 1: a draw from p(x|z) with `generator`)."""
        mean, _ = self.encode(x)
        return self.decode(mean, generator=generator, temperature=temperature)

    def decode(
        self, z: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:  # pragma: no cover - abstract
        """Images `(n, C, H, W)` drawn from p(x|z) for `z` `(n, L)`."""
        raise NotImplementedError
