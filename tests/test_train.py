"""zoo.train: recipes, the loop, EMA, checkpoints, exact resume, custom trainers, DDP.

Every test trains tiny models (8x8 images, a few dozen parameters) on an
in-process toy dataset registered through a fake plugin.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo
from zoo.data import Dataset
from zoo.distributed import shard_indices
from zoo.errors import UnknownNameError, ZooError
from zoo.plugins import use_plugins
from zoo.training import (
    RecipeError,
    TrainEvent,
    load_checkpoint,
    plot_training_curves,
    resolve_recipe,
    split_overrides,
    train,
)
from zoo.training.checkpoint import flatten_state, unflatten_state
from zoo.training.data import validation_nll
from zoo.training.optim import lr_factor
from zoo.training.state import CHECKPOINT

SPEC = zoo.DataSpec(1, 8, 8, 2)
SIZES = {"train": 96, "valid": 32, "test": 32}


class ToyDataset(Dataset):
    """Binary 8x8 images whose pixel k is on with probability growing along the raster; deterministic."""

    name = "toy"
    data_spec = SPEC
    splits = ("train", "valid", "test")

    def load(self, split):
        g = torch.Generator().manual_seed({"train": 0, "valid": 1, "test": 2}[self.check_split(split)])
        p = torch.linspace(0.1, 0.9, 64).reshape(1, 1, 8, 8)
        x = (torch.rand(SIZES[split], 1, 8, 8, generator=g) < p).to(torch.uint8)
        return x, torch.arange(SIZES[split]) % 3

    def checksum(self, split):
        return hashlib.sha256(self.load(split)[0].numpy().tobytes()).hexdigest()

    def available(self, split):
        return True

    def redraw(self, split, *, seed, epoch):
        """A fresh draw per (seed, epoch), like dynamic binarization."""
        g = torch.Generator().manual_seed(1000 * seed + epoch + 7)
        p = torch.linspace(0.1, 0.9, 64).reshape(1, 1, 8, 8)
        x = (torch.rand(SIZES[self.check_split(split)], 1, 8, 8, generator=g) < p).to(torch.uint8)
        return x, torch.arange(SIZES[split]) % 3


class TinyDropout(zoo.AutoregressiveModel):
    """Independent pixels with dropout on a second logit table: training draws random numbers,
    so an exact resume must restore the RNG state."""

    def __init__(self, channels=1, height=8, width=8, levels=2, p=0.5):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        self.table = nn.Parameter(torch.zeros(channels, height, width, levels))
        self.extra = nn.Parameter(torch.zeros(channels, height, width, levels))
        self.p = p

    def logits(self, x):
        t = self.table + nn.functional.dropout(self.extra, self.p, self.training)
        return t.unsqueeze(0).expand(x.shape[0], *t.shape)


class TinyConditional(zoo.AutoregressiveModel):
    """One logit table per class: p(x | y). Follows the zoo's convention: `num_classes` and a keyword `y`."""

    def __init__(self, channels=1, height=8, width=8, levels=2, num_classes=3):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        self.num_classes = num_classes
        self.tables = nn.Parameter(torch.zeros(num_classes, channels, height, width, levels))
        self.seen: list[torch.Tensor] = []

    def logits(self, x, y=None):
        if y is None:
            raise ValueError("class-conditional: pass y")
        self.seen.append(y)
        return self.tables[y]


class TinyGAN(nn.Module):
    """A 'generator' of independent Bernoulli pixels: a Sampler without a likelihood."""

    def __init__(self, channels=1, height=8, width=8, levels=2):
        super().__init__()
        self.data_spec = zoo.DataSpec(channels, height, width, levels)
        self.logit = nn.Parameter(torch.zeros(channels, height, width))
        self.critic = nn.Parameter(torch.zeros(channels, height, width))

    @torch.no_grad()
    def sample(self, n, *, generator=None, **kw):
        u = torch.rand((n, *self.logit.shape), generator=generator, device=self.logit.device)
        return (u < torch.sigmoid(self.logit)).long()


class FakeGANTrainer:
    """The interface of a family's own trainer (as zoo_gan's GANTrainer): two optimizers, extra recipe keys."""

    recipe_defaults = {"lr_d": 0.05, "fixed_noise": 4}
    instances: list = []

    def __init__(self, model, recipe, device):
        self.model, self.recipe, self.device = model, recipe, device
        self.opt_g = torch.optim.Adam([model.logit], lr=recipe["lr"])
        self.opt_d = torch.optim.SGD([model.critic], lr=recipe["lr_d"], momentum=0.5)
        self.steps = 0
        self.noise = torch.Generator().manual_seed(recipe["seed"])
        FakeGANTrainer.instances.append(self)

    def step(self, x, y=None):
        real = x.float().mean(0)
        fake = torch.sigmoid(self.model.logit)
        loss_d = ((self.model.critic - (real - fake.detach())) ** 2).mean()
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        loss_g = ((fake - real) ** 2).mean() + 0.01 * torch.randn((), generator=self.noise)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        self.steps += 1
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    def state_dict(self):
        return {
            "g": self.opt_g.state_dict(),
            "d": self.opt_d.state_dict(),
            "steps": self.steps,
            "noise": self.noise.get_state(),
        }

    def load_state_dict(self, d):
        self.opt_g.load_state_dict(d["g"])
        self.opt_d.load_state_dict(d["d"])
        self.steps = d["steps"]
        self.noise.set_state(d["noise"])

    def epoch_samples(self):
        return self.model.sample(self.recipe["fixed_noise"], generator=torch.Generator().manual_seed(0))


class _Plugin:
    @staticmethod
    @zoo.hookimpl
    def zoo_register_datasets(register):
        register(ToyDataset())

    @staticmethod
    @zoo.hookimpl
    def zoo_register_models(register):
        common = dict(config={}, data_spec=SPEC)
        register(
            zoo.ModelSpec(
                name="tiny-dropout",
                family="test",
                summary="test model",
                paper="-",
                builder=f"{__name__}:TinyDropout",
                capabilities={"likelihood", "sampler"},
                recipes={
                    "default": {"lr": 0.05, "batch_size": 16, "ema_decay": 0.9, "log_every": 2, "dataset": "toy"},
                    "cosine": {
                        "lr": 0.05,
                        "batch_size": 16,
                        "lr_schedule": "cosine",
                        "warmup_steps": 2,
                        "optimizer": "adamw",
                        "weight_decay": 0.01,
                        "grad_clip": 1.0,
                    },
                    "dynamic": {
                        "lr": 0.05,
                        "batch_size": 16,
                        "lr_schedule": "exponential",
                        "lr_gamma": 0.5,
                        "dynamic_binarization": True,
                    },
                },
                **common,
            )
        )
        register(
            zoo.ModelSpec(
                name="tiny-cond",
                family="test",
                summary="test conditional model",
                paper="-",
                builder=f"{__name__}:TinyConditional",
                capabilities={"likelihood"},
                recipes={"default": {"lr": 0.05, "batch_size": 16, "ema_decay": 0.0}},
                **common,
            )
        )
        register(
            zoo.ModelSpec(
                name="tiny-gan",
                family="test",
                summary="test GAN",
                paper="-",
                builder=f"{__name__}:TinyGAN",
                capabilities={"sampler"},
                trainer=f"{__name__}:FakeGANTrainer",
                recipes={"default": {"lr": 0.05, "batch_size": 16, "ema_decay": 0.0, "log_every": 1, "lr_d": 0.1}},
                **common,
            )
        )


