"""The GAN's own training step, used by `zoo train dcgan` (ModelSpec.trainer).

One step is one discriminator update and one generator update (Goodfellow et
al. 2014, Algorithm 1 with k = 1) with the non-saturating generator loss
-log D(G(z)) (ibid., section 3), Adam with beta1 = 0.5 and lr 2e-4 (Radford et
al. 2016, section 4). Real images are fed to the discriminator as intensities
level / (levels - 1). Fakes are fed as the generator's intensities, or, with the
recipe key `fakes="bernoulli"` (binary data), as Bernoulli draws from them with a
straight-through gradient: the discriminator then sees binary fakes as it sees
binary reals (it cannot tell them apart by grey values alone), and what it judges
is what `DCGAN.sample` returns.

The generic loop in `zoo.train` owns data, epochs, checkpoints of the model's
weights and logging; this class (a `zoo.protocols.Trainer`) owns the optimizers,
the noise generator and a fixed noise batch whose samples, returned by the
optional hook `epoch_samples`, show progress during training.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, cast

import torch
from torch import nn

from zoo.errors import ZooError

if TYPE_CHECKING:  # pragma: no cover
    from zoo_gan.dcgan import DCGAN

__all__ = ["GANTrainer"]

FAKES = ("intensities", "bernoulli")
_STATE_KEYS = ("step", "opt_d", "opt_g", "rng", "fixed")


def _recipe_number(recipe: Mapping[str, Any], key: str, default: float, *, positive: bool = True) -> float:
    value = recipe.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (positive and value == 0):
        raise ValueError(
            f"recipe[{key!r}] must be a {'positive' if positive else 'non-negative'} number, got {value!r}"
        )
    return float(value)


def _recipe_betas(recipe: Mapping[str, Any]) -> tuple[float, float]:
    betas = recipe.get("betas", (0.5, 0.999))
    if (
        not isinstance(betas, (tuple, list))
        or len(betas) != 2
        or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
    ):
        raise ValueError(f"recipe['betas'] must be two numbers in [0, 1), e.g. (0.5, 0.999), got {betas!r}")
    return float(betas[0]), float(betas[1])


# Recipe settings of zoo.train's schema that this trainer does not implement: any other value is an error.
_UNSUPPORTED = {"optimizer": "adam", "lr_schedule": "constant", "warmup_steps": 0, "grad_clip": 0.0}


class _AdamSettings(TypedDict):
    """The Adam arguments both networks share (each has its own learning rate)."""

    betas: tuple[float, float]
    eps: float
    weight_decay: float


class GANTrainer:
    """Optimizers and one adversarial step for a `zoo_gan.dcgan.DCGAN`.

    Recipe keys read here (the rest are the generic loop's): `lr` (2e-4), `betas`
    ((0.5, 0.999)), `eps`, `weight_decay`, `seed` (0) for the noise, and the keys this
    trainer adds to the recipe schema (`recipe_defaults`): `fixed_noise` (images in the
    fixed batch), `lr_d` / `lr_g` (per-network learning rates; 0 = `lr`), `fakes`
    ("intensities", or "bernoulli" for binary data: straight-through Bernoulli draws).
    """

    recipe_defaults: Mapping[str, Any] = {"fixed_noise": 64, "lr_d": 0.0, "lr_g": 0.0, "fakes": "intensities"}
    supports_distributed = False

    def __init__(self, model: nn.Module, recipe: Mapping[str, Any], device: str | torch.device = "cpu"):
        for attr in ("generator", "discriminator", "draw_noise", "decode", "discriminate", "intensities"):
            if not hasattr(model, attr):
                raise ValueError(f"GANTrainer trains a zoo_gan DCGAN; {type(model).__name__} has no {attr!r}")
        gan = cast("DCGAN", model)  # it has the DCGAN's attributes (checked above)
        for key, only in _UNSUPPORTED.items():
            if key in recipe and recipe[key] != only:
                raise ValueError(f"GANTrainer supports {key}={only!r} only (the DCGAN recipe), got {recipe[key]!r}")
        fakes = recipe.get("fakes", "intensities")
        if fakes not in FAKES:
            raise ValueError(f"recipe['fakes'] must be one of {FAKES}, got {fakes!r}")
        if fakes == "bernoulli" and gan.data_spec.levels != 2:
            raise ValueError(
                f"recipe['fakes']='bernoulli' needs binary data (levels=2), the model has "
                f"levels={gan.data_spec.levels}; use 'intensities'"
            )
        self.fakes = fakes
        self.model = gan.to(device)
        self.device = torch.device(device)
        self.recipe = dict(recipe)
        lr = _recipe_number(recipe, "lr", 2e-4)
        adam: _AdamSettings = {
            "betas": _recipe_betas(recipe),
            "eps": _recipe_number(recipe, "eps", 1e-8),
            "weight_decay": _recipe_number(recipe, "weight_decay", 0.0, positive=False),
        }
        lr_d = _recipe_number(recipe, "lr_d", 0.0, positive=False) or lr
        lr_g = _recipe_number(recipe, "lr_g", 0.0, positive=False) or lr
        # The generator's optimizer holds the generator only: D's weights move in the D step alone.
        self.opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, **adam)
        self.opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, **adam)
        seed = recipe.get("seed", 0)
        n_fixed = recipe.get("fixed_noise", 64)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"recipe['seed'] must be an int, got {seed!r}")
        if not isinstance(n_fixed, int) or isinstance(n_fixed, bool) or n_fixed < 1:
            raise ValueError(f"recipe['fixed_noise'] must be a positive int, got {n_fixed!r}")
        self.rng = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
        fixed_y = torch.arange(n_fixed) % gan.num_classes if gan.num_classes else None  # every class in turn
        self.fixed = gan.draw_noise(n_fixed, torch.Generator().manual_seed(seed + 1), 1.0, fixed_y)
        self.step_count = 0
        self._bce = nn.BCEWithLogitsLoss()

    def _guard(self, name: str, value: torch.Tensor, stats: dict[str, float]) -> None:
        number = value.item()
        if not math.isfinite(number):
            others = ", ".join(f"{k}={v:.4g}" for k, v in stats.items())
            raise ZooError(
                f"GAN training diverged at step {self.step_count + 1}: {name} is {number}"
                f"{' (' + others + ')' if others else ''}; this step's update was not applied. "
                "Resume from the last checkpoint with a lower learning rate "
                f"(recipe lr={self.opt_d.param_groups[0]['lr']:g}), "
                "and check the data for non-finite values."
            )

    def step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        """One discriminator and one generator update on a batch of real images.

        `x`: integer levels (B, C, H, W); `y`: class labels (B,) for a conditional model
        (the fakes get the same labels). Returns loss_d, loss_g and the discriminator's
        mean probability of "real" on real (d_real) and fake (d_fake) images, both
        measured in the discriminator step. Raises `ZooError` on a non-finite loss.
        """
        model = self.model
        model.train()
        real = model.intensities(x).to(self.device)  # (B, C, H, W) in [0, 1]
        B = real.shape[0]
        if B < 2:
            raise ValueError(f"a GAN step needs a batch of at least 2 images (batch norm), got {B}")
        if y is not None:
            y = y.to(self.device)
        z = torch.randn((B, model.nz), generator=self.rng).to(self.device)
        ones = torch.ones(B, device=self.device)
        zeros = torch.zeros(B, device=self.device)

        # Discriminator: maximise log D(x) + log(1 - D(G(z))).
        fake = torch.sigmoid(model.generator_logits(z, y))  # (B, C, H, W) intensities
        if self.fakes == "bernoulli":  # binary draws forward, the intensities' gradient backward
            u = torch.rand(fake.shape, generator=self.rng).to(self.device)
            fake = (u < fake.detach()).to(fake.dtype) + (fake - fake.detach())  # exactly 0 or 1 forward
        logit_real = model.discriminate(real, y)  # (B,)
        logit_fake = model.discriminate(fake.detach(), y)  # (B,)
        loss_d = self._bce(logit_real, ones) + self._bce(logit_fake, zeros)
        stats = {"d_real": torch.sigmoid(logit_real).mean().item(), "d_fake": torch.sigmoid(logit_fake).mean().item()}
        self._guard("loss_d", loss_d, stats)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # Generator, non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
        loss_g = self._bce(model.discriminate(fake, y), ones)
        self._guard("loss_g", loss_g, {"loss_d": loss_d.item(), **stats})
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.opt_d.zero_grad(set_to_none=True)  # the G step left gradients on D; drop them

        self.step_count += 1
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), **stats}

    @torch.no_grad()
    def epoch_samples(self) -> torch.Tensor:
        """Samples (n, C, H, W) of integer levels from the fixed noise batch, saved at every epoch's end."""
        f = self.fixed
        z = f["z"]
        assert z is not None  # draw_noise always draws z, and load_state_dict restores one
        return self.model.decode(z, f["u"], f["y"])

    def fixed_noise_samples(self) -> torch.Tensor:
        """The old name of `epoch_samples`, kept for one release."""
        warnings.warn(
            "GANTrainer.fixed_noise_samples is now epoch_samples; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.epoch_samples()

    def state_dict(self) -> dict[str, Any]:
        """Optimizers, the noise generator's state, the step count and the fixed batch
        (the model's weights are checkpointed by the training loop). A copy: later steps do not change it."""
        return {
            "step": self.step_count,
            "opt_d": copy.deepcopy(self.opt_d.state_dict()),
            "opt_g": copy.deepcopy(self.opt_g.state_dict()),
            "rng": self.rng.get_state(),
            "fixed": {k: (None if v is None else v.clone()) for k, v in self.fixed.items()},
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned, for an exact resume. Missing or extra keys are an error."""
        if not isinstance(d, Mapping) or set(d) != set(_STATE_KEYS):
            got = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise ValueError(f"GANTrainer state: expected keys {sorted(_STATE_KEYS)}, got {got}")
        if set(d["fixed"]) != set(self.fixed):
            raise ValueError(
                f"GANTrainer state: expected fixed-noise keys {sorted(self.fixed)}, got {sorted(d['fixed'])}"
            )
        z, own_z = d["fixed"]["z"], self.fixed["z"]
        assert own_z is not None  # draw_noise always draws z
        if z.shape[1:] != own_z.shape[1:]:
            raise ValueError(f"GANTrainer state: fixed noise of shape {tuple(z.shape)} does not fit nz={self.model.nz}")
        self.opt_d.load_state_dict(d["opt_d"])
        self.opt_g.load_state_dict(d["opt_g"])
        self.rng.set_state(d["rng"])
        self.fixed = {k: (None if v is None else v.clone()) for k, v in d["fixed"].items()}
        self.step_count = int(d["step"])
