"""Registers `pixelrnn-row` and `pixelrnn-diag`. Imports no model code (and no torch)."""

from collections.abc import Callable

import zoo

PAPER = "van den Oord, Kalchbrenner, Kavukcuoglu 2016, Pixel Recurrent Neural Networks, ICML (arXiv:1601.06759)"
BINARIZED_MNIST = {"channels": 1, "height": 28, "width": 28, "levels": 2}

# Released weights: the folder cards/<arch>.<tag>/ ships with the package (the embedded default).
# `metrics` are read from the card's eval.json (its harness results) when first asked for; the sha256
# pin stays here. tests/test_releases.py re-runs the harness and checks them.
DIAG_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/pixelrnn-diag.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="7b7501b7df0ca885d7d190585176c56d93f02855390f5c9ad1538f7ccdb0b1f3",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("pixelrnn-diag.binarized-mnist"),
)

ROW_BINARIZED_MNIST = zoo.WeightsSpec(
    tag="binarized-mnist",
    hub_id="zoo-models/pixelrnn-row.binarized-mnist",
    revision="main",  # not yet published: the Hub is out of reach from where it was trained
    sha256="425f4effb56336f126f33485645425dbbd6083445d00418fc06175700d640e37",
    dataset="binarized-mnist",
    metrics=zoo.CardMetrics("pixelrnn-row.binarized-mnist"),
)


def _recipes(batch_size: int, epochs: int) -> dict:
    """Training recipes read by `zoo train` (maximum likelihood)."""
    return {
        # binarized MNIST on a CPU (see docs/pixelrnn.md for the measured speed)
        "default": {
            "dataset": "binarized-mnist",
            "optimizer": "adam",  # the paper used RMSProp; Adam converges faster in our short runs
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "weight_decay": 0.0,
            # per-epoch decay, not cosine: the schedule does not depend on the run's length, so a run
            # continued stage by stage (`--epochs N --resume`) follows the schedule of one long run
            "lr_schedule": "exponential",
            "lr_gamma": 0.9,
            "warmup_steps": 200,
            "dynamic_binarization": True,  # a fresh draw of the train split every epoch (docs/data.md)
            "batch_size": batch_size,
            "epochs": epochs,
            "grad_clip": 1.0,  # clip the global gradient norm: LSTMs spike early on
            "ema_decay": 0.999,
            "valid_split": "valid",
            "seed": 0,
        },
        # the paper's CIFAR-10 setting (12 layers, h = 128); needs a GPU and the data
        "cifar10": {
            "dataset": "cifar10",
            "config": {
                "channels": 3,
                "height": 32,
                "width": 32,
                "levels": 256,
                "layers": 12,
                "hidden": 128,
                "out_features": 1024,
            },
            "optimizer": "adam",
            "lr": 1e-3,
            "lr_schedule": "cosine",
            "batch_size": 16,  # the paper: small batches of 16 regularise on CIFAR-10
            "epochs": 60,
            "grad_clip": 1.0,
            "ema_decay": 0.9995,
            "valid_split": "",  # CIFAR-10 has no validation split: the last epoch is released
            "seed": 0,
        },
    }


@zoo.hookimpl
def zoo_register_models(register: Callable[[zoo.ModelSpec], None]) -> None:
    register(
        zoo.ModelSpec(
            name="pixelrnn-row",
            family="pixelrnn",
            summary="Row LSTM PixelRNN: rows top to bottom, 1x3 input/state convolutions, triangular field",
            paper=PAPER,
            builder="zoo_pixelrnn.rowlstm:RowLSTM",
            weights=(ROW_BINARIZED_MNIST,),
            config={**BINARIZED_MNIST, "layers": 7, "hidden": 32, "kernel": 3, "out_features": 64},
            config_note="the paper gives no Row LSTM config for MNIST. 7 layers as its Diagonal BiLSTM; h = 32 (twice "
            "the Diagonal BiLSTM's width) because at h = 16 the Row LSTM converged at 83.70 nats (28 epochs, valid "
            "gains of 0.02 an epoch at the end), while h = 32 passed it after 4 epochs "
            "(stages/pixelrnn-row-h32.binarized-mnist, docs/pixelrnn.md)",
            capabilities={"likelihood", "sampler", "fast_sampler"},
            test_config={"height": 8, "width": 8, "layers": 2, "hidden": 6, "out_features": 48},
            recipes=_recipes(batch_size=32, epochs=20),
            reference_results={"binarized-mnist": {"nll": 80.54, "source": "PixelRNN paper, Table 4"}},
        )
    )
    register(
        zoo.ModelSpec(
            name="pixelrnn-diag",
            family="pixelrnn",
            summary="Diagonal BiLSTM PixelRNN: skewed columns, two directions, full receptive field",
            paper=PAPER,
            builder="zoo_pixelrnn.diagonal:DiagonalBiLSTM",
            weights=(DIAG_BINARIZED_MNIST,),
            config={**BINARIZED_MNIST, "layers": 7, "hidden": 16, "out_features": 32, "full_context": True},
            config_note="the paper's binarized-MNIST model: 7 layers, h = 16 (79.20 nats, Table 4); `full_context` "
            "closes a one-pixel gap of the paper's layer (docs/pixelrnn.md)",
            capabilities={"likelihood", "sampler", "fast_sampler"},
            test_config={"height": 8, "width": 8, "layers": 2, "hidden": 6, "out_features": 48},
            recipes=_recipes(batch_size=32, epochs=20),
            reference_results={"binarized-mnist": {"nll": 79.20, "source": "PixelRNN paper, Table 4"}},
        )
    )
