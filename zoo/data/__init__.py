"""Datasets: the contract, the lookup, and the cache. Nothing dataset-specific lives here.

    import zoo.data
    zoo.data.list_datasets()                         # ['binarized-mnist', 'cifar10', ...]
    ds = zoo.data.get_dataset("binarized-mnist")
    x, y = ds.load("test")                           # uint8 levels (N, C, H, W), long labels (N,)
    ds.checksum("test")                              # sha256 of the prepared arrays
    logp = model.log_prob(x[:64].long())             # models take integer levels; convert per batch

Datasets are registered by plugins through `zoo_register_datasets(register)`;
the built-in plugin `zoo_datasets` registers `binarized-mnist`, `mnist`,
`fashion-mnist`, `cifar10` and `binarized-mnist-amat`.

Images come back as **uint8** levels in `[0, levels)` (uint8 keeps CIFAR-10 at
184 MB instead of 1.5 GB as int64); convert a batch with `.long()` before
giving it to a model. Labels are int64 or None.

Importing this module imports neither numpy nor torch (plugins import it to
register their datasets, and `zoo list` must stay fast).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, UnknownNameError, ZooError
from ..protocols import DataSpec
from ..util import did_you_mean
from .cache import (
    DataError,
    array_checksum,
    atomic_write,
    cache_dir,
    file_digest,
    progress_bar,
    read_arrays,
    save_arrays,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

__all__ = [
    "Dataset",
    "CachedDataset",
    "DataError",
    "list_datasets",
    "get_dataset",
    "default_dataset",
    "load_split",
    "cache_dir",
    "array_checksum",
    "atomic_write",
    "file_digest",
    "save_arrays",
    "read_arrays",
    "progress_bar",
]


class Dataset:
    """What the harness and the trainer need from a dataset.

    A plugin registers an instance. Subclasses set the class attributes and
    implement `load`, `checksum` and `available` (or derive from
    `CachedDataset`, which implements them over the zoo's data cache).
    """

    name: str = ""  # unique, e.g. "binarized-mnist"
    data_spec: DataSpec  # e.g. DataSpec(1, 28, 28, 2)
    splits: tuple[str, ...] = ()  # e.g. ("train", "valid", "test")
    num_classes: int | None = None  # labels are in [0, num_classes); None: unlabelled
    sizes: Mapping[str, int] = {}  # expected images per split; empty when it depends on the source
    description: str = ""  # one line
    license: str = ""  # of the data, e.g. "CC-BY-SA-3.0"
    source: str = ""  # where it comes from and how to get it

    def __init__(self, **attrs: Any) -> None:
        """Instances may override class attributes, e.g. `FashionMNIST(sizes={})` for a subset."""
        for key, value in attrs.items():
            if key.startswith("_") or not hasattr(type(self), key) or callable(getattr(type(self), key)):
                raise TypeError(f"{type(self).__name__}: unknown attribute {key!r}")
            setattr(self, key, value)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`(x, y)`: images as uint8 levels `(N, C, H, W)`, labels int64 `(N,)` or None."""
        raise NotImplementedError

    def checksum(self, split: str) -> str:
        """sha256 (hex) of the prepared arrays of `split` (see `zoo.data.array_checksum`)."""
        raise NotImplementedError

    def available(self, split: str) -> bool:
        """Whether `load(split)` works without a prepare step (shipped or already cached)."""
        raise NotImplementedError

    def prepare(
        self,
        splits: Sequence[str] | None = None,
        *,
        source: str | Path | None = None,
        progress: bool = True,
        force: bool = False,
    ) -> dict[str, str]:
        """Make `splits` (default: all) loadable; return `{split: checksum}`."""
        return {s: self.checksum(s) for s in self._splits(splits)}

    def redraw(self, split: str, *, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A fresh random draw of a stochastic split, like `load` (e.g. dynamic binarization).

        The same `(seed, epoch)` gives the same images on every machine, so a
        resumed run sees what an uninterrupted one saw. `zoo train` calls it once
        per epoch when the recipe sets `dynamic_binarization`. Datasets whose
        images are not random draws raise NotImplementedError (the default).
        """
        raise NotImplementedError(f"dataset {self.name!r} has no random draws to redraw")

    # -- helpers -----------------------------------------------------------
    def check_split(self, split: str) -> str:
        if split not in self.splits:
            raise UnknownNameError(
                f"dataset {self.name!r} has no split {split!r}{did_you_mean(split, list(self.splits))} "
                f"(splits: {', '.join(self.splits)})"
            )
        return split

    def _splits(self, splits: Sequence[str] | str | None) -> list[str]:
        if splits is None:
            return list(self.splits)
        if isinstance(splits, str):
            splits = [splits]
        return [self.check_split(s) for s in splits]

    def to_dict(self) -> dict[str, Any]:
        """What `zoo data list --json` prints for this dataset."""
        return {
            "name": self.name,
            "data_spec": self.data_spec.to_dict(),
            "splits": list(self.splits),
            "sizes": dict(self.sizes),
            "num_classes": self.num_classes,
            "available": {s: self.available(s) for s in self.splits},
            "description": self.description,
            "license": self.license,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.data_spec}, splits {self.splits}>"


class CachedDataset(Dataset):
    """A dataset whose splits are prepared once into the zoo's data cache.

    A subclass implements `read_source(source, splits, progress)` returning
    `{split: (x uint8 (N, C, H, W), y int64 (N,) or None)}` as numpy arrays,
    and `default_source()` (where the source is found without the user's
    help, or None). Prepared splits live in `cache_dir()/<name>/<split>.npz`;
    `shipped` names data files inside the package (read-only, used first);
    `checksums` pins the sha256 of splits whose bits must be the same
    everywhere: a prepared split that differs is refused.
    """

    checksums: Mapping[str, str] = {}  # split -> pinned sha256
    shipped: Mapping[str, str] = {}  # split -> path of a data file shipped with the package
    prepare_hint: str = ""  # how to get the source, shown when a split is missing

    def read_source(self, source: Path | None, splits: list[str], progress: bool) -> dict[str, Any]:
        raise NotImplementedError

    def default_source(self) -> Path | None:
        """Where the source lives when the user names none; None if not found here."""
        return None

    # -- paths ---------------------------------------------------------------
    def cache_path(self, split: str) -> Path:
        return cache_dir() / self.name / f"{self.check_split(split)}.npz"

    def _shipped_path(self, split: str) -> Path | None:
        p = self.shipped.get(split)
        return Path(p) if p else None

    # -- the contract ---------------------------------------------------------
    def available(self, split: str) -> bool:
        shipped = self._shipped_path(self.check_split(split))
        return (shipped is not None and shipped.is_file()) or self.cache_path(split).is_file()

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        x, y = self.load_numpy(split)
        return torch.from_numpy(x), (torch.from_numpy(y) if y is not None else None)

    def checksum(self, split: str) -> str:
        pinned = self.checksums.get(self.check_split(split))
        if pinned:
            return pinned
        return self._read(split)[2]

    def load_numpy(self, split: str) -> tuple[np.ndarray, np.ndarray | None]:
        """`load` without torch: uint8 `(N, C, H, W)`, int64 `(N,)` or None."""
        x, y, _ = self._read(split)
        return x, y

    def prepare(
        self,
        splits: Sequence[str] | None = None,
        *,
        source: str | Path | None = None,
        progress: bool = True,
        force: bool = False,
    ) -> dict[str, str]:
        """Read the source and write the missing splits (all with `force`) to the cache.

        Splits shipped with the package are not written. Returns `{split: checksum}`
        of the requested splits.
        """
        wanted = self._splits(splits)
        todo = [s for s in wanted if force or not self.available(s)]
        todo = [s for s in todo if (shipped := self._shipped_path(s)) is None or not shipped.is_file()]
        if todo:
            arrays = self.build(todo, source=source, progress=progress)
            for s in todo:
                x, y = arrays[s]
                save_arrays(
                    self.cache_path(s), x, y, levels=self.data_spec.levels, expected_sha256=self.checksums.get(s)
                )
        return {s: self.checksum(s) for s in wanted}

    def build(
        self, splits: Sequence[str] | None = None, *, source: str | Path | None = None, progress: bool = False
    ) -> dict[str, Any]:
        """Read the source into numpy arrays `{split: (x, y)}` without touching the cache."""
        wanted = self._splits(splits)
        if source is None:
            src = self.default_source()
        else:
            src = Path(source).expanduser()
            if not src.exists():
                raise DataError(f"{self.name}: source {src} does not exist")
        out = self.read_source(src, wanted, progress)
        for s in wanted:
            x, y = out[s]
            self._check_arrays(s, x, y)
        return out

    # -- internals --------------------------------------------------------------
    def _check_arrays(self, split: str, x: Any, y: Any, *, count: bool = True) -> None:
        spec = self.data_spec
        if x.ndim != 4 or tuple(x.shape[1:]) != spec.shape:
            raise DataError(
                f"{self.name}/{split}: expected images (N, {spec.channels}, {spec.height}, "
                f"{spec.width}), the source gave shape {tuple(x.shape)}"
            )
        want = self.sizes.get(split) if count else None
        if want is not None and x.shape[0] != want:
            raise DataError(f"{self.name}/{split}: expected {want} images, the source gave {x.shape[0]}")
        if x.size and (int(x.min()) < 0 or int(x.max()) >= spec.levels):
            raise DataError(
                f"{self.name}/{split}: expected levels in [0, {spec.levels}), got values in "
                f"[{int(x.min())}, {int(x.max())}]"
            )
        if y is not None and (y.shape != (x.shape[0],)):
            raise DataError(f"{self.name}/{split}: expected {x.shape[0]} labels, got shape {tuple(y.shape)}")
        if y is not None and self.num_classes is not None and y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise DataError(
                f"{self.name}/{split}: labels must lie in [0, {self.num_classes}), got [{y.min()}, {y.max()}]"
            )

    def _read(self, split: str) -> Any:
        shipped = self._shipped_path(self.check_split(split))
        if shipped is not None and shipped.is_file():
            return self._checked(
                split,
                shipped,
                read_arrays(
                    shipped,
                    expected_sha256=self.checksums.get(split),
                    hint="the installed package is damaged; reinstall the zoo",
                ),
            )
        path = self.cache_path(split)
        if not path.exists():  # (a folder in its place is reported by read_arrays)
            if self.default_source() is None:
                raise DataError(
                    f"dataset {self.name!r} split {split!r} is not prepared (looked in {path}); "
                    f"run `zoo data prepare {self.name} --source DIR`"
                    + (f". {self.prepare_hint}" if self.prepare_hint else "")
                )
            self.prepare([split])
        hint = f"run `zoo data prepare {self.name}` to prepare it again"
        arrays = read_arrays(path, expected_sha256=self.checksums.get(split), remove_bad=True, hint=hint)
        return self._checked(split, path, arrays, remove_bad=True, hint=hint)

    def _checked(self, split: str, path: Path, arrays: Any, *, remove_bad: bool = False, hint: str = "") -> Any:
        """`arrays` as read from `path`, once they fit the data spec (an unpinned file's checksum only
        says it is intact, not that its images are this dataset's: levels, shape and labels are checked)."""
        try:
            self._check_arrays(split, arrays[0], arrays[1], count=False)
        except DataError as e:
            if remove_bad:
                path.unlink(missing_ok=True)
            gone = " (the file was removed)" if remove_bad else ""
            raise DataError(f"{path}: {e}{gone}{'; ' + hint if hint else ''}") from None
        return arrays


# -- lookup ----------------------------------------------------------------------
def _registered() -> dict[str, Any]:
    from ..plugins import get_registry

    return get_registry().datasets


def list_datasets(pattern: str = "*") -> list[str]:
    """Sorted names of the registered datasets matching an fnmatch `pattern`."""
    if not isinstance(pattern, str):
        raise ArgumentError(f"list_datasets: pattern must be an fnmatch string ('*' lists all), got {pattern!r}")
    return sorted(n for n in _registered() if fnmatch.fnmatchcase(n, pattern))


def get_dataset(name: str | Dataset) -> Dataset:
    """The registered dataset `name` (a `Dataset` passes through); unknown names list close matches."""
    if not isinstance(name, str):
        if hasattr(name, "load") and hasattr(name, "data_spec"):
            return name
        raise TypeError(f"get_dataset: expected a dataset name or a Dataset, got {type(name).__name__}")
    datasets = _registered()
    if name not in datasets:
        names = sorted(datasets)
        raise UnknownNameError(
            f"unknown dataset {name!r}{did_you_mean(name, names)} (registered: {', '.join(names) or 'none'}; "
            "`zoo data list` shows them)"
        )
    return datasets[name]


def default_dataset(data_spec: DataSpec, preferred: Sequence[str] = (), split: str | None = None) -> str:
    """The dataset to use when none is named: the first non-empty name in `preferred` (a recipe's
    dataset, the datasets a model's weights were trained on), else the one registered dataset
    whose images are `data_spec` (of several, the one whose `split` loads without a prepare step,
    e.g. a test split that ships with its plugin); otherwise a ZooError that lists them."""
    for name in preferred:
        if name:
            return name
    datasets = _registered()
    matching = sorted(n for n, d in datasets.items() if getattr(d, "data_spec", None) == data_spec)
    if len(matching) > 1 and split is not None:
        ready = [n for n in matching if split in datasets[n].splits and datasets[n].available(split)]
        matching = ready if len(ready) == 1 else matching
    if len(matching) == 1:
        return matching[0]
    raise ZooError(
        f"which dataset? pass --dataset (dataset= in Python); registered datasets with images "
        f"{data_spec}: {', '.join(matching) or 'none'}"
    )


def load_split(name: str | Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`get_dataset(name).load(split)`: uint8 levels `(N, C, H, W)` and int64 labels or None."""
    return get_dataset(name).load(split)
