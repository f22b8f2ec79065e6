"""zoo.native: C kernels built on first use, cached, and None (the PyTorch path) whenever they cannot be."""

from __future__ import annotations

import ctypes

import pytest

from zoo import native

ADD = "double add(double a, double b) { return a + b; }\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_NATIVE", raising=False)
    native.load.cache_clear()
    yield tmp_path / "cache" / "native"
    native.load.cache_clear()


needs_compiler = pytest.mark.skipif(native.compiler() is None, reason="no C compiler on this machine")


@needs_compiler
def test_builds_once_and_loads_from_the_cache(cache, tmp_path):
    source = tmp_path / "adder.c"
    source.write_text(ADD)
    lib = native.load(source)
    assert lib is not None
    lib.add.restype, lib.add.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_double]
    assert lib.add(1.5, 2.25) == 3.75
    (built,) = cache.glob("adder-*.so")
    stamp = built.stat().st_mtime_ns
    native.load.cache_clear()
    assert native.load(source) is not None and built.stat().st_mtime_ns == stamp  # not rebuilt
    source.write_text(ADD + "int other(void) { return 1; }\n")  # a changed source is a new build
    native.load.cache_clear()
    assert native.load(source) is not None and len(list(cache.glob("adder-*.so"))) == 2


@needs_compiler
def test_a_source_that_does_not_compile_warns_and_gives_none(cache, tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int broken( {\n")
    with pytest.warns(UserWarning, match="could not build or load broken.c"):
        assert native.load(source) is None
    assert not list(cache.glob("*"))  # nothing half-written left behind


def test_no_compiler_or_switched_off_gives_none(cache, tmp_path, monkeypatch):
    source = tmp_path / "adder.c"
    source.write_text(ADD)
    monkeypatch.setenv("ZOO_NATIVE", "0")
    assert native.load(source) is None and not native.enabled()
    monkeypatch.delenv("ZOO_NATIVE")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    native.load.cache_clear()
    with pytest.warns(UserWarning, match="could not build or load adder.c"):
        assert native.load(source) is None


@needs_compiler
def test_an_unwritable_cache_or_a_broken_library_warns_and_gives_none(cache, tmp_path, monkeypatch):
    source = tmp_path / "adder.c"
    source.write_text(ADD)
    monkeypatch.setenv("ZOO_CACHE", str(source))  # a file where the cache's folder should be
    with pytest.warns(UserWarning, match="could not build or load adder.c"):
        assert native.load(source) is None
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    native.load.cache_clear()
    assert native.load(source) is not None
    source.write_text(ADD + "/* another build */\n")

    def truncated(cc, source, library):  # e.g. a full disk: a file that is no shared library
        library.write_bytes(b"not a shared library")
        return ""

    monkeypatch.setattr(native, "_build", truncated)
    native.load.cache_clear()
    with pytest.warns(UserWarning, match="could not build or load adder.c"):
        assert native.load(source) is None