@pytest.fixture
def toy():
    with use_plugins({"toy-plugin": _Plugin}) as host:
        yield host


def quick(out, name="tiny-dropout", **kw):
    kw.setdefault("epochs", 2)
    kw.setdefault("progress", False)
    kw.setdefault("evaluate", False)
    kw.setdefault("samples", 0)
    return train(name, dataset="toy", out=out, **kw)


def weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- recipes --------------------------------------------------------------------------------------
def test_recipe_defaults_named_and_overrides(toy):
    spec = zoo.info("tiny-dropout")
    r = resolve_recipe(spec, "default", {"epochs": 3, "betas": (0.8, 0.99)})
    assert r["lr"] == 0.05 and r["batch_size"] == 16 and r["epochs"] == 3
    assert r["betas"] == [0.8, 0.99]
    assert r["optimizer"] == "adam" and r["ema_decay"] == 0.9  # schema default, recipe value
    assert isinstance(resolve_recipe(spec, "default", {"lr": 1})["lr"], float)  # ints are numbers


@pytest.mark.parametrize(
    "override, match",
    [
        ({"learning_rate": 0.1}, "unknown recipe key 'learning_rate'"),
        ({"lr": "fast"}, "'lr' must be a number"),
        ({"lr": -1.0}, "'lr' must be > 0"),
        ({"epochs": 2.5}, "'epochs' must be an integer"),
        ({"optimizer": "lion"}, "'optimizer' must be one of adam, adamw, sgd, rmsprop"),
        ({"lr_schedule": "linear"}, "'lr_schedule' must be one of"),
        ({"ema_decay": 1.0}, "'ema_decay' must be in"),
        ({"ema_warmup": 1}, "'ema_warmup' must be true or false"),
        ({"betas": [0.9]}, "'betas' must be a list of 2 numbers"),
        ({"total_steps": 5}, "computed by the training loop"),
        ({"batch_size": 0}, "'batch_size' must be >= 1"),
    ],
)
def test_recipe_validation_errors(toy, override, match):
    with pytest.raises(RecipeError, match=match):
        resolve_recipe(zoo.info("tiny-dropout"), "default", override)


def test_recipe_unknown_key_suggests_and_unknown_recipe(toy):
    with pytest.raises(RecipeError, match="did you mean ema_decay"):
        resolve_recipe(zoo.info("tiny-dropout"), {"ema_decy": 0.9})
    with pytest.raises(UnknownNameError, match="no recipe 'cosin'.*did you mean cosine"):
        resolve_recipe(zoo.info("tiny-dropout"), "cosin")
    with pytest.raises(UnknownNameError, match="recipes: default, cosine"):
        train("tiny-dropout", dataset="toy", recipe="nope", progress=False)


def test_trainer_recipe_defaults_extend_the_schema(toy):
    spec = zoo.info("tiny-gan")
    r = resolve_recipe(spec, "default", extra_defaults=FakeGANTrainer.recipe_defaults)
    assert r["lr_d"] == 0.1 and r["fixed_noise"] == 4
    with pytest.raises(RecipeError, match="unknown recipe key 'lr_d'"):  # without the trainer's keys
        resolve_recipe(spec, "default")
    with pytest.raises(RecipeError, match="may not redefine schema keys"):
        resolve_recipe(spec, "default", extra_defaults={"lr": 1.0})


def test_split_overrides():
    rec, cfg = split_overrides(
        "x", {"lr": 0.1, "hidden": 8, "model.lr": 3, "recipe.seed": 2, "lr_d": 1}, recipe_extra={"lr_d": 0.1}
    )
    assert rec == {"lr": 0.1, "seed": 2, "lr_d": 1}
    assert cfg == {"hidden": 8, "lr": 3}


def test_lr_schedules():
    base = resolve_recipe(
        zoo.ModelSpec("m", "f", "s", "p", "a:b", {}, SPEC),
        {"warmup_steps": 4, "lr_schedule": "cosine", "min_lr": 1e-4, "lr": 1e-2},
    )
    rec = {**base, "total_steps": 104, "steps_per_epoch": 10}
    assert [lr_factor(s, rec) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, rec) == pytest.approx(1.0)
    assert lr_factor(104, rec) * rec["lr"] == pytest.approx(1e-4)
    assert lr_factor(54, rec) == pytest.approx(0.01 + 0.99 * 0.5)
    exp = {**rec, "lr_schedule": "exponential", "lr_gamma": 0.5, "warmup_steps": 0}
    assert lr_factor(20, exp) == pytest.approx(0.25)


# -- pieces -------------------------------------------------------------------------------------------
def test_state_codec_roundtrip_keeps_int_keys_and_tuples():
    p = nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.8, 0.9))
    p.grad = torch.ones(3)
    opt.step()
    state = {"opt": opt.state_dict(), "t": (1, 2.5, None), "__tensor__": "tricky key", "s": "x", 3: [True]}
    tensors = {}
    skeleton = flatten_state(state, "trainer", tensors)
    json.dumps(skeleton)  # plain JSON
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert back["t"] == (1, 2.5, None) and back["__tensor__"] == "tricky key" and back[3] == [True]
    assert list(back["opt"]["state"]) == [0]  # int key, as the optimizer needs it
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.9)
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])
    opt2 = torch.optim.Adam([nn.Parameter(torch.randn(3))], lr=0.1)
    opt2.load_state_dict(back["opt"])
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        flatten_state({"x": object()}, "t", {})


def test_shard_indices_match_single_process_batches():
    n, world, batch = 10, 2, 4
    single = shard_indices(n, seed=3, epoch=1)
    assert sorted(single.tolist()) == list(range(n))
    assert not torch.equal(single, shard_indices(n, seed=3, epoch=2))  # reshuffled every epoch
    shards = [shard_indices(n, seed=3, epoch=1, rank=r, world=world) for r in range(world)]
    assert all(len(s) == 5 for s in shards)
    per_rank = batch // world
    for k in range(2):  # full batches: the ranks together take exactly the single-process batch
        together = torch.cat([s[k * per_rank : (k + 1) * per_rank] for s in shards])
        assert sorted(together.tolist()) == sorted(single[k * batch : (k + 1) * batch].tolist())
    with pytest.raises(ZooError, match="cannot shard 1 images over 2"):
        shard_indices(1, seed=0, epoch=0, world=2)


