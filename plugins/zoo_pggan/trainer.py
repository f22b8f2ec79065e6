"""The PGGAN's training step and growth schedule, used by `zoo train pggan` (ModelSpec.trainer).

Karras et al. 2018:
- the schedule (section 3, appendix A.1): `stable_images` images at the first resolution; then, for
  each next one, `fade_images` images during which `alpha` rises linearly from 0 to 1, and
  `stable_images` more at `alpha = 1`. After the last stage the run stays at full resolution.
  The optimizers' state is reset when a new resolution starts, as in the paper's code
  (new layers, new moments);
- the loss (section 6 and appendix A.1): WGAN-GP (Gulrajani et al. 2017), one critic step per
  generator step, gradient penalty weight 10 on random interpolates of real and fake images,
  plus the drift term 0.001 * D(real)^2 that keeps the critic's scores near 0. `loss="logistic"`
  is the non-saturating GAN loss instead (Goodfellow et al. 2014), for comparison;
- Adam with lr 1e-3, betas (0, 0.99), eps 1e-8; batch 16-64;
- the generator's moving average with decay 0.999 (`generator_ema`), the released generator; here
  with a warm-up, decay min(0.999, (1 + t) / (10 + t)) at step t, so that in a run of a few thousand
  steps the average is not half made of the random initialisation (0.999^700 = 0.5).

The generic loop in `zoo.training` owns data, epochs, checkpoints of the model (whose buffers
`stage` and `alpha` carry the growth) and logging; this class (a `zoo.protocols.Trainer`) owns the
optimizers, the noise generator, the count of images shown (which fixes the growth) and a fixed
latent batch whose images `epoch_samples` returns at every epoch's end.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, TypedDict

import torch
from torch.nn import functional as F

from zoo.errors import ZooError

__all__ = ["PGGANTrainer", "growth_at", "LOSSES"]

LOSSES = ("wgan-gp", "logistic")
_STATE_KEYS = ("images", "steps", "opt_d", "opt_g", "rng", "fixed", "phase")
_UNSUPPORTED = {"optimizer": "adam", "lr_schedule": "constant", "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.0}


class _AdamSettings(TypedDict):
    """The Adam arguments of both networks' optimizers."""

    lr: float
    betas: tuple[float, float]
    eps: float


def growth_at(images: int, stages: int, stable_images: int, fade_images: int) -> tuple[int, float]:
    """(stage, alpha) after `images` training images: stage 0 for `stable_images`, then per stage
    `fade_images` of fade-in (alpha = fraction of them shown) and `stable_images` at alpha = 1."""
    if images < stable_images or stages == 1:
        return 0, 1.0
    t = images - stable_images
    per = fade_images + stable_images
    stage = 1 + t // per
    if stage >= stages:
        return stages - 1, 1.0
    into = t - (stage - 1) * per
    return int(stage), (min(1.0, into / fade_images) if fade_images else 1.0)


def _number(recipe: Mapping[str, Any], key: str, default: float, *, positive: bool = True) -> float:
    value = recipe.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (positive and value == 0):
        raise ValueError(
            f"recipe[{key!r}] must be a {'positive' if positive else 'non-negative'} number, got {value!r}"
        )
    return float(value)


