"""Registers `dcgan`, the GAN baseline. Imports no model code (and no torch).

The model lives in `zoo_gan.dcgan`; its own training step in `zoo_gan.trainer`.
"""

from collections.abc import Callable

import zoo

# Constructor kwargs per dataset (plain data: `zoo.create("dcgan", **CONFIGS["cifar10"])`).
CONFIGS = {
    "binarized-mnist": {"channels": 1, "height": 28, "width": 28, "levels": 2},
    "mnist": {"channels": 1, "height": 28, "width": 28, "levels": 256},
    "cifar10": {"channels": 3, "height": 32, "width": 32, "levels": 256},
}

# Released weights: cards/dcgan.binarized-mnist/ and cards/dcgan.mnist/ ship with the package. `metrics` are read
# from the cards' eval.json (1000 samples, seed 0) when first asked for; tests/test_releases.py re-runs the harness.
# Both are one run of the `mnist` recipe (12 epochs on MNIST's intensities): dcgan.mnist as trained, and
# dcgan.binarized-mnist the same weights with levels=2, sampling Bernoulli draws of the intensities as binarized
# MNIST was made (`python -m zoo_gan.binarized runs/dcgan-mnist/release cards/dcgan.binarized-mnist`). It
# replaced 10 epochs of the `default` recipe on the bits (FID 33.5 -> 22.6): docs/gan.md says why.
DCGAN_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/dcgan.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="d37c699f9cf9b183ccb856d2a877fc456a05785ca6627b39f254a5701ff0ff6b",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("dcgan.binarized-mnist"),
)
DCGAN_MNIST = zoo.WeightsSpec(
    tag="mnist",
    hub_id="zoo-models/dcgan.mnist",
    revision="main",  # not yet published
    sha256="d37c699f9cf9b183ccb856d2a877fc456a05785ca6627b39f254a5701ff0ff6b",
    dataset="mnist",
    config={"levels": 256},
    metrics=zoo.CardMetrics("dcgan.mnist"),
)

_NETWORK = {"nz": 100, "ngf": 64, "ndf": 64, "num_classes": 0}

# Radford et al. 2016, section 4: Adam, lr 2e-4, beta1 0.5, batch 128 (here 64 for
# MNIST; one CPU thread trains about 270 images/s, so an epoch of 50k takes about 3 min).
_RECIPE = {  # keys of zoo.train's recipe schema, plus GANTrainer.recipe_defaults (fixed_noise, lr_d, lr_g)
    "dataset": "binarized-mnist",
    "optimizer": "adam",
    "lr": 2e-4,
    "betas": [0.5, 0.999],
    "batch_size": 64,
    "epochs": 20,
    "seed": 0,
    "ema_decay": 0.0,  # no weight averaging: the DCGAN recipe
    "valid_split": "",  # no likelihood to validate; progress shows in the fixed-noise grids
    "fixed_noise": 64,  # images in the fixed noise batch sampled at every epoch's end
    # what the discriminator sees of a fake: the generator's intensities. "bernoulli" (binary data only)
    # shows it Bernoulli draws with a straight-through gradient; in a 2-epoch trial on 10k images it
    # trailed (FID 144 vs 98 with intensities, 1000 samples): docs/gan.md
    "fakes": "intensities",
}


@zoo.hookimpl
def zoo_register_models(register: Callable[[zoo.ModelSpec], None]) -> None:
    register(
        zoo.ModelSpec(
            name="dcgan",
            family="gan",
            summary="DCGAN baseline: implicit model, samples only (no likelihood)",
            paper="Goodfellow et al. 2014, Generative Adversarial Nets; Radford et al. 2016, "
            "Unsupervised Representation Learning with Deep Convolutional GANs (arXiv:1511.06434)",
            builder="zoo_gan.dcgan:DCGAN",
            weights=(DCGAN_BINARIZED_MNIST, DCGAN_MNIST),
            config={**CONFIGS["binarized-mnist"], **_NETWORK},
            capabilities={"sampler"},
            test_config={"height": 8, "width": 8, "nz": 8, "ngf": 8, "ndf": 8},
            recipes={
                "default": _RECIPE,
                "mnist": {**_RECIPE, "dataset": "mnist", "config": CONFIGS["mnist"]},
                "cifar10": {
                    **_RECIPE,
                    "dataset": "cifar10",
                    "batch_size": 128,
                    "epochs": 30,
                    "config": CONFIGS["cifar10"],
                },
            },
            trainer="zoo_gan.trainer:GANTrainer",
            # on real-valued MNIST, not binarized: the protocol is the same, the numbers are not comparable
            reference_results={
                "binarized-mnist": {
                    "parzen": 225.0,
                    "comparable": False,
                    "source": "Goodfellow et al. 2014, Table 1 (real-valued MNIST)",
                }
            },
        )
    )