def test_plot_training_curves(tmp_path):
    from PIL import Image

    records = [{"kind": "train", "step": s, "bpd": 1.0 / s, "loss": 40.0 / s} for s in range(1, 20)]
    records += [{"kind": "valid", "step": s, "bpd": 1.2 / s} for s in (5, 10, 15)]
    path = plot_training_curves(records, tmp_path / "c.png", title="t")
    img = Image.open(path).convert("RGB")
    assert img.size == (720, 440)
    colours = {c for _, c in img.getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # both series drawn
    empty = plot_training_curves([], tmp_path / "e.png")
    assert Image.open(empty).size == (720, 440)


# -- the loop -------------------------------------------------------------------------------------------
def test_train_writes_checkpoint_log_and_release(toy, tmp_path):
    r = quick(tmp_path / "run", samples=4)
    assert (r.epochs, r.steps) == (2, 12)  # 96 images / batch 16
    out = tmp_path / "run"
    assert (out / CHECKPOINT).is_file() and (out / "best.safetensors").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    rel = r.release_dir
    for f in (
        "config.json",
        "model.safetensors",
        "training_curve.png",
        "train_log.jsonl",
        "training.json",
        "samples.png",
    ):
        assert (rel / f).is_file(), f
    cfg = json.loads((rel / "config.json").read_text())
    assert cfg["architecture"] == "tiny-dropout" and cfg["data_spec"] == SPEC.to_dict()
    log = [json.loads(line) for line in (rel / "train_log.jsonl").read_text().splitlines()]
    valid = [x for x in log if x["kind"] == "valid"]
    assert [v["epoch"] for v in valid] == [1, 2] and all(v["ema"] for v in valid)
    assert [x["step"] for x in log if x["kind"] == "train"] == list(range(2, 13, 2))  # log_every 2; epoch ends at 6, 12
    summary = json.loads((rel / "training.json").read_text())
    assert summary["best_epoch"] == r.best_epoch and summary["weights"] == "EMA of the weights"
    # the release folder loads back into the released model
    from safetensors.torch import load_file

    assert_same(load_file(rel / "model.safetensors"), weights(r.model))
    # training lowered the validation NLL below the uniform model's 64 ln 2
    assert r.best_valid_nll < 64 * 0.6931 - 1


def test_ema_is_validated_and_released(toy, tmp_path):
    r = quick(tmp_path / "run", epochs=3)
    assert r.best_epoch == 3  # the NLL keeps falling on this toy problem
    valid_x = ToyDataset().load("valid")[0]
    nll_ema = validation_nll(r.ema, valid_x, batch_size=7, device=torch.device("cpu"))
    nll_raw = validation_nll(r.last, valid_x, batch_size=7, device=torch.device("cpu"))
    assert nll_ema == pytest.approx(r.best_valid_nll, rel=1e-12)  # the logged NLL is the EMA's
    assert nll_raw != pytest.approx(nll_ema, rel=1e-6)
    assert_same(weights(r.model), weights(r.ema))  # released = EMA weights of the best epoch
    assert any(not torch.equal(a, b) for a, b in zip(weights(r.model).values(), weights(r.last).values(), strict=True))


def test_no_ema_releases_raw_weights(toy, tmp_path):
    r = quick(tmp_path / "run", epochs=2, overrides={"ema_decay": 0.0})
    assert r.ema is None and r.best_epoch == 2
    assert_same(weights(r.model), weights(r.last))


def test_same_seed_same_weights_other_seed_differs(toy, tmp_path):
    a = quick(tmp_path / "a", epochs=1)
    b = quick(tmp_path / "b", epochs=1)
    c = quick(tmp_path / "c", epochs=1, seed=1)
    assert_same(weights(a.last), weights(b.last))
    assert not torch.equal(a.last.table, c.last.table)


def _interrupt_at(kind, step):
    def cb(event: TrainEvent):
        if event.kind == kind and event.step == step:
            raise KeyboardInterrupt

    return cb


@pytest.mark.parametrize("recipe", ["default", "cosine", "dynamic"])
@pytest.mark.parametrize(
    "kind, step, epoch, in_epoch",
    # the last: after epoch 1's last step, before its validation
    [("epoch", 6, 1, 0), ("step", 8, 1, 2), ("step", 6, 0, 6)],
)
def test_resume_gives_the_same_weights(toy, tmp_path, recipe, kind, step, epoch, in_epoch):
    """2 epochs straight == interrupted (after epoch 1, mid-epoch 2, or between epoch 1's steps and its validation)
    + --resume, bit for bit."""
    full = quick(tmp_path / "full", recipe=recipe)
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", recipe=recipe, callbacks=[_interrupt_at(kind, step)])
    _, meta = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert (meta["step"], meta["epoch"], meta["step_in_epoch"]) == (step, epoch, in_epoch)
    resumed = quick(tmp_path / "cut", recipe=recipe, resume=True)
    assert resumed.steps == full.steps == 12
    assert_same(weights(resumed.last), weights(full.last))
    assert_same(weights(resumed.model), weights(full.model))
    if full.ema is not None:
        assert_same(weights(resumed.ema), weights(full.ema))
    assert resumed.best_valid_nll == full.best_valid_nll and resumed.best_epoch == full.best_epoch
    log = [json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in log if x["kind"] == "valid"] == [1, 2]  # no duplicated records


def test_dynamic_binarization_redraws_the_train_split_every_epoch(toy, tmp_path, monkeypatch):
    seen = []
    original = ToyDataset.redraw

    def spy(self, split, *, seed, epoch):
        seen.append((split, seed, epoch))
        return original(self, split, seed=seed, epoch=epoch)

    monkeypatch.setattr(ToyDataset, "redraw", spy)
    dynamic = quick(tmp_path / "dynamic", recipe="dynamic", epochs=3, seed=4)
    assert seen == [("train", 4, 0), ("train", 4, 1), ("train", 4, 2)]  # the valid split is never redrawn
    fixed = quick(tmp_path / "fixed", recipe="dynamic", epochs=3, seed=4, overrides={"dynamic_binarization": False})
    assert len(seen) == 3
    assert not torch.equal(dynamic.last.table, fixed.last.table)

    class Fixed(ToyDataset):
        name = "toy-fixed"
        redraw = Dataset.redraw

    with pytest.raises(RecipeError, match="dynamic_binarization: dataset 'toy-fixed' has no random draws"):
        train(
            "tiny-dropout",
            dataset=Fixed(),
            recipe="dynamic",
            out=tmp_path / "x",
            progress=False,
            evaluate=False,
            samples=0,
            epochs=1,
        )


def test_bf16_precision_autocasts_the_training_forward_only(toy, tmp_path, monkeypatch):
    modes = []
    original = TinyDropout.logits

    def spy(self, x):
        modes.append((self.training, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return original(self, x)

    monkeypatch.setattr(TinyDropout, "logits", spy)
    quick(tmp_path / "bf16", epochs=1, overrides={"precision": "bf16"})
    assert {m for m in modes if m[0]} == {(True, True, torch.bfloat16)}  # every training step
    assert {m[1] for m in modes if not m[0]} == {False}  # validation is exact fp32
    modes.clear()
    quick(tmp_path / "fp32", epochs=1)
    assert not any(m[1] for m in modes)
    with pytest.raises(RecipeError, match="'precision' must be one of fp32, bf16"):
        quick(tmp_path / "bad", overrides={"precision": "fp16"})


def test_resume_with_more_epochs_continues(toy, tmp_path):
    full = quick(tmp_path / "full", epochs=2)
    quick(tmp_path / "more", epochs=1)
    more = quick(tmp_path / "more", epochs=2, resume=True)  # constant lr: extending == training longer
    assert_same(weights(more.last), weights(full.last))
    # the checkpoint keeps the stages, and the card turns them into the commands that reproduce the run
    _, meta = load_checkpoint(tmp_path / "more" / CHECKPOINT)
    from zoo.training.device import hardware

    here = hardware(torch.device("cpu"), 1)
    assert meta["stages"] == [
        {"epochs": 1, "from_epoch": 0, "from_step": 0, "hardware": here},
        {"epochs": 2, "from_epoch": 1, "from_step": 6, "hardware": here},
    ]
    assert load_checkpoint(tmp_path / "full" / CHECKPOINT)[1]["stages"] == [
        {"epochs": 2, "from_epoch": 0, "from_step": 0, "hardware": here}
    ]
    from zoo.release.folder import training_commands as _training_commands

    summary = {"model": "toy", "dataset": "d", "recipe_name": "default", "epochs": 2, "stages": meta["stages"]}
    assert _training_commands(summary) == (
        "`zoo train toy --dataset d --epochs 1`, then "
        "`zoo train toy --dataset d --epochs 2 --resume` in the same --out folder"
    )
    cut = [{"epochs": 3, "from_epoch": 0, "from_step": 0}, {"epochs": 5, "from_epoch": 1, "from_step": 6}]
    assert _training_commands({**summary, "stages": cut}) == (
        "`zoo train toy --dataset d --epochs 3` stopped after 6 steps (1 epoch done), then "
        "`zoo train toy --dataset d --epochs 5 --resume` in the same --out folder"
    )
    # stages run on different hardware name theirs; a run on one machine leaves that to the card's hardware line
    two = [{**cut[0], "hardware": "CPU (x86_64, 2 cores, 2 threads)"}, {**cut[1], "hardware": "NVIDIA H100"}]
    assert _training_commands({**summary, "stages": two}) == (
        "`zoo train toy --dataset d --epochs 3` on CPU (x86_64, 2 cores, 2 threads) stopped after 6 steps "
        "(1 epoch done), then `zoo train toy --dataset d --epochs 5 --resume` on NVIDIA H100 in the same --out folder"
    )
    old = [cut[0], {**cut[1], "hardware": "NVIDIA H100"}]  # a run begun before stages recorded their hardware
    assert "NVIDIA" not in _training_commands({**summary, "stages": old})
    assert _training_commands({**summary, "stages": None}) == "`zoo train toy --dataset d --epochs 2`"
    # runs in many stages: three or more resumes with the same step, on the same hardware, are written once
    ones = [{"epochs": e, "from_epoch": max(e - 1, 0), "from_step": 0} for e in range(1, 30)]
    assert _training_commands({**summary, "stages": ones}) == (
        "`zoo train toy --dataset d --epochs 1`, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, ..., 29 in the same --out folder"
    )
    quarters = [{"epochs": 25, "from_epoch": 0}] + [{"epochs": e, "from_epoch": e - 25} for e in (50, 75, 100)]
    assert _training_commands({**summary, "stages": quarters}).endswith(" for E = 50, 75, 100 in the same --out folder")
    cut = ones[:6] + [{"epochs": 7, "from_epoch": 5, "from_step": 30}] + ones[7:9]  # stage 6 stopped in its epoch
    assert _training_commands({**summary, "stages": cut}) == (
        "`zoo train toy --dataset d --epochs 1`, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, ..., 6 stopped after 30 steps (5 epochs done), then `zoo train toy --dataset d --epochs E --resume` "
        "for E = 7, 8, 9 in the same --out folder"
    )
    moved = [{**s, "hardware": "CPU" if s["epochs"] < 5 else "GPU"} for s in ones[:6]]
    assert _training_commands({**summary, "stages": moved}) == (
        "`zoo train toy --dataset d --epochs 1` on CPU, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, 4 on CPU, then `zoo train toy --dataset d --epochs 5 --resume` on GPU, then "
        "`zoo train toy --dataset d --epochs 6 --resume` on GPU in the same --out folder"
    )


def test_the_card_command_repeats_the_runs_set_values(toy, tmp_path):
    """Settings given on top of the named recipe (`--set`) are recorded in training.json and the card's
    training command repeats them: recipe keys by name, constructor options as model.KEY."""
    result = quick(
        tmp_path / "run", epochs=1, overrides={"lr": 0.01, "precision": "bf16"}, config={"p": 0.25}, evaluate=True
    )
    training = json.loads((result.release_dir / "training.json").read_text())
    assert training["set"] == {"lr": 0.01, "precision": "bf16", "model.p": 0.25}
    from zoo.release.folder import training_commands

    assert training_commands(training) == (
        "`zoo train tiny-dropout --dataset toy --epochs 1 --set lr=0.01 --set precision=bf16 --set model.p=0.25`"
    )
    assert "--set model.p=0.25" in (result.release_dir / "README.md").read_text()


def test_init_from_starts_from_a_releases_weights_and_the_card_says_so(toy, tmp_path):
    first = quick(tmp_path / "a", epochs=1)
    source = f"local-dir:{first.release_dir}"
    # a learning rate of 1e-12: one Adam step moves no weight by more than ~1e-12, so the run ends where it began
    again = quick(tmp_path / "b", epochs=1, init_from=source, overrides={"lr": 1e-12})
    for k, v in weights(first.model).items():
        assert v.abs().max() > 0.1  # trained away from the zeros a fresh model starts from
        torch.testing.assert_close(weights(again.last)[k], v, rtol=0, atol=1e-6)
    training = json.loads((again.release_dir / "training.json").read_text())
    sha = json.loads((first.release_dir / "config.json").read_text())["weights"]["sha256"]
    init = training["stages"][0]["init_from"]
    assert {k: init[k] for k in ("name", "sha256")} == {"name": source, "sha256": sha}
    from zoo.release.folder import training_commands

    assert f"--set lr=1e-12 --init-from {source}` (from the weights of sha256 {sha[:12]}" in training_commands(training)
    # the stage record survives a --resume (the checkpoint keeps it); --resume itself takes no init_from
    more = quick(tmp_path / "b", epochs=2, resume=True, overrides={"lr": 1e-12})
    assert json.loads((more.release_dir / "training.json").read_text())["stages"][0]["init_from"]["sha256"] == sha
    with pytest.raises(ZooError, match="give one"):
        quick(tmp_path / "b", epochs=3, resume=True, init_from=source, overrides={"lr": 1e-12})
    with pytest.raises(ZooError, match=r"another config .*p: 0.5 there, 0.25 here"):
        quick(tmp_path / "c", epochs=1, init_from=source, config={"p": 0.25})
    with pytest.raises(ZooError, match="is a tiny-dropout, not the tiny-gan"):
        quick(tmp_path / "d", name="tiny-gan", epochs=1, init_from=source)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()  # refused before anything is written


def test_a_run_from_a_releases_weights_counts_the_runs_behind_them(toy, tmp_path, capsys):
    """`--init-from` records the history of the release it starts from (its training.json and timed validation,
    itself continuing earlier runs), so that the card's epochs, wall time, progress table and time to a likelihood
    count every run behind the weights, and a restart's first epoch is marked."""
    from zoo.eval.trainlog import lineage_records, validation_records
    from zoo.release.card import training_progress
    from zoo.release.folder import training_hardware

    first = quick(tmp_path / "a", epochs=2)
    first_training = json.loads((first.release_dir / "training.json").read_text())
    second = quick(tmp_path / "b", epochs=1, init_from=f"local-dir:{first.release_dir}")
    third = quick(tmp_path / "c", epochs=1, init_from=f"local-dir:{second.release_dir}")
    training = json.loads((third.release_dir / "training.json").read_text())
    history = training["stages"][0]["init_from"]["history"]
    second_training = json.loads((second.release_dir / "training.json").read_text())
    assert history["training"] == second_training  # which itself holds the first run's history
    assert history["epochs"] == 3 and history["steps"] == first_training["steps"] + second_training["steps"]
    assert history["wall_time_s"] == pytest.approx(first_training["wall_time_s"] + second_training["wall_time_s"])

    own = [validation_records(r.release_dir / "train_log.jsonl") for r in (first, second, third)]
    lineage = lineage_records(third.release_dir)
    assert [r["epoch"] for r in lineage] == [1, 2, 3, 4]
    assert [r["nll"] for r in lineage] == [r["nll"] for records in own for r in records]
    assert [bool(r.get("continued")) for r in lineage] == [False, False, True, True]
    assert lineage[3]["elapsed_s"] == pytest.approx(own[2][0]["elapsed_s"] + history["wall_time_s"])
    assert lineage[2]["step"] == own[1][0]["step"] + first_training["steps"]
    assert all(b["elapsed_s"] > a["elapsed_s"] - 0.1 for a, b in itertools.pairwise(lineage))  # wall_time_s: 0.1 s

    text = training_hardware(training)
    minutes = (history["wall_time_s"] + training["wall_time_s"]) / 60
    assert text.startswith(f"{minutes:.1f} min and 4 epochs in all. First ")
    assert text.count("from those weights with a fresh optimizer") == 2  # the second run, then the third
    assert text.count("in all") == 1  # the totals once, then every run from the first
    table = "\n".join(training_progress(lineage))
    assert "| 3 | " in table and table.count("(a fresh optimizer from this epoch on)") == 2
    assert "counted on from the runs whose weights it continued" in table
    from zoo.eval.trainlog import lineage as runs_behind

    assert runs_behind(training) == [(0, first_training), (2, second_training), (3, training)]
    # a run from scratch is told as before
    assert "in all" not in training_hardware(first_training) and lineage_records(first.release_dir) == own[0]
    # a release whose run went on past its best epoch holds that epoch's weights: its history stops there
    from zoo.eval.trainlog import run_history

    past = tmp_path / "past"
    past.mkdir()
    nlls = {1: 9.0, 2: 8.0, 3: 8.5}
    log = [{"kind": "valid", "epoch": e, "step": 10 * e, "nll": nll, "elapsed_s": 5.0 * e} for e, nll in nlls.items()]
    (past / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (past / "training.json").write_text(json.dumps({"epochs": 3, "steps": 30, "best_epoch": 2, "wall_time_s": 16.0}))
    cut = run_history(past)
    assert (cut["epochs"], cut["steps"], cut["wall_time_s"]) == (2, 20, 10.0) and len(cut["validation"]) == 2
    # unreadable records of the release (its weights verify) do not stop a run from it: it counts itself only
    (first.release_dir / "training.json").write_text("{ not json")
    fresh = quick(tmp_path / "d", epochs=1, init_from=f"local-dir:{first.release_dir}")
    assert "history" not in json.loads((fresh.release_dir / "training.json").read_text())["stages"][0]["init_from"]
    assert "unreadable" in capsys.readouterr().err


def test_resume_accepts_a_checkpoint_from_before_a_recipe_key_existed(toy, tmp_path):
    # a checkpoint written before `precision` joined the schema resumes when the run keeps its default
    from zoo.training.checkpoint import save_checkpoint

    full = quick(tmp_path / "full", epochs=2)
    quick(tmp_path / "old", epochs=1)
    tensors, meta = load_checkpoint(tmp_path / "old" / CHECKPOINT)
    del meta["identity"]["recipe"]["precision"]
    save_checkpoint(tmp_path / "old" / CHECKPOINT, tensors, meta)
    with pytest.raises(ZooError, match=r"precision"):  # another value than the default is another training
        quick(tmp_path / "old", epochs=2, resume=True, overrides={"precision": "bf16"})
    more = quick(tmp_path / "old", epochs=2, resume=True)
    assert_same(weights(more.last), weights(full.last))


def test_a_resume_on_other_hardware_is_a_stage_of_its_own(toy, tmp_path):
    """Same epochs, other threads: the card must not say the whole run used the first stage's hardware."""
    from zoo.training.device import hardware

    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(KeyboardInterrupt):
            quick(tmp_path / "run", callbacks=[_interrupt_at("step", 8)])
        torch.set_num_threads(2)
        quick(tmp_path / "run", resume=True)
        two = hardware(torch.device("cpu"), 1)
        torch.set_num_threads(1)
        one = hardware(torch.device("cpu"), 1)
    finally:
        torch.set_num_threads(saved)
    stages = load_checkpoint(tmp_path / "run" / CHECKPOINT)[1]["stages"]
    assert one != two and stages == [
        {"epochs": 2, "from_epoch": 0, "from_step": 0, "hardware": one},
        {"epochs": 2, "from_epoch": 1, "from_step": 8, "hardware": two},
    ]


def test_interrupt_writes_a_checkpoint_and_refuses_to_clobber_it(toy, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        quick(out, callbacks=[_interrupt_at("step", 3)])
    tensors, meta = load_checkpoint(out / CHECKPOINT)
    assert (meta["epoch"], meta["step_in_epoch"], meta["step"]) == (0, 3, 3)
    assert {"model/table", "ema/table", "rng/0/torch"} <= set(tensors)
    assert any(k.startswith("trainer/optimizer/state") for k in tensors)
    assert meta["identity"]["model"] == "tiny-dropout"
    assert not (out / "release").exists()
    with pytest.raises(ZooError, match="already holds a training checkpoint; pass --resume"):
        quick(out)
    with pytest.raises(ZooError, match="recipe: checkpoint .*now"):
        quick(out, resume=True, overrides={"lr": 0.01})
    with pytest.raises(ZooError, match="no checkpoint"):
        quick(tmp_path / "empty", resume=True)


def test_sigterm_checkpoints_then_stops(toy, tmp_path):
    def terminate(event):
        if event.kind == "step" and event.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "run", callbacks=[terminate])
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    _, meta = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert meta["step"] == 2  # the step in progress finished, nothing after it ran
    full = quick(tmp_path / "full")
    assert_same(weights(quick(tmp_path / "run", resume=True).last), weights(full.last))


def test_custom_trainer_interface(toy, tmp_path):
    FakeGANTrainer.instances.clear()
    r = quick(tmp_path / "gan", name="tiny-gan", samples=4, epochs=2)
    trainer = FakeGANTrainer.instances[-1]
    assert trainer.steps == 12 and trainer.recipe["lr_d"] == 0.1 and trainer.recipe["steps_per_epoch"] == 6
    assert r.best_valid_nll is None and r.ema is None  # no likelihood: no validation NLL
    assert (tmp_path / "gan" / "samples" / "epoch002.png").is_file()  # epoch_samples every epoch
    log = [json.loads(x) for x in (r.release_dir / "train_log.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g"} <= set(log[0])
    assert (r.release_dir / "samples.png").is_file()
    # its own state (two optimizers, a generator) checkpoints and resumes exactly
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", name="tiny-gan", callbacks=[_interrupt_at("step", 5)])
    resumed = quick(tmp_path / "cut", name="tiny-gan", resume=True)
    assert_same(weights(resumed.last), weights(r.last))


def test_class_conditional_models_get_labels(toy, tmp_path):
    r = quick(tmp_path / "cond", name="tiny-cond", epochs=1)
    assert r.last.seen and all(y is not None for y in r.last.seen)  # training batches came with labels
    valid_x, valid_y = ToyDataset().load("valid")
    nll = validation_nll(r.last, valid_x, labels=valid_y, batch_size=32, device=torch.device("cpu"))
    assert nll == pytest.approx(r.best_valid_nll, rel=1e-12)  # validation is p(x | y)

    class Unlabelled(ToyDataset):
        def load(self, split):
            return super().load(split)[0], None

    with pytest.raises(ZooError, match="class-conditional .* has no labels"):
        train("tiny-cond", dataset=Unlabelled(), out=tmp_path / "u", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_train_and_resume(toy, tmp_path):
    full = quick(tmp_path / "full", device="cuda")
    assert full.last.table.device.type == "cuda"
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", device="cuda", callbacks=[_interrupt_at("step", 8)])
    resumed = quick(tmp_path / "cut", device="cuda", resume=True)
    assert_same(weights(resumed.last), weights(full.last))


def test_bad_inputs(toy, tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ZooError, match="no CUDA device"):
            quick(tmp_path / "x", device="cuda")
    with pytest.raises(ZooError, match="has images 1x8x8, 2 levels; model independent takes 1x28x28"):
        train("independent", dataset="toy", out=tmp_path / "y", progress=False)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        quick(tmp_path / "z", limit=0)
    with pytest.raises(ZooError, match="no split 'dev'"):
        quick(tmp_path / "w", overrides={"valid_split": "dev"})


def test_limit_and_default_dataset(toy, tmp_path):
    r = train("tiny-dropout", out=tmp_path / "run", limit=40, epochs=1, progress=False, evaluate=False, samples=0)
    assert r.steps == 3  # ceil(40 / 16); the dataset came from the recipe
    assert json.loads((r.release_dir / "training.json").read_text())["limit"] == 40


def test_evaluate_hook_runs_the_harness(toy, tmp_path, monkeypatch, capfd):
    """The harness on the test split, and on the canonical subset (here 10 of the toy's test images); without
    progress (`zoo train --quiet`) its scoring draws no bars either."""
    assert pytest.importorskip("zoo.eval").evaluate  # the harness is another module; skip if it is absent
    import zoo.release.canonical

    monkeypatch.setattr(zoo.release.canonical, "CANONICAL_LIMIT", 10)
    capfd.readouterr()
    r = quick(tmp_path / "run", epochs=1, evaluate=True, overrides={"ema_decay": 0.0})
    assert r.eval is not None
    assert "img/s" not in capfd.readouterr().err
    nll = r.eval["metrics"]["nll"]["value"]
    test_x = ToyDataset().load("test")[0]
    assert nll == pytest.approx(validation_nll(r.model, test_x, batch_size=32, device=torch.device("cpu")), rel=1e-6)
    assert (r.release_dir / "eval.json").is_file()
    sub = json.loads((r.release_dir / "eval.json").read_text())["canonical_subset"]
    assert sub["provenance"]["subset"]["limit"] == 10 and sub["provenance"]["n"] == 10
    card = (r.release_dir / "README.md").read_text()
    assert "canonical_subset:" in card and f"indices_sha256: {sub['provenance']['subset']['indices_sha256']}" in card
    # weights no registry pins yet: the card names the folder, the name that loads them
    assert f'zoo.load("local-dir:{r.release_dir}")' in card and f"`zoo eval local-dir:{r.release_dir} --dataset" in card


def test_cli_train(toy, tmp_path, cli_runner):
    out = tmp_path / "cli"
    res = cli_runner(
        "train",
        "tiny-dropout",
        "--dataset",
        "toy",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-eval",
        "--samples",
        "0",
        "--quiet",
        "--set",
        "lr=0.1",
        "--set",
        "model.p=0.25",
        "--json",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["steps"] == 6 and summary["best_epoch"] == 1
    cfg = json.loads((out / "release" / "config.json").read_text())
    assert cfg["config"]["p"] == 0.25
    rec = json.loads((out / "release" / "training.json").read_text())["recipe"]
    assert rec["lr"] == 0.1
    again = cli_runner("train", "tiny-dropout", "--dataset", "toy", "--out", str(out), "--quiet")
    assert again.exit_code != 0 and "--resume" in again.output
    bad = cli_runner("train", "tiny-dropout", "--set", "lr=-1", "--out", str(tmp_path / "b"), "--quiet")
    assert bad.exit_code != 0 and "'lr' must be > 0" in bad.output
    # a resumed run's messages go to stderr: with --json, stdout is the summary alone
    more = cli_runner(
        "train",
        "tiny-dropout",
        "--dataset",
        "toy",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--resume",
        "--no-eval",
        "--samples",
        "0",
        "--quiet",
        "--set",
        "lr=0.1",
        "--set",
        "model.p=0.25",
        "--json",
    )
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["steps"] == 12 and "resuming a 1-epoch run with epochs=2" in more.stderr


# -- DistributedDataParallel ------------------------------------------------------------------------------------
DDP_SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    sys.path.insert(0, {tests!r})
    import test_train as T
    from zoo.plugins import use_plugins
    import zoo

    torch.set_num_threads(1)
    out, recipe = sys.argv[1], json.loads(sys.argv[2])
    with use_plugins({{"toy-plugin": T._Plugin}}):
        r = zoo.train("tiny-dropout", dataset="toy", out=out, epochs=2, overrides=recipe, progress=False,
                      evaluate=False, samples=0)
    rank = int(os.environ.get("RANK", 0))
    digest = hashlib.sha256()
    for k, v in sorted(r.last.state_dict().items()):
        digest.update(k.encode()); digest.update(v.numpy().tobytes())
    with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
        json.dump({{"sha256": digest.hexdigest(), "table": r.last.table.flatten().tolist(),
                   "release": str(r.release_dir)}}, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_hold_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    recipe = {"batch_size": 16, "ema_decay": 0.0, "log_every": 1, "lr": 0.05, "config": {"p": 0.0}}  # no dropout
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        str(script),
        str(out),
        json.dumps(recipe),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    assert ranks[0]["release"].endswith("release") and ranks[1]["release"] == "None"  # only rank 0 writes
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in log if x["kind"] == "train"]
    assert steps == list(range(1, 13))  # one writer: every step logged once, 96 images / global batch 16
    # the ranks' half batches together make the single-process batch: the same weights up to rounding
    with use_plugins({"toy-plugin": _Plugin}):
        single = quick(tmp_path / "single", overrides=recipe)
    assert torch.allclose(single.last.table.flatten(), torch.tensor(ranks[0]["table"]), atol=1e-5)


# -- the package layout, the trainer protocol and the names kept for one release ----------------------
def test_old_import_paths_warn_and_give_the_same_objects():
    import zoo.distributed
    import zoo.eval.distributed
    import zoo.training
    import zoo.training.checkpoint
    import zoo.training.data
    import zoo.training.state

    for old, new in (
        (lambda: zoo.training.shard_indices, zoo.distributed.shard_indices),
        (lambda: zoo.training.flatten_state, zoo.training.checkpoint.flatten_state),
        (lambda: zoo.training.validation_nll, zoo.training.data.validation_nll),
        (lambda: zoo.training.CHECKPOINT, zoo.training.state.CHECKPOINT),
        (lambda: zoo.eval.distributed.map_batches, zoo.distributed.map_batches),
    ):
        with pytest.warns(DeprecationWarning, match="moved to zoo"):
            assert old() is new
    with pytest.warns(DeprecationWarning):
        assert zoo.eval.distributed.init_from_env() is False  # the old interface: "did this call start a group?"
    with pytest.raises(AttributeError):
        _ = zoo.training.no_such_name
    assert zoo.train is zoo.training.train  # the function; the package is zoo.training


def test_trainers_implement_the_protocol(toy):
    from zoo.training import MaximumLikelihoodTrainer
    from zoo.training.trainer import trainer_class

    rec = {**resolve_recipe(zoo.info("tiny-dropout"), "default"), "steps_per_epoch": 1, "total_steps": 1}
    assert isinstance(MaximumLikelihoodTrainer(zoo.create("tiny-dropout"), rec, torch.device("cpu")), zoo.Trainer)
    gan_rec = {**resolve_recipe(zoo.info("tiny-gan"), "default", extra_defaults=FakeGANTrainer.recipe_defaults)}
    assert isinstance(FakeGANTrainer(TinyGAN(), gan_rec, torch.device("cpu")), zoo.Trainer)
    assert trainer_class(zoo.info("tiny-gan")) is FakeGANTrainer
    assert trainer_class(zoo.info("tiny-dropout")) is MaximumLikelihoodTrainer


class OldHookTrainer(FakeGANTrainer):
    """A third-party trainer written against the hook's old name."""

    epoch_samples = None  # type: ignore[assignment]  # hide the new name this test class inherits

    def fixed_noise_samples(self):
        return self.model.sample(2, generator=torch.Generator().manual_seed(0))


def test_the_old_epoch_samples_hook_name_still_works_with_a_warning(toy):
    import dataclasses

    from zoo.training.trainer import epoch_samples, trainer_class

    old = dataclasses.replace(zoo.info("tiny-gan"), trainer=f"{__name__}:OldHookTrainer")
    with pytest.warns(DeprecationWarning, match="now called epoch_samples"):
        assert trainer_class(old) is OldHookTrainer
    t = OldHookTrainer(TinyGAN(), {"lr": 0.05, "lr_d": 0.1, "seed": 0, "fixed_noise": 2}, torch.device("cpu"))
    assert epoch_samples(t).shape == (2, 1, 8, 8)


def test_resuming_without_a_dataset_checksum_says_so(toy, tmp_path, capsys):
    class NoChecksum(ToyDataset):
        def checksum(self, split):
            raise NotImplementedError

    kw = dict(epochs=1, progress=False, evaluate=False, samples=0, out=tmp_path / "run")
    train("tiny-dropout", dataset=NoChecksum(), **kw)
    assert "no checksum" not in capsys.readouterr().err  # a fresh run checks nothing
    train("tiny-dropout", dataset=NoChecksum(), resume=True, **{**kw, "epochs": 2})
    err = capsys.readouterr().err
    assert "note: dataset 'toy' has no checksum" in err and "cannot check that it continues on the same data" in err
    # with checksums on both sides there is no note, and a different dataset is refused
    quick(tmp_path / "checked", epochs=1)
    quick(tmp_path / "checked", epochs=2, resume=True)
    assert "no checksum" not in capsys.readouterr().err


# -- bad input on --resume (issue 18) ---------------------------------------------------------------------------
def test_resuming_a_finished_run_with_fewer_epochs_is_refused(toy, tmp_path):
    out = tmp_path / "run"
    quick(out, epochs=2)
    before = {p.name: p.read_bytes() for p in (out / "release").iterdir() if p.is_file()}
    ckpt = (out / CHECKPOINT).read_bytes()
    with pytest.raises(
        ZooError,
        match=r"cannot resume from .*: it has done 2 epochs already, so epochs=1 would "
        "train nothing",
    ):
        quick(out, epochs=1, resume=True)
    assert (out / CHECKPOINT).read_bytes() == ckpt  # no bogus stage in the checkpoint
    assert {p.name: p.read_bytes() for p in (out / "release").iterdir() if p.is_file()} == before  # nor in the card


def _damage(path, *, meta=None, drop=(), reshape=(), raw_meta=None):
    """Rewrite checkpoint `path`: its metadata changed by `meta` (a function), tensors dropped or reshaped."""
    from safetensors.torch import save_file

    tensors, m = load_checkpoint(path)
    if meta is not None:
        meta(m)
    tensors = {k: v for k, v in tensors.items() if not any(k.startswith(p) for p in drop)}
    for k in reshape:
        tensors[k] = torch.cat([tensors[k].flatten(), tensors[k].flatten()[:1]])
    save_file(tensors, str(path), metadata={"zoo_checkpoint": raw_meta if raw_meta is not None else json.dumps(m)})


DAMAGED_CHECKPOINTS = {
    "metadata not JSON": (dict(raw_meta="{not json"), "metadata is not JSON"),
    "metadata deeply nested": (dict(raw_meta="[" * 100_000 + "]" * 100_000), "not JSON|JSON list"),
    "metadata a list": (dict(raw_meta="[1, 2]"), "metadata is a JSON list"),
    "epoch missing": (dict(meta=lambda m: m.pop("epoch")), "lacks 'epoch'"),
    "epoch a string": (dict(meta=lambda m: m.update(epoch="1")), "'epoch' must be an int >= 0, got '1'"),
    "epoch negative": (dict(meta=lambda m: m.update(epoch=-5)), "'epoch' must be an int >= 0, got -5"),
    "epoch beyond epochs": (dict(meta=lambda m: m.update(epoch=7)), "epoch 7 of a 2-epoch run"),
    "step a float": (dict(meta=lambda m: m.update(step=1.5)), "'step' must be an int"),
    "step_in_epoch past the epoch": (dict(meta=lambda m: m.update(step_in_epoch=99)), "step 99 within an epoch of 6"),
    "epochs zero": (dict(meta=lambda m: m.update(epochs=0)), "'epochs' must be an int >= 1"),
    "best_nll a string": (dict(meta=lambda m: m.update(best_nll="low")), "'best_nll' must be a number"),
    "identity missing": (dict(meta=lambda m: m.pop("identity")), "lacks 'identity'"),
    "trainer state missing": (dict(meta=lambda m: m.pop("trainer_state")), "lacks 'trainer_state'"),
    "a model tensor missing": (dict(drop=("model/",)), "model weights do not fit the model \\(missing .*table"),
    "a model tensor reshaped": (dict(reshape=("model/table",)), "model weights do not fit the model \\(reshaped table"),
    "EMA weights missing": (dict(drop=("ema/",)), "no EMA weights"),
    "optimizer tensors missing": (dict(drop=("trainer/",)), "missing entry"),
    "RNG state missing": (dict(drop=("rng/",)), "no RNG state for rank 0"),
}


@pytest.mark.parametrize("case", list(DAMAGED_CHECKPOINTS))
def test_a_damaged_checkpoint_is_one_cannot_resume_error(case, toy, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        quick(out, callbacks=[_interrupt_at("step", 3)])
    damage, why = DAMAGED_CHECKPOINTS[case]
    _damage(out / CHECKPOINT, **damage)
    with pytest.raises(ZooError, match=f"^cannot resume from {out / CHECKPOINT}: .*({why})") as e:
        quick(out, resume=True)
    assert "\n" not in str(e.value)


def test_a_checkpoint_that_is_no_safetensors_file(toy, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(b"\x00" * 40)
    with pytest.raises(ZooError, match=f"^cannot resume from {out / CHECKPOINT}: cannot read checkpoint"):
        quick(out, resume=True)


def test_checkpoints_and_release_files_are_written_0644(toy, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        quick(out, epochs=1)
    finally:
        os.umask(old)
    files = [out / CHECKPOINT, *[p for p in (out / "release").rglob("*") if p.is_file()]]
    assert {
        str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in files if p.stat().st_mode & 0o777 != 0o644
    } == {}


def test_cli_train_tiny_fits_the_datasets_images_and_threads(tmp_path, cli_runner, monkeypatch):
    """`--tiny` keeps the tiny network but trains on 28x28 binarized MNIST; `--threads` sets torch's threads."""
    import zoo.training.loop

    built = {}
    real = zoo.training.loop.create

    def spy(name, **cfg):
        built.update(cfg)
        return real(name, **cfg)

    monkeypatch.setattr(zoo.training.loop, "create", spy)
    saved = torch.get_num_threads()
    try:
        r = cli_runner(
            "train",
            "pixelcnn",
            "--tiny",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--limit",
            "64",
            "--no-eval",
            "--samples",
            "0",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
            "--dataset",
            "binarized-mnist",
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
    assert r.exit_code == 0, r.output
    tiny = zoo.info("pixelcnn").test_config
    assert built["hidden"] == tiny["hidden"] and (built["height"], built["width"]) == (28, 28)  # the dataset's


def test_cli_train_unknown_set_key_lists_recipe_keys_and_model_options(cli_runner):
    r = cli_runner("train", "pixelcnn", "--set", "learning_rate=0.1")
    assert r.exit_code == 1
    assert "--set learning_rate: neither a recipe key nor an option of pixelcnn" in r.output
    assert (
        "recipe keys: " in r.output
        and "batch_size" in r.output
        and "model options: " in r.output
        and "hidden" in r.output
    )


def test_keep_freed_memory_tunes_glibcs_malloc_and_can_be_turned_off(monkeypatch):
    """`zoo train`/`zoo eval` keep freed activations for reuse (zoo.util.keep_freed_memory): glibc takes the
    settings; `ZOO_KEEP_FREED_MEMORY=0` leaves malloc as it is."""
    import platform
    import sys

    from zoo.util import keep_freed_memory

    monkeypatch.setenv("ZOO_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("ZOO_KEEP_FREED_MEMORY")
    assert keep_freed_memory() is (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")


def test_short_openmp_spin_is_set_before_torch_loads_and_never_overrides(monkeypatch):
    """`zoo train`/`zoo eval` shorten the idle OpenMP threads' spin (zoo.util.short_openmp_spin) only where torch
    is not loaded yet and the environment says nothing of its own."""
    import os
    import subprocess
    import sys

    from zoo.util import OPENMP_SPIN, short_openmp_spin

    assert short_openmp_spin() is False  # torch is loaded in this process: too late to matter
    code = "import os, zoo.util as u; print(u.short_openmp_spin(), os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", OPENMP_SPIN]
    for key, value in (("GOMP_SPINCOUNT", "5"), ("OMP_WAIT_POLICY", "PASSIVE")):
        out = subprocess.run([sys.executable, "-c", code], env={**env, key: value}, capture_output=True, text=True)
        assert out.stdout.split() == ["False", "5" if key == "GOMP_SPINCOUNT" else "None"]
    # the same rule for a subprocess's environment (benchmarks/bench_train.py's workers)
    from zoo.util import openmp_spin_setting

    assert openmp_spin_setting({"PATH": "/bin"}) == {"GOMP_SPINCOUNT": OPENMP_SPIN}
    assert openmp_spin_setting({"OMP_WAIT_POLICY": "PASSIVE"}) == openmp_spin_setting({"GOMP_SPINCOUNT": "5"}) == {}
