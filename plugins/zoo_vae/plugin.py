"""Registers `vae` and `pixelvae`, the approximate-density family. Imports no model code (and no torch).

The models live in `zoo_vae.vae` and `zoo_vae.pixelvae` (the shared encoder and bounds in
`zoo_vae.latent`); they train on their bound with `zoo_vae.trainer.BoundTrainer`.
"""

from collections.abc import Callable

import zoo

# Released weights: cards/vae.binarized-mnist/ ships with the package. `metrics` are read from the card's eval.json
# (`zoo card cards/vae.binarized-mnist --metrics nll,fid,precision,recall,parzen --iw-samples 5000`); its nll is an
# upper bound at k=5000 on the whole test split, and tests/test_releases.py re-scores the canonical subset's bound
# at k=100.
VAE_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/vae.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="4d38368ed87551ee58b9f63f920807a35f0c51662be3e062da56266bf873980f",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("vae.binarized-mnist"),
)

# cards/pixelvae.binarized-mnist/: its nll is an upper bound at k=100 on the full test split, from
# `zoo card cards/pixelvae.binarized-mnist --metrics nll,fid,precision,recall,parzen --iw-samples 100` (k=5000 on
# the whole split would take about 20 hours on these CPU cores; docs/vae.md).
PIXELVAE_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/pixelvae.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="08e12db9b48b216ef7b33015c76f0823ebc6f610d57c39355200e153a3fa29bd",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("pixelvae.binarized-mnist"),
)

DATA = {
    "binarized-mnist": {"channels": 1, "height": 28, "width": 28, "levels": 2},
    "mnist": {"channels": 1, "height": 28, "width": 28, "levels": 256},
}

# The configs, and why (each card of a release at its config prints the note).
VAE = {**DATA["binarized-mnist"], "latent": 50, "hidden": 64, "decoder_hidden": 512}
VAE_NOTE = (
    "one stochastic layer of 50 units (Burda et al. 2016 use 50 for their 86.76); a conv encoder of h=64 / 2h=128 "
    "feature maps; the decoder an MLP with two hidden layers of 512. The release before had 32 units, h=32 and "
    "256-256: at the same recipe (`iwae`, 150 epochs) this one reaches <= 86.56 nats at k=5000 against 87.90 "
    "(docs/vae.md)"
)
PIXELVAE = {**DATA["binarized-mnist"], "latent": 32, "hidden": 32, "decoder_hidden": 64, "layers": 4, "cond_hidden": 64}
PIXELVAE_NOTE = (
    "a latent variable of 32 units and an encoder of h=32; the decoder a PixelCNN of 4 masked 3x3 layers (after the "
    "7x7 mask-A one) of 64 maps, each given 64-map features of z (Gulrajani et al. 2017 use a few masked layers on "
    "MNIST). The decoder's width is what helped: at 32 maps the run reached valid ELBO 83.67, at 64 82.76; twice its "
    "depth, or a latent of 50 with an encoder of h=64, did not move it (stages/README.md, docs/vae.md)"
)

_RECIPE = {  # zoo.train's schema plus BoundTrainer.recipe_defaults (iw_samples)
    "dataset": "binarized-mnist",
    "optimizer": "adam",
    "lr": 1e-3,
    "betas": [0.9, 0.999],
    "lr_schedule": "cosine",
    "warmup_steps": 200,
    "batch_size": 64,
    "epochs": 30,
    "grad_clip": 0.0,
    "ema_decay": 0.999,
    "seed": 0,
    "iw_samples": 1,  # 1: the ELBO (Kingma & Welling 2014); k > 1: the IWAE bound (Burda et al. 2016)
}


@zoo.hookimpl
def zoo_register_models(register: Callable[[zoo.ModelSpec], None]) -> None:
    register(
        zoo.ModelSpec(
            name="vae",
            family="vae",
            summary="VAE: conv encoder, Gaussian latent, MLP decoder, independent sub-pixels given z "
            "(likelihood bound)",
            paper="Kingma & Welling 2014, Auto-Encoding Variational Bayes, ICLR (arXiv:1312.6114); "
            "Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders, ICLR (arXiv:1509.00519)",
            builder="zoo_vae.vae:VAE",
            weights=(VAE_BINARIZED_MNIST,),
            config=VAE,
            config_note=VAE_NOTE,
            capabilities={"likelihood_bound", "sampler"},
            test_config={"height": 8, "width": 8, "latent": 4, "hidden": 8, "decoder_hidden": 16},
            recipes={
                "default": _RECIPE,
                # the release's: the bound with k=5 (Burda et al. 2016, Table 1: 85.54 for one layer vs 86.76 at k=1),
                # a fresh draw of the train split every epoch, and a per-epoch decay of 0.99 that does not depend
                # on the run's length, so the run trains in stages of `--epochs E --resume` (stages/README.md)
                "iwae": {
                    **_RECIPE,
                    "iw_samples": 5,
                    "epochs": 150,
                    "dynamic_binarization": True,
                    "lr_schedule": "exponential",
                    "lr_gamma": 0.99,
                },
                "mnist": {**_RECIPE, "dataset": "mnist", "config": DATA["mnist"]},
            },
            trainer="zoo_vae.trainer:BoundTrainer",
            reference_results={
                "binarized-mnist": {
                    "nll": 86.76,  # an upper bound too
                    "source": "Burda et al. 2016, Table 1 (VAE, one stochastic layer, trained on the ELBO; "
                    "an upper bound with k=5000)",
                }
            },
        )
    )
    register(
        zoo.ModelSpec(
            name="pixelvae",
            family="vae",
            summary="PixelVAE: the VAE's latent variable with a small PixelCNN decoder given z (likelihood bound)",
            paper="Gulrajani, Kumar, Ahmed, Taiga, Visin, Vazquez & Courville 2017, PixelVAE: A Latent Variable "
            "Model for Natural Images, ICLR (arXiv:1611.05013)",
            builder="zoo_vae.pixelvae:PixelVAE",
            weights=(PIXELVAE_BINARIZED_MNIST,),
            config=PIXELVAE,
            config_note=PIXELVAE_NOTE,
            capabilities={"likelihood_bound", "sampler"},
            test_config={
                "height": 8,
                "width": 8,
                "latent": 4,
                "hidden": 8,
                "decoder_hidden": 8,
                "layers": 2,
                "cond_hidden": 8,
            },
            # the release's: the ELBO for 25 epochs, a fresh draw of the train split every epoch, and a per-epoch
            # decay of 0.9 that does not depend on the run's length (stages of `--epochs E --resume` follow one run)
            recipes={
                "default": {
                    **_RECIPE,
                    "epochs": 25,
                    "dynamic_binarization": True,
                    "lr_schedule": "exponential",
                    "lr_gamma": 0.9,
                }
            },
            trainer="zoo_vae.trainer:BoundTrainer",
            # the anchor a latent variable with an autoregressive decoder should beat (an exact value)
            reference_results={
                "binarized-mnist": {
                    "nll": 81.30,
                    "exact": True,  # an exact NLL: printed without the bound's mark
                    "source": "PixelCNN, PixelRNN paper, Table 4 (exact; the anchor to beat)",
                }
            },
        )
    )
