"""Small C kernels, compiled on first use with the machine's C compiler and loaded with ctypes.

A model module may ship a C source beside it for a loop that PyTorch runs as many small operations (the
Diagonal BiLSTM's cells, one diagonal at a time). `load(source)` compiles it once into a shared library
cached under `native_dir()`, keyed by the source, the compiler, its flags and the CPU, and returns the
loaded library, or None when there is no compiler, the build or the load fails (a warning says why) or `ZOO_NATIVE=0`.
Every caller keeps its PyTorch path for None, and the tests hold the two paths to the same numbers: a kernel
changes how fast a loop runs, never what it computes, and nothing requires a compiler.

    lib = zoo.native.load(Path(__file__).with_name("diagonal_cells.c"))
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from .util import cache_home

__all__ = ["load", "native_dir", "enabled", "compiler"]

# gnu99: C99 with GCC's and Clang's vector extensions, and a * b + c contracted into fused multiply-adds
FLAGS = ["-O3", "-std=gnu99", "-shared", "-fPIC", "-pthread"]
# the build tunes for this machine's CPU where the compiler can (the CPU's flags are in the cache key)
TUNE = ["-march=native"]


def enabled() -> bool:
    """False when the environment says `ZOO_NATIVE=0` (every caller then runs its PyTorch path)."""
    return os.environ.get("ZOO_NATIVE", "1") != "0"


def native_dir() -> Path:
    """The cache of built kernels: `$ZOO_CACHE/native`, else `$XDG_CACHE_HOME/zoo/native` (`~/.cache/zoo/native`)."""
    return cache_home("native")


def compiler() -> str | None:
    """The C compiler: `$CC`, else the first of cc, gcc, clang on PATH; None without one."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((path for name in ("cc", "gcc", "clang") if (path := shutil.which(name))), None)


def _cpu() -> str:
    """What the build's `-march=native` depends on: the CPU's model and feature flags where Linux says."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags", "Features"))}))


@functools.cache
def load(source: Path) -> ctypes.CDLL | None:
    """The shared library built from the C file `source`, compiled on the first call on this machine."""
    if not enabled() or sys.platform == "win32":
        return None
    cc = compiler()
    if cc is None:
        return None
    code = source.read_bytes()
    key = hashlib.sha256(b"\0".join([code, cc.encode(), " ".join(FLAGS + TUNE).encode(), _cpu().encode()]))
    library = native_dir() / f"{source.stem}-{key.hexdigest()[:16]}.so"
    try:
        error = "" if library.is_file() else _build(cc, source, library)
        if not error:
            return ctypes.CDLL(str(library))
    except OSError as exc:  # an unwritable cache, a library that does not load
        error = str(exc)
    message = f"zoo: could not build or load {source.name} ({error}); running its PyTorch path instead"
    warnings.warn(message, stacklevel=2)
    return None


def _build(cc: str, source: Path, library: Path) -> str:
    """Compile `source` into `library` (written whole or not at all); the compiler's complaint on failure."""
    library.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{library.name}.", suffix=".tmp", dir=library.parent)
    os.close(fd)
    try:
        error = ""
        for flags in (FLAGS + TUNE, FLAGS):  # a compiler without -march=native builds for the generic CPU
            try:
                done = subprocess.run(
                    [cc, *flags, "-o", tmp, str(source), "-lm"], capture_output=True, text=True, timeout=300
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return str(exc)
            if done.returncode == 0:
                os.replace(tmp, library)
                return ""
            error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return error
    finally:
        Path(tmp).unlink(missing_ok=True)
