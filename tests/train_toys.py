"""The toys the training tests train: an 8x8 binary dataset with random redraws, tiny models (a dropout
table, a class-conditional table, a Bernoulli 'GAN' with its own trainer) and the plugin that registers them
(the `toy` fixture in conftest.py registers it for a test), plus small helpers.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

import zoo
from zoo.data import Dataset
from zoo.training import TrainEvent, train

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


class ToyPlugin:
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


def interrupt_at(kind, step):
    """A training callback that raises KeyboardInterrupt at the event `kind` ("step" or "epoch") of `step`."""

    def cb(event: TrainEvent):
        if event.kind == kind and event.step == step:
            raise KeyboardInterrupt

    return cb
