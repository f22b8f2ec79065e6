"""Registers `pixelcnn` and `gated-pixelcnn`. Imports no model code (and no torch).

The models live in `zoo_pixelcnn.pixelcnn` and `zoo_pixelcnn.gated`; their
masked convolutions are the zoo's public `zoo.nn.MaskedConv2d`.
"""

from collections.abc import Callable

import zoo

# Released weights: the folder cards/<arch>.<tag>/ ships with the package (the embedded default).
# `metrics` are read from the card's eval.json (its harness results) when first asked for; the sha256
# pin stays here. tests/test_releases.py re-runs the harness and checks them.
PIXELCNN_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/pixelcnn.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="f3243445cccd1a0379fe640b9f2c43a9473caa8986b91f8551d3042310d2fddc",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("pixelcnn.binarized-mnist"),
)
GATED_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/gated-pixelcnn.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="4e98050c91c44a842c107fc210d2467ebb310b3df35a2e6be836438764c06433",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("gated-pixelcnn.binarized-mnist"),
)

# Image shapes per dataset (constructor kwargs; merged into a model's config by the recipes).
DATA = {
    "binarized-mnist": {"channels": 1, "height": 28, "width": 28, "levels": 2},
    "mnist": {"channels": 1, "height": 28, "width": 28, "levels": 256},
    "cifar10": {"channels": 3, "height": 32, "width": 32, "levels": 256},
}

# The configs, and why (each card of a release at its config prints the note).
PIXELCNN = {**DATA["binarized-mnist"], "hidden": 128, "residual_blocks": 12, "out_hidden": 256, "first_kernel": 7}
PIXELCNN_NOTE = (
    "the PixelRNN paper's PixelCNN (Table 1): a 7x7 mask-A layer, 12 residual blocks, 2 output layers. The paper "
    "leaves the width open; h=128 (a residual stream of 256 maps, 2.6M parameters) because width was what the h=32 "
    "release lacked: h=32 stopped at 86.08 nats after 30 epochs, h=128 reached 83.52 after 14 (on a GPU: on 2 CPU "
    "cores it is about 16x the work of h=32 per image; docs/pixelcnn.md has the runs)"
)
GATED = {
    **DATA["binarized-mnist"],
    "hidden": 32,
    "layers": 13,
    "first_kernel": 7,
    "kernel": 5,
    "skip_channels": 64,
    "out_hidden": 64,
    "num_classes": None,
}
GATED_NOTE = (
    "the paper gives no MNIST config. 13 layers of 3x5 / 1x3 kernels (the first 4x7 / 1x4) reach every earlier pixel "
    "of a 28x28 image (3 + 12*2 rows and columns, plus the one-row shift; 3x3 kernels would need 25 layers); 32 maps "
    "per stack and 64 skip and output maps, the width of the first release, which reached the zoo's target (80.50) "
    "without widening"
)

# Maximum likelihood with Adam; the training helper reads these keys.
_RECIPE = {
    "dataset": "binarized-mnist",
    "optimizer": "adam",
    "lr": 1e-3,
    "betas": [0.9, 0.999],
    "weight_decay": 0.0,
    # per-epoch decay after `warmup_steps`, not cosine: the schedule does not depend on the run's
    # length, so a run continued stage by stage (`--epochs N --resume`) follows one long run's schedule
    "lr_schedule": "exponential",
    "lr_gamma": 0.9,
    "warmup_steps": 200,
    "dynamic_binarization": True,  # a fresh draw of the train split every epoch (docs/data.md)
    "batch_size": 64,
    "epochs": 10,
    "grad_clip": 1.0,  # max global gradient norm
    "ema_decay": 0.999,  # exponential moving average of the weights; the EMA weights are released
    "seed": 0,
}


def _recipes(cifar_config: dict, epochs: int = 10) -> dict:
    return {
        "default": {**_RECIPE, "epochs": epochs},
        "mnist": {**_RECIPE, "dataset": "mnist", "config": DATA["mnist"], "dynamic_binarization": False},
        "cifar10": {
            **_RECIPE,
            "dataset": "cifar10",
            "epochs": 50,
            "batch_size": 32,
            "lr": 3e-4,
            "lr_schedule": "cosine",
            "dynamic_binarization": False,
            "config": {**DATA["cifar10"], **cifar_config},
        },  # needs a GPU
    }


@zoo.hookimpl
def zoo_register_models(register: Callable[[zoo.ModelSpec], None]) -> None:
    register(
        zoo.ModelSpec(
            name="pixelcnn",
            family="pixelcnn",
            summary="PixelCNN: masked convolutions with residual blocks (has a blind spot)",
            paper="van den Oord, Kalchbrenner & Kavukcuoglu 2016, Pixel Recurrent Neural Networks, "
            "ICML (arXiv:1601.06759)",
            builder="zoo_pixelcnn.pixelcnn:PixelCNN",
            weights=(PIXELCNN_BINARIZED_MNIST,),
            config=PIXELCNN,  # the data spec follows from its channels, height, width and levels
            config_note=PIXELCNN_NOTE,
            capabilities={"likelihood", "sampler", "fast_sampler"},
            test_config={"height": 8, "width": 8, "hidden": 8, "residual_blocks": 2, "out_hidden": 16},
            # 20 epochs: the 10-epoch run was still gaining 0.25 nats an epoch (stages/README.md)
            recipes=_recipes({"hidden": 128, "out_hidden": 1024}, epochs=20),
            reference_results={"binarized-mnist": {"nll": 81.30, "source": "PixelRNN paper, Table 4"}},
        )
    )
    register(
        zoo.ModelSpec(
            name="gated-pixelcnn",
            family="pixelcnn",
            summary="Gated PixelCNN: vertical and horizontal stacks, no blind spot, optional class conditioning",
            paper="van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016, "
            "Conditional Image Generation with PixelCNN Decoders, NeurIPS (arXiv:1606.05328)",
            builder="zoo_pixelcnn.gated:GatedPixelCNN",
            weights=(GATED_BINARIZED_MNIST,),
            config=GATED,
            config_note=GATED_NOTE,
            capabilities={"likelihood", "sampler", "fast_sampler"},
            test_config={
                "height": 8,
                "width": 8,
                "hidden": 8,
                "layers": 6,
                "kernel": 3,
                "skip_channels": 16,
                "out_hidden": 16,
            },
            # 20 epochs: the 10-epoch run was still gaining 0.15 nats an epoch, 0.08 by epoch 14 (stages/README.md)
            recipes=_recipes(
                {"hidden": 128, "layers": 15, "kernel": 5, "skip_channels": 256, "out_hidden": 1024}, epochs=20
            ),
            # the paper reports no MNIST result; this is a public PyTorch reimplementation's (dynamic binarization)
            reference_results={
                "binarized-mnist": {
                    "nll": 81.50,
                    "source": "a public PyTorch reimplementation (dynamic binarization); "
                    "the paper reports no MNIST result",
                }
            },
        )
    )
