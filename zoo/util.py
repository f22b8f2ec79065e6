"""Small helpers the core needs in several places: file hashes, atomic writes, name suggestions, int checks,
and the module `__getattr__` that loads public names lazily and keeps moved names working for a release.

Importable without torch or numpy; nothing here knows about models, weights or the Hub.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

__all__ = [
    "file_digest",
    "sha256_file",
    "atomic_write",
    "write_atomic",
    "check_writable",
    "did_you_mean",
    "is_int",
    "is_positive_int",
    "lazy_getattr",
    "cache_home",
    "openmp_spin_setting",
    "short_openmp_spin",
    "keep_freed_memory",
]


# mallopt parameters (glibc's <malloc.h>)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MiB for reuse; True when it took the settings.

    By default glibc returns a freed block above its mmap threshold (128 KiB at first) to the kernel, so
    the next tensor of that size is mapped and zeroed again, page by page. Training allocates the same
    large activations at every step (a PixelCNN step at batch 64: maps of 12.8 MB), and a profile showed
    a ReLU over one of them taking 19 ms instead of 9 (docs/performance.md). `zoo train`, `zoo eval` and
    `zoo.train` call this; it changes only when memory goes back to the kernel (the process keeps up to
    1 GiB of freed memory). `ZOO_KEEP_FREED_MEMORY=0` turns it off; on another C library it does nothing.
    """
    if os.environ.get("ZOO_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: glibc's, where it is the C library
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


OPENMP_SPIN = "20000"  # GOMP_SPINCOUNT: how long an idle OpenMP thread spins before it sleeps


def openmp_spin_setting(environ: Mapping[str, str]) -> dict[str, str]:
    """The variable that gives idle OpenMP threads the short spin of `short_openmp_spin`, as a dict to merge
    into `environ` (a subprocess's environment too); empty when `environ` already has a spin policy of its own
    (`GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`)."""
    if any(k in environ for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")):
        return {}
    return {"GOMP_SPINCOUNT": OPENMP_SPIN}


def short_openmp_spin() -> bool:
    """Have torch's idle OpenMP threads spin about 0.5 ms (`GOMP_SPINCOUNT=20000`) instead of libgomp's
    default of several, before they sleep; True when it set it. Call before torch is imported (libgomp reads
    its environment once, when it loads); `zoo train` and `zoo eval` do.

    A spinning thread holds its core. The Diagonal BiLSTM's C scan (plugins/zoo_pixelrnn/diagonal_cells.c)
    runs one direction on a thread of its own right after PyTorch's operations, and with the default spin
    that thread shared its core with a spinning OpenMP thread: training 175 images/s on 2 threads, 208
    with this setting; the PyTorch-only models trained as fast either way (docs/performance.md). A
    `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` already in the environment is left as it is.
    """
    setting = openmp_spin_setting(os.environ)
    if "torch" in sys.modules or not setting:
        return False
    os.environ.update(setting)
    return True


def cache_home(kind: str) -> Path:
    """The zoo's cache folder for one kind of file (`data`, `native`, ...): `$ZOO_CACHE/KIND` if `ZOO_CACHE` is
    set, else `$XDG_CACHE_HOME/zoo/KIND` (default `~/.cache/zoo/KIND`). Not created here."""
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"]).expanduser() / kind
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zoo" / kind


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, read in chunks (`algorithm` is any `hashlib` name, e.g. md5)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    return file_digest(path, "sha256")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class atomic_write:
    """Context manager: a temporary path next to `path`, renamed onto `path` on success.

        with atomic_write(target) as tmp:
            write(tmp)

    On an exception the temporary file is removed and `path` is untouched, so a reader
    never sees a half-written file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        import tempfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        try:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (a str as UTF-8) to `path` through `atomic_write`: readers, and a process killed half-way,
    see the old file or the new one, never a torn one."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def check_writable(path: str | os.PathLike, what: str, *, directory: bool = False) -> Path:
    """`path` as a Path, if it can be written: an existing file (or, with `directory`, folder) this process may
    write, or a new one whose nearest existing parent is a writable folder. Otherwise `ArgumentError` naming
    `what` (e.g. "--out"). Called before long work, so that a bad output path fails at once, not after the
    work; nothing is created and an existing file is left as it is."""
    from .errors import ArgumentError

    p = Path(path).expanduser()

    def bad(why: str) -> ArgumentError:
        return ArgumentError(f"{what} {str(path)!r} {why}")

    if p.exists():
        if directory:
            if not p.is_dir():
                raise bad("is not a directory")
            if not os.access(p, os.W_OK | os.X_OK):
                raise bad("is a directory this user cannot write to")
            return p
        if p.is_dir():
            raise bad("is a directory; expected a file name")
        try:
            with open(p, "ab"):  # appends nothing: the file is unchanged
                pass
        except OSError as e:
            raise bad(f"cannot be written ({e.strerror or e})") from None
        return p
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise bad(f"cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise bad(f"cannot be created: {parent} is not writable")
    return p


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`"; did you mean a, b?"` naming up to four close matches of `word` (or names containing it), else ""."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=4, cutoff=0.5)
    if not close:
        close = [c for c in candidates if word.lower() in c.lower()][:4]
    return f"; did you mean {', '.join(close)}?" if close else ""


def is_int(value: Any) -> TypeIs[int]:
    """True for an int that is not a bool (`True` is an int to Python, never a count to the zoo)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_positive_int(value: Any) -> TypeGuard[int]:
    return is_int(value) and value > 0


def lazy_getattr(
    package: str, exports: Mapping[str, str], moved: Mapping[str, str] | None = None
) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`.

    - `exports` (name -> submodule): the name is imported from `package.submodule` on first use and kept,
      so that importing the package stays cheap (`import zoo` imports no torch).
    - `moved` (name -> new home, "module" or "module:attr"): an old name that still works for one release,
      with a DeprecationWarning naming the new home.
    """
    moved = moved or {}

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        if name in moved:
            module, _, attr = moved[name].partition(":")
            where = f"{module}.{attr}" if attr else module
            warnings.warn(
                f"{package}.{name} moved to {where}; the old path goes away in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            target = importlib.import_module(module)
            return getattr(target, attr) if attr else target
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