class PGGANTrainer:
    """Optimizers, growth and one critic + one generator update for a `zoo_pggan.pggan.PGGAN`.

    Recipe keys read here (the rest are the generic loop's): `lr` (1e-3), `betas` ((0, 0.99)), `eps`
    (1e-8), `seed`, and the keys below (`recipe_defaults`).
    """

    recipe_defaults: Mapping[str, Any] = {
        "stable_images": 60_000,  # images at each resolution with alpha = 1 (the first: the only phase)
        "fade_images": 60_000,  # images over which a new resolution fades in
        "loss": "wgan-gp",  # or "logistic" (non-saturating)
        "gp_weight": 10.0,  # WGAN-GP's lambda
        "drift": 0.001,  # epsilon_drift * D(real)^2
        "generator_ema": 0.999,  # decay of the moving average of the generator (needs the model's ema=True)
        "fixed_noise": 64,  # latents of the grid saved at every epoch's end
    }

    def __init__(self, model: Any, recipe: Mapping[str, Any], device: Any = "cpu"):
        for attr in ("generator", "discriminator", "set_growth", "reals", "generate"):
            if not hasattr(model, attr):
                raise ValueError(f"PGGANTrainer trains a zoo_pggan PGGAN; {type(model).__name__} has no {attr!r}")
        for key, only in _UNSUPPORTED.items():
            if key in recipe and recipe[key] != only:
                raise ValueError(
                    f"PGGANTrainer supports {key}={only!r} only (the PGGAN recipe; its own EMA is "
                    f"'generator_ema'), got {recipe[key]!r}"
                )
        r = {**self.recipe_defaults, **recipe}
        if r["loss"] not in LOSSES:
            raise ValueError(f"recipe['loss'] must be one of {LOSSES}, got {r['loss']!r}")
        self.loss = r["loss"]
        self.stable = int(_number(r, "stable_images", 0))
        self.fade_in = int(_number(r, "fade_images", 0, positive=False))
        self.gp_weight = _number(r, "gp_weight", 10.0, positive=False)
        self.drift = _number(r, "drift", 0.001, positive=False)
        self.ema_decay = _number(r, "generator_ema", 0.999, positive=False)
        if not self.ema_decay < 1:
            raise ValueError(f"recipe['generator_ema'] must be below 1, got {self.ema_decay}")
        if self.ema_decay > 0 and model.generator_ema is None:
            raise ValueError("recipe['generator_ema'] > 0 needs a model built with ema=True (or set it to 0)")
        betas = r.get("betas", (0.0, 0.99))
        if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"recipe['betas'] must be two numbers in [0, 1), got {betas!r}")
        self.adam: _AdamSettings = {
            "lr": _number(r, "lr", 1e-3),
            "betas": (float(betas[0]), float(betas[1])),
            "eps": _number(r, "eps", 1e-8),
        }
        n_fixed = r["fixed_noise"]
        if not isinstance(n_fixed, int) or isinstance(n_fixed, bool) or n_fixed < 1:
            raise ValueError(f"recipe['fixed_noise'] must be a positive int, got {n_fixed!r}")
        self.model = model.to(device)
        self.device = torch.device(device)
        seed = r.get("seed", 0)
        self.rng = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on every device
        self.fixed = torch.randn((n_fixed, model.nz), generator=torch.Generator().manual_seed(seed + 1))
        self.images = self.steps = 0
        self.phase = -1  # the stage whose optimizers exist; -1: none yet
        self._grow()

    # -- growth ----------------------------------------------------------------------
    def _grow(self) -> None:
        """Set the model's (stage, alpha) for the images shown so far; fresh optimizers at a new stage."""
        stage, alpha = growth_at(self.images, self.model.stages, self.stable, self.fade_in)
        self.model.set_growth(stage, alpha)
        if stage != self.phase:
            self._new_optimizers(stage)

    def _new_optimizers(self, stage: int) -> None:
        self.opt_d = torch.optim.Adam(self.model.discriminator.parameters(), **self.adam)
        self.opt_g = torch.optim.Adam(self.model.generator.parameters(), **self.adam)
        self.phase = stage

    # -- one step ----------------------------------------------------------------------
    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP: mean over the batch of (|grad_x D(x_hat)| - 1)^2 at x_hat = eps real + (1 - eps) fake."""
        eps = torch.rand((real.shape[0], 1, 1, 1), generator=self.rng).to(self.device)
        x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.model.discriminate(x_hat).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    def step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        """One critic update and one generator update on a batch of real images `x` (integer levels,
        (B, C, H, W)), at the growth the images shown so far fix. Returns loss_d, loss_g, the mean scores
        of real and fake images, gp (WGAN-GP), stage, alpha and the resolution. Raises on a non-finite loss."""
        if y is not None:
            raise ValueError("PGGAN is unconditional; the loop passes labels to class-conditional models only")
        model = self.model
        model.train()
        self._grow()
        real = model.reals(x).to(self.device)  # (B, C, r, r) in [-1, 1]
        B = real.shape[0]
        z = torch.randn((B, model.nz), generator=self.rng).to(self.device)

        fake = model.generate(z)  # (B, C, r, r)
        d_real, d_fake = model.discriminate(real), model.discriminate(fake.detach())  # (B,), (B,)
        stats: dict[str, float] = {}
        if self.loss == "wgan-gp":
            gp = self._gradient_penalty(real, fake.detach())
            loss_d = d_fake.mean() - d_real.mean() + self.gp_weight * gp + self.drift * d_real.pow(2).mean()
            stats["gp"] = gp.item()
        else:
            loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        self._check("loss_d", loss_d)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        score = model.discriminate(fake)
        loss_g = -score.mean() if self.loss == "wgan-gp" else F.softplus(-score).mean()
        self._check("loss_g", loss_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.opt_d.zero_grad(set_to_none=True)  # the generator step left gradients on D; drop them
        self._update_ema()

        self.images += B
        self.steps += 1
        stage, alpha = model.growth
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": d_real.mean().item(),
            "d_fake": d_fake.mean().item(),
            **stats,
            "stage": float(stage),
            "alpha": alpha,
            "resolution": float(model.resolution),
        }

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema = self.model.generator_ema
        if ema is None:
            return
        if self.ema_decay == 0:
            ema.load_state_dict(self.model.generator.state_dict())
            return
        # warm-up (as timm's ModelEmaV3): a short run's average is not dominated by the random start
        decay = min(self.ema_decay, (1 + self.steps) / (10 + self.steps))
        for e, p in zip(ema.parameters(), self.model.generator.parameters(), strict=True):
            e.lerp_(p, 1 - decay)

    def _check(self, name: str, value: torch.Tensor) -> None:
        if not math.isfinite(value.item()):
            raise ZooError(
                f"PGGAN training diverged after {self.images} images: {name} is {value.item()} "
                f"(stage {int(self.model.stage)}, alpha {float(self.model.alpha):.3f}); this step's "
                f"update was not applied. Resume from the last checkpoint with a lower lr (now {self.adam['lr']:g})."
            )

    # -- the trainer protocol's other hooks ------------------------------------------------
    @torch.no_grad()
    def epoch_samples(self) -> torch.Tensor:
        """The fixed latents' images (n, C, H, W) of integer levels at the current growth (nearest-upsampled
        to full size), from the generator that `sample` uses; saved by the loop at every epoch's end."""
        model = self.model
        spec = model.data_spec
        p = model.intensities(self.fixed)  # (n, C, H, W) in [0, 1]
        return torch.round(p * (spec.levels - 1)).long()

    def state_dict(self) -> dict[str, Any]:
        """Optimizers, the noise generator's state, images shown, the current phase and the fixed latents
        (the model's weights and growth buffers are checkpointed by the loop). A copy."""
        return {
            "images": self.images,
            "steps": self.steps,
            "phase": self.phase,
            "opt_d": copy.deepcopy(self.opt_d.state_dict()),
            "opt_g": copy.deepcopy(self.opt_g.state_dict()),
            "rng": self.rng.get_state(),
            "fixed": self.fixed.clone(),
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned, for an exact resume (also inside or across a growth stage)."""
        if isinstance(d, Mapping) and set(_STATE_KEYS) - set(d) == {"steps"}:  # saved before the EMA warm-up
            d = {**d, "steps": 10**9}  # counted no steps: the warm-up is long over
        if not isinstance(d, Mapping) or set(d) != set(_STATE_KEYS):
            got = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise ValueError(f"PGGANTrainer state: expected keys {sorted(_STATE_KEYS)}, got {got}")
        if d["fixed"].shape[1:] != self.fixed.shape[1:]:
            raise ValueError(
                f"PGGANTrainer state: fixed latents of shape {tuple(d['fixed'].shape)} do not fit nz={self.model.nz}"
            )
        self.images, self.steps = int(d["images"]), int(d["steps"])
        # the optimizers of the stage they were saved at (the model's growth buffers come with its weights);
        # the next step moves on to a new stage, with fresh optimizers, exactly as the run would have
        self._new_optimizers(int(d["phase"]))
        self.opt_d.load_state_dict(d["opt_d"])
        self.opt_g.load_state_dict(d["opt_g"])
        self.rng.set_state(d["rng"])
        self.fixed = d["fixed"].clone()
