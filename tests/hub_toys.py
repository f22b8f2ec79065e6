"""The Hub tests' toys: a tiny 4x4 model, its images, a plugin that registers it with pinned weights and a
4x4 toy dataset, and thin wrappers of the harness and of publish. The fixtures that use them (`hf_env`,
`hub_server`, `register`) are in conftest.py.
"""

from __future__ import annotations

import torch

import zoo
from zoo import release

TOKEN = "hf_zoo_secret_test_token"
TINY = {"channels": 1, "height": 4, "width": 4, "levels": 2}


def tiny_model(seed: int = 0):
    m = zoo.create("independent", **{k: v for k, v in TINY.items() if k != "channels"})
    with torch.no_grad():
        m.table.copy_(torch.randn(m.table.shape, generator=torch.Generator().manual_seed(seed)))
    return m


def images(n: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 2, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed))


def toy_images() -> torch.Tensor:
    return images(256, seed=123)


def evaluate(model, **kw):
    """The real harness, on the toy dataset that the `register` fixture provides."""
    return zoo.evaluate(model, dataset="hub-toy", split="test", metrics=["nll"], **kw)


def publish(folder, repo_id, **kw):
    kw.setdefault("verify", False)
    return release.publish(folder, repo_id, **kw)


class FakePlugin:
    """Registers `hubtiny` (the example's model class) with pinned weights, and a 4x4 binary toy dataset."""

    def __init__(self, weights):
        self.weights = weights

    @zoo.hookimpl
    def zoo_register_datasets(self, register):
        from zoo.data import Dataset, array_checksum

        class Toy(Dataset):
            name, data_spec, splits, description = (
                "hub-toy",
                zoo.DataSpec(1, 4, 4, 2),
                ("test",),
                "256 random 4x4 images",
            )

            def load(self, split):
                return toy_images().to(torch.uint8), None

            def checksum(self, split):
                return array_checksum(toy_images().to(torch.uint8))

            def available(self, split):
                return True

        register(Toy())

    @zoo.hookimpl
    def zoo_register_models(self, register):
        register(
            zoo.ModelSpec(
                name="hubtiny",
                family="baseline",
                summary="Independent pixels, 4x4, for the Hub tests",
                paper="none",
                builder="zoo_independent.model:IndependentPixels",
                config=dict(TINY),
                data_spec=zoo.DataSpec(1, 4, 4, 2),
                capabilities={"likelihood", "sampler"},
                weights=tuple(self.weights),
            )
        )
