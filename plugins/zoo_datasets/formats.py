"""Readers for the raw formats the datasets come in. No pickle anywhere.

- IDX (MNIST, Fashion-MNIST; LeCun et al.): big-endian header `0x00 0x00
  <type> <ndim>`, then `ndim` uint32 sizes, then the data; type 0x08 = uint8.
  Files may be gzip-compressed (`.gz`).
- CIFAR-10 binary (`cifar-10-binary.tar.gz`; Krizhevsky 2009): folder
  `cifar-10-batches-bin/` with `data_batch_1.bin` .. `data_batch_5.bin` and
  `test_batch.bin`; each record is 1 label byte then 3072 pixel bytes: the
  1024 red values, then green, then blue, each 32x32 in raster order.
- `.amat` (Larochelle & Murray 2011's binarized MNIST,
  `binarized_mnist_{train,valid,test}.amat`): text, one image per line, 784
  values 0 or 1 separated by spaces.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path
from typing import Any

from zoo.data import DataError

# -- IDX ------------------------------------------------------------------------


def read_idx(path: Path, *, expect_ndim: int) -> Any:
    """The uint8 array stored in an IDX file (gzipped or not), checked against its header."""
    import numpy as np

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read IDX file ({type(e).__name__}: {e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{path}: not an IDX file (expected magic 00 00 <type> <ndim>, got {data[:4].hex() or 'empty'})"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise DataError(f"{path}: IDX data type 0x{dtype_code:02x}, expected 0x08 (unsigned byte)")
    if ndim != expect_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape))
    if len(data) - header != count:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({count} bytes of data), the file holds {len(data) - header}: "
            "truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def find_file(folder: Path, stem: str) -> Path:
    """`folder/stem` or `folder/stem.gz`, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"expected {stem} or {stem}.gz in {folder}; not found")


def read_idx_pair(folder: Path, prefix: str, *, height: int = 28, width: int = 28) -> tuple[Any, Any]:
    """Images `(N, 1, H, W)` and int64 labels `(N,)` from `<prefix>-images-idx3-ubyte[.gz]` and labels."""
    import numpy as np

    images = read_idx(find_file(folder, f"{prefix}-images-idx3-ubyte"), expect_ndim=3)
    labels = read_idx(find_file(folder, f"{prefix}-labels-idx1-ubyte"), expect_ndim=1)
    if images.shape[1:] != (height, width):
        raise DataError(f"{folder}/{prefix}: images are {images.shape[1:]}, expected ({height}, {width})")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{folder}/{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images[:, None], labels.astype(np.int64)


# -- CIFAR-10 binary -----------------------------------------------------------------

CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_BATCHES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
CIFAR_RECORD = 1 + 3 * 32 * 32


def parse_cifar_batch(data: bytes, name: str) -> tuple[Any, Any]:
    """Images uint8 `(N, 3, 32, 32)` and labels int64 `(N,)` from one binary batch file's bytes."""
    import numpy as np

    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{name}: {len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte records "
            "(1 label byte + 3072 pixel bytes): truncated or corrupt"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{name}: label byte {labels.max()} outside 0..9: not a CIFAR-10 batch")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar_tar(path: Path, splits: list[str], bar: Any = None) -> dict[str, tuple[Any, Any]]:
    """`{split: (x, y)}` for `splits` ⊆ {train, test} from `cifar-10-binary.tar.gz`."""
    import numpy as np

    out: dict[str, tuple[Any, Any]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            for split in splits:
                xs, ys = [], []
                for batch in CIFAR_BATCHES[split]:
                    name = f"{CIFAR_FOLDER}/{batch}"
                    if name not in members:
                        raise DataError(f"{path}: missing {name}; expected the cifar-10-binary.tar.gz archive")
                    f = tar.extractfile(members[name])
                    assert f is not None
                    x, y = parse_cifar_batch(f.read(), f"{path}:{name}")
                    xs.append(x)
                    ys.append(y)
                    if bar is not None:
                        bar.update(len(x))
                out[split] = (np.concatenate(xs), np.concatenate(ys))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read the archive ({type(e).__name__}: {e}): truncated or corrupt") from None
    return out


# -- .amat ------------------------------------------------------------------------------


def read_amat(path: Path, *, width: int = 784, bar: Any = None) -> Any:
    """uint8 `(N, 1, 28, 28)` of 0/1 from a binarized-MNIST `.amat` text file."""
    import numpy as np

    rows = []
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(io.TextIOWrapper(f, encoding="ascii"), 1):
                fields = line.split()
                if not fields:
                    continue
                joined = "".join(fields)
                if len(fields) != width or len(joined) != width or joined.strip("01"):
                    raise DataError(
                        f"{path}:{lineno}: expected {width} values 0 or 1 separated by spaces, "
                        f"got {len(fields)} values starting {' '.join(fields[:4])!r}: truncated or corrupt"
                    )
                rows.append(np.frombuffer(joined.encode("ascii"), dtype=np.uint8) - ord("0"))
                if bar is not None:
                    bar.update(1)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text .amat file ({e})") from None
    if not rows:
        raise DataError(f"{path}: empty .amat file")
    return np.stack(rows).reshape(-1, 1, 28, 28)
