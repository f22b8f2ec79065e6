"""The data cache: where prepared arrays live, how they are written and checked.

A prepared split is one `.npz` file (numpy's zip of `.npy` arrays, read with
`allow_pickle=False`) holding:

- `x`: the images as uint8 levels, C-order `(N, C, H, W)`; for two-level data
  packed eight sub-pixels to a byte with `numpy.packbits` (big-endian bit order)
- `shape`: int64 `(4,)`, the shape of the unpacked images
- `packed`: bool scalar, whether `x` is packed bits
- `y`: int64 labels `(N,)` (absent for unlabelled data)
- `sha256`: the checksum of the arrays (see `array_checksum`)
- `format`: the format version, `1`

Files are written to a temporary file in the target folder and renamed into
place, so a cache never holds a half-written file; a file that fails to read
or whose checksum does not match is removed and reported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ZooError
from ..util import atomic_write, cache_home, file_digest  # the first and last re-exported in zoo.data

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "DataError",
    "cache_dir",
    "array_checksum",
    "atomic_write",
    "save_arrays",
    "read_arrays",
    "file_digest",
    "progress_bar",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1


class DataError(ZooError, ValueError):
    """A data file is missing, corrupt, truncated or does not match its checksum."""


def cache_dir() -> Path:
    """The folder for prepared datasets (created on first write, not here).

    `ZOO_DATA_DIR` if set; else `$ZOO_CACHE/data` if `ZOO_CACHE` is set; else
    `$XDG_CACHE_HOME/zoo/data` (default `~/.cache/zoo/data`).
    """
    if os.environ.get("ZOO_DATA_DIR"):
        return Path(os.environ["ZOO_DATA_DIR"]).expanduser()
    return cache_home("data")


def array_checksum(x: Any, y: Any = None) -> str:
    """The sha256 of a prepared split, as a hex string.

    Defined as sha256 over the images as uint8 bytes in C order `(N, C, H, W)`,
    followed by the labels as little-endian int64 bytes (nothing when there
    are no labels). Accepts numpy arrays or torch tensors.
    """
    import hashlib

    import numpy as np

    def as_numpy(a: Any) -> np.ndarray:
        return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)

    xa = as_numpy(x)
    if xa.ndim != 4:
        raise ValueError(f"array_checksum: expected images of shape (N, C, H, W), got shape {xa.shape}")
    if xa.size and (xa.min() < 0 or xa.max() > 255):
        raise ValueError(f"array_checksum: expected levels in [0, 255], got values in [{xa.min()}, {xa.max()}]")
    h = hashlib.sha256(np.ascontiguousarray(xa, dtype=np.uint8).tobytes())
    if y is not None:
        ya = as_numpy(y)
        if ya.shape != (xa.shape[0],):
            raise ValueError(f"array_checksum: expected labels of shape ({xa.shape[0]},), got {ya.shape}")
        h.update(np.ascontiguousarray(ya, dtype="<i8").tobytes())
    return h.hexdigest()


def save_arrays(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    levels: int = 256,
    expected_sha256: str | None = None,
) -> str:
    """Write a prepared split atomically and return its checksum.

    `x` is uint8-compatible `(N, C, H, W)` levels, `y` labels `(N,)` or None.
    With `levels == 2` the images are stored as packed bits. With
    `expected_sha256`, a mismatch raises `DataError` and nothing is written.
    """
    import numpy as np

    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"save_arrays: expected images (N, C, H, W), got shape {x.shape}")
    if x.size and (int(x.min()) < 0 or int(x.max()) >= levels):
        raise DataError(f"save_arrays: expected levels in [0, {levels}), got values in [{x.min()}, {x.max()}]")
    x = x.astype(np.uint8, copy=False)
    digest = array_checksum(x, y)
    if expected_sha256 is not None and digest != expected_sha256:
        raise DataError(
            f"prepared arrays for {Path(path).name} have sha256 {digest}, expected {expected_sha256}; "
            "the source data differ from the pinned ones, nothing was written"
        )
    packed = levels == 2
    arrays: dict[str, Any] = {
        "x": np.packbits(x.reshape(-1)) if packed else x,
        "shape": np.asarray(x.shape, dtype=np.int64),
        "packed": np.asarray(packed),
        "sha256": np.asarray(digest),
        "format": np.asarray(FORMAT_VERSION, dtype=np.int64),
    }
    if y is not None:
        arrays["y"] = np.ascontiguousarray(y, dtype=np.int64)
    if Path(path).is_dir():
        raise DataError(f"{path} is a directory, where the data file (.npz) belongs; move it away and prepare again")
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return digest


def read_arrays(
    path: str | os.PathLike, *, expected_sha256: str | None = None, remove_bad: bool = False, hint: str = ""
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Read a prepared split: `(x uint8 (N, C, H, W), y int64 (N,) or None, sha256)`.

    The checksum is recomputed and compared with the one stored in the file
    and with `expected_sha256` if given. A file that cannot be read or does
    not match raises `DataError` (with `hint` appended); with `remove_bad` the
    bad file is deleted first so that the cache holds no bad file.
    """
    import zipfile

    import numpy as np

    path = Path(path)

    def bad(reason: str) -> DataError:
        if remove_bad:
            path.unlink(missing_ok=True)
        gone = " (the file was removed)" if remove_bad else ""
        return DataError(f"{path}: {reason}{gone}{'; ' + hint if hint else ''}")

    if path.is_dir():  # never removed: a folder may hold anything
        raise DataError(
            f"{path} is a directory, where a data file (.npz) belongs; move it away{'; then ' + hint if hint else ''}"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array under the .npz name
            raise bad(f"a single numpy array (.npy) of shape {loaded.shape}, not a zoo data file (.npz archive)")
        with loaded as z:
            names = set(z.files)
            missing = {"x", "shape", "packed", "sha256", "format"} - names
            if missing:
                raise bad(f"not a zoo data file, missing arrays {sorted(missing)}")
            if int(z["format"]) != FORMAT_VERSION:
                raise bad(f"data file format {int(z['format'])}, expected {FORMAT_VERSION}")
            shape = tuple(int(s) for s in z["shape"])
            stored = str(z["sha256"])
            x = z["x"]
            if bool(z["packed"]):
                count = int(np.prod(shape))
                if x.size * 8 < count:
                    raise bad(f"packed images hold {x.size * 8} bits, expected {count}")
                x = np.unpackbits(x, count=count)
            x = x.reshape(shape)
            y = z["y"] if "y" in names else None
    except DataError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise bad(f"corrupt or truncated data file ({type(e).__name__}: {e})") from None
    digest = array_checksum(x, y)
    if digest != stored:
        raise bad(f"arrays have sha256 {digest} but the file records {stored}: corrupt")
    if expected_sha256 is not None and digest != expected_sha256:
        raise bad(f"arrays have sha256 {digest}, expected the pinned {expected_sha256}")
    return x, y, digest


def progress_bar(total: int | None, desc: str, enabled: bool, unit: str = "img") -> Any:
    """A tqdm bar (to stderr), or a no-op stand-in when `enabled` is false."""
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False)
    return _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass
