"""Registers `pggan`, the progressively grown GAN. Imports no model code (and no torch).

The model lives in `zoo_pggan.pggan`; its training step and growth schedule in `zoo_pggan.trainer`.
"""

from collections.abc import Callable

import zoo

# Constructor kwargs per dataset (plain data: `zoo.create("pggan", **CONFIGS["binarized-mnist"])`).
# binarized-mnist: the same network; its samples are Bernoulli draws of the intensities.
CONFIGS = {
    "mnist": {"channels": 1, "height": 28, "width": 28, "levels": 256, "stages": 3},
    "binarized-mnist": {"channels": 1, "height": 28, "width": 28, "levels": 2, "stages": 3},
    "cifar10": {"channels": 3, "height": 32, "width": 32, "levels": 256, "stages": 4},
}

# Released weights: cards/pggan.mnist/ and cards/pggan.binarized-mnist/ ship with the package; `metrics` are read
# from their eval.json when first asked for. One run of the default networks with 150k images per growth phase
# and a long 28x28 tail (`zoo train pggan --epochs 52 --set stable_images=150000 --set fade_images=150000`,
# in stages, docs/gan.md); binarized-mnist is the same weights with levels=2, sampling Bernoulli draws of the
# intensities (`python -m zoo_gan.binarized cards/pggan.mnist cards/pggan.binarized-mnist`).
PGGAN_MNIST = zoo.WeightsSpec(
    tag="mnist",
    hub_id="zoo-models/pggan.mnist",
    revision="main",  # not yet published
    sha256="ee114ba95932d3be1051f09aec976a3502bbac80abe0162fc89df344a4191c80",
    dataset="mnist",
    metrics=zoo.CardMetrics("pggan.mnist"),
)
PGGAN_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/pggan.binarized-mnist",
    revision="main",  # not yet published
    sha256="ee114ba95932d3be1051f09aec976a3502bbac80abe0162fc89df344a4191c80",
    dataset="binarized-mnist",
    config={"levels": 2},
    metrics=zoo.CardMetrics("pggan.binarized-mnist"),
)

_NETWORK = {
    "nz": 128,
    "base_width": 64,
    "equalized_lr": True,
    "pixel_norm": True,
    "minibatch_stddev": True,
    "ema": True,
}

# Karras et al. 2018, appendix A.1: WGAN-GP (lambda 10, drift 0.001), Adam lr 1e-3 betas (0, 0.99),
# generator EMA 0.999. Their schedule shows 800k images per phase at 1024^2; MNIST's 28x28 needs far
# fewer, and one CPU thread trains roughly 100-200 images/s, so the default is 60k per phase.
_RECIPE = {  # zoo.train's recipe schema, plus PGGANTrainer.recipe_defaults
    "dataset": "mnist",
    "optimizer": "adam",
    "lr": 1e-3,
    "betas": [0.0, 0.99],
    "eps": 1e-8,
    "batch_size": 64,
    "epochs": 8,
    "seed": 0,
    "ema_decay": 0.0,  # the loop's EMA of the whole model stays off: the trainer averages the generator
    "valid_split": "",  # no likelihood to validate
    "stable_images": 60_000,
    "fade_images": 60_000,
    "loss": "wgan-gp",
    "gp_weight": 10.0,
    "drift": 0.001,
    "generator_ema": 0.999,
    "fixed_noise": 64,
}


@zoo.hookimpl
def zoo_register_models(register: Callable[[zoo.ModelSpec], None]) -> None:
    register(
        zoo.ModelSpec(
            name="pggan",
            family="gan",
            summary="Progressive growing of GANs: implicit model, samples only (no likelihood)",
            paper="Karras et al. 2018, Progressive Growing of GANs for Improved Quality, Stability, "
            "and Variation (arXiv:1710.10196)",
            builder="zoo_pggan.pggan:PGGAN",
            weights=(PGGAN_MNIST, PGGAN_BINARIZED_MNIST),
            config={**CONFIGS["mnist"], **_NETWORK},
            capabilities={"sampler"},
            test_config={"height": 8, "width": 8, "stages": 2, "nz": 8, "base_width": 8},
            recipes={
                "default": _RECIPE,
                "cifar10": {**_RECIPE, "dataset": "cifar10", "config": CONFIGS["cifar10"]},
            },
            trainer="zoo_pggan.trainer:PGGANTrainer",
        )
    )
