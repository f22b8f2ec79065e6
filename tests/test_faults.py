"""Bad input and faults (issue 18, part 2): Hub faults, huge configs, output paths, odd cache files, and
faults under load (concurrent fetches and loads, processes killed mid-write). Every case is a clear zoo
error or a correct result, never a silently wrong answer nor a raw traceback; see tests/test_bad_input.py
for part 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import ArgumentError, WeightsError
from zoo.testing.hubserver import HubServer
from zoo.util import sha256_file

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_faults_test_token"


def tiny(name: str, **kw):
    return zoo.create(name, **{**zoo.info(name).test_config, **kw})


# -- a Hub that misbehaves -----------------------------------------------------------------------------------------
@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A hub server with one published tiny release `zoo-test/tiny`, an empty cache, and no retry sleeps."""
    import time as _time

    import huggingface_hub.constants as hf_constants
    import huggingface_hub.file_download as hf_download
    import huggingface_hub.utils._http as hf_http

    for var, value in {
        "HF_HUB_CACHE": tmp_path / "hf-cache",
        "HF_HOME": tmp_path / "hf-home",
        "ZOO_CARDS_DIR": tmp_path / "cards",
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    no_sleep = types.SimpleNamespace(sleep=lambda s: None, time=_time.time, monotonic=_time.monotonic)
    monkeypatch.setattr(hf_http, "time", no_sleep)  # retries keep happening, without their 1-8 s waits
    monkeypatch.setattr(hf_download, "time", no_sleep)
    (tmp_path / "cards").mkdir()
    with HubServer(token=TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        folder = zoo.save_pretrained(tiny("independent"), tmp_path / "release")
        from zoo.hub import upload

        upload(
            [(p.name, p) for p in sorted(Path(folder).iterdir()) if p.is_file()], "zoo-test/tiny", commit_message="tiny"
        )
        server.release = Path(folder)
        yield server
        server.faults.clear()  # let hanging requests go before the server stops


def test_a_transfer_cut_mid_body_is_a_weights_error_naming_the_repo(hub, cli_runner):
    hub.faults["model.safetensors"] = "drop"
    with pytest.raises(
        WeightsError, match=r"downloading model.safetensors of zoo-test/tiny@\w+ .*failed: RemoteProtocolError"
    ):
        zoo.load("hf-hub:zoo-test/tiny")
    res = cli_runner("fetch", "hf-hub:zoo-test/tiny")
    assert res.exit_code == 1 and "Traceback" not in res.output and "zoo-test/tiny" in res.output
    hub.faults.clear()  # the server mends: the next load downloads the whole file and verifies it
    assert zoo.load("hf-hub:zoo-test/tiny").zoo_weights.sha256 == sha256_file(hub.release / "model.safetensors")


def test_a_server_that_never_answers_times_out(hub, cli_runner, monkeypatch):
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "0.5")
    hub.faults["*"] = "hang"
    t0 = time.monotonic()
    with pytest.raises(
        WeightsError,
        match=r"cannot reach the Hub .* config.json of zoo-test/tiny@main .*"
        r"HF_HUB_DOWNLOAD_TIMEOUT=0.5 s",
    ):
        zoo.load("hf-hub:zoo-test/tiny")
    res = cli_runner("fetch", "hf-hub:zoo-test/tiny")
    assert res.exit_code == 1 and "Traceback" not in res.output and "zoo-test/tiny" in res.output
    assert time.monotonic() - t0 < 60  # bounded (each attempt waits 0.5 s; a hang would block until the server stops)


def test_a_silent_server_falls_back_to_the_cache(hub, monkeypatch):
    first = zoo.load("hf-hub:zoo-test/tiny@main")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "0.5")
    hub.faults["*"] = "hang"
    again = zoo.load("hf-hub:zoo-test/tiny@main")
    assert again.zoo_weights.sha256 == first.zoo_weights.sha256


def test_the_download_timeout_is_read_at_each_call(monkeypatch):
    from huggingface_hub import constants

    from zoo.hub import download_timeout

    monkeypatch.delenv("HF_HUB_DOWNLOAD_TIMEOUT", raising=False)
    assert download_timeout() == 10.0 and constants.HF_HUB_DOWNLOAD_TIMEOUT == 10.0
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")
    assert download_timeout() == 2.5 and constants.HF_HUB_DOWNLOAD_TIMEOUT == 2.5


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_a_bad_download_timeout_is_refused(value, monkeypatch):
    from zoo.hub import download_timeout

    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(ArgumentError, match="HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds"):
        download_timeout()


# -- configs asking for huge models -------------------------------------------------------------------------------
HUGE = {  # widths of 200000 (squared in the parameter count): terabytes of float32
    "pixelcnn": {"hidden": 200_000},
    "gated-pixelcnn": {"hidden": 200_000},
    "pixelrnn-row": {"hidden": 200_000},
    "pixelrnn-diag": {"hidden": 200_000},
    "dcgan": {"nz": 200_000, "ngf": 200_000},
}


@pytest.mark.parametrize("name", list(HUGE))
def test_a_huge_config_is_refused_before_it_is_allocated(name, tmp_path):
    from zoo.release import save_pretrained

    with pytest.raises(
        ArgumentError,
        match=rf"{name} with config .* would have [\d,]+ parameters .*above the limit "
        r"of 1,000,000,000; pass max_params=",
    ):
        zoo.create(name, **HUGE[name])
    folder = save_pretrained(tiny(name), tmp_path / "release")  # a release whose config.json asks for it
    cfg = json.loads((folder / "config.json").read_text())
    cfg["config"].update(HUGE[name])
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArgumentError, match="parameters"):
        zoo.load(f"local-dir:{folder}")


def test_a_huge_config_from_the_hub_is_refused(hub):
    cfg = json.loads(hub.file("zoo-test/tiny", "config.json"))
    cfg["config"]["height"] = cfg["config"]["width"] = 200_000  # 2 x 4e10 logits: 320 GB
    hub.tamper("zoo-test/tiny", "config.json", json.dumps(cfg).encode())
    with pytest.raises((ArgumentError, WeightsError), match="parameters|data spec"):
        zoo.load("hf-hub:zoo-test/tiny")


def test_the_parameter_limit_can_be_raised_and_lowered(monkeypatch):
    n = sum(p.numel() for p in tiny("independent").parameters())
    assert sum(p.numel() for p in tiny("independent", max_params=n).parameters()) == n
    with pytest.raises(ArgumentError, match=f"would have {n:,} parameters.*limit of {n - 1:,}"):
        tiny("independent", max_params=n - 1)
    monkeypatch.setenv("ZOO_MAX_PARAMS", str(n - 1))
    with pytest.raises(ArgumentError, match=f"limit of {n - 1:,}"):
        tiny("independent")
    assert tiny("independent", max_params=n) is not None  # the keyword beats the environment


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"], ids=repr)
def test_a_bad_max_params_is_refused(value):
    with pytest.raises(ArgumentError, match="max_params must be a positive int"):
        tiny("independent", max_params=value)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_a_bad_zoo_max_params_is_refused(value, monkeypatch):
    monkeypatch.setenv("ZOO_MAX_PARAMS", value)
    with pytest.raises(ArgumentError, match="ZOO_MAX_PARAMS must be a positive whole number"):
        tiny("independent")


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_counts_its_parameters_on_the_meta_device(name):
    """The estimate is exact, so the limit guards every registered model (a builder that cannot run on the
    meta device would get no estimate: this keeps plugins honest)."""
    from zoo.factory import import_builder, parameter_count

    spec = zoo.info(name)
    config = {**spec.config, **spec.test_config}
    assert parameter_count(import_builder(spec.builder), config) == sum(p.numel() for p in tiny(name).parameters())


def test_cli_refuses_a_huge_config(cli_runner):
    res = cli_runner("sample", "pixelcnn", "--random-init", "--set", "hidden=200000", "-n", "1")
    assert res.exit_code == 1 and "Traceback" not in res.output and "parameters" in res.output


# -- output paths -----------------------------------------------------------------------------------------------
def _bad_outputs(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("keep me")
    return {"/proc/version": "cannot be written", str(tmp_path / "a-file" / "x.json"): "is not a directory"}


@pytest.mark.parametrize("case", ["/proc/version", "below a file"])
def test_cli_eval_refuses_an_unwritable_out_before_the_work(case, cli_runner, tmp_path):
    path, why = list(_bad_outputs(tmp_path).items())[0 if case == "/proc/version" else 1]
    res = cli_runner("eval", "independent", "--random-init", "--limit", "4", "--out", path)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert f"--out {path!r}" in res.output and why in res.output and "evaluating" not in res.output
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_cli_eval_refuses_an_unwritable_report_dir(cli_runner, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = cli_runner("eval", "independent", "--random-init", "--limit", "4", "--report", str(tmp_path / "a-file" / "r"))
    assert res.exit_code == 1 and "Traceback" not in res.output and "--report" in res.output
    assert "evaluating" not in res.output


@pytest.mark.parametrize(
    "case, why",
    [
        ("/proc/version", "cannot be written"),
        ("below a file", "is not a directory"),
        ("samples.txt", "expected an image file name"),
        ("no extension", "expected an image"),
    ],
)
def test_cli_sample_refuses_an_unwritable_out(case, why, cli_runner, tmp_path):
    (tmp_path / "a-file").write_text("x")
    path = {
        "/proc/version": "/proc/version",
        "below a file": str(tmp_path / "a-file" / "s.png"),
        "samples.txt": str(tmp_path / "samples.txt"),
        "no extension": str(tmp_path / "samples"),
    }[case]
    res = cli_runner("sample", "independent", "--tiny", "--random-init", "-n", "1", "--out", path)
    assert res.exit_code == 1 and "Traceback" not in res.output and why in res.output, res.output
    assert not Path(path).is_file() or case == "/proc/version"


def test_cli_train_refuses_an_out_that_is_a_file(cli_runner, tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = cli_runner("train", "independent", "--tiny", "--quiet", "--out", str(tmp_path / "a-file"))
    assert res.exit_code != 0 and "Traceback" not in res.output and "a-file" in res.output


def test_check_writable_changes_nothing(tmp_path):
    from zoo.util import check_writable

    (tmp_path / "old.json").write_text("old")
    before = (tmp_path / "old.json").stat().st_mtime_ns
    assert check_writable(tmp_path / "old.json", "--out") == tmp_path / "old.json"
    assert check_writable(tmp_path / "new" / "deeper" / "x.json", "--out") == tmp_path / "new" / "deeper" / "x.json"
    assert (tmp_path / "old.json").read_text() == "old" and (tmp_path / "old.json").stat().st_mtime_ns == before
    assert not (tmp_path / "new").exists()
    with pytest.raises(ArgumentError, match="is a directory"):
        check_writable(tmp_path, "--out")


def test_a_decompression_bomb_to_complete_is_refused(cli_runner, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)  # 20000x20000 greyscale, 1 bit per pixel
    (tmp_path / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 2501 * 64))
        + chunk(b"IEND", b"")
    )
    res = cli_runner(
        "sample",
        "independent",
        "--tiny",
        "--random-init",
        "-n",
        "1",
        "--complete",
        str(tmp_path / "bomb.png"),
        "--out",
        str(tmp_path / "out.png"),
    )
    assert res.exit_code == 1 and "Traceback" not in res.output and "bomb.png" in res.output
    assert not (tmp_path / "out.png").exists()


# -- odd files in the data cache ------------------------------------------------------------------------------------
@pytest.fixture
def small_dataset(tmp_path, monkeypatch):
    from zoo.data import CachedDataset
    from zoo.protocols import DataSpec

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))

    class Small(CachedDataset):
        name = "small"
        data_spec = DataSpec(1, 2, 2, 2)
        splits = ("train",)

    return Small()


def test_a_npy_file_where_the_cache_expects_npz_is_removed(small_dataset):
    from zoo.data import DataError

    path = small_dataset.cache_path("train")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 1, 2, 2), np.uint8))
    with pytest.raises(DataError, match=r"a single numpy array \(.npy\) of shape \(3, 1, 2, 2\).*was removed"):
        small_dataset.load("train")
    assert not path.exists()


def test_a_cache_path_that_is_a_directory(small_dataset):
    from zoo.data import DataError
    from zoo.data.cache import read_arrays, save_arrays

    path = small_dataset.cache_path("train")
    path.mkdir(parents=True)
    (path / "something").write_text("x")
    with pytest.raises(DataError, match=r"train.npz is a directory, where a data file \(.npz\) belongs"):
        small_dataset.load("train")
    with pytest.raises(DataError, match="is a directory"):
        save_arrays(path, np.zeros((1, 1, 2, 2), np.uint8), levels=2)
    with pytest.raises(DataError, match="is a directory"):
        read_arrays(path, remove_bad=True)
    assert (path / "something").is_file()  # a folder is never removed


# -- zoo.evaluate on a model object ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "device", ["bogus", "cuda:99", 3, ""] + ([] if torch.cuda.is_available() else ["cuda"]), ids=repr
)
def test_evaluate_checks_the_device_of_a_model_object(device):
    with pytest.raises(ArgumentError, match="device"):
        zoo.evaluate(tiny("independent"), device=device, limit=4)


# -- faults under load ----------------------------------------------------------------------------------------------
def _child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def test_two_processes_fetch_into_one_empty_cache_at_once(hub, tmp_path):
    """Both succeed and one verified copy remains (huggingface_hub locks the blob; the zoo verifies it)."""
    script = textwrap.dedent("""
        import os, sys, time
        from pathlib import Path
        import zoo.hub
        Path(sys.argv[1]).touch()
        while not all(Path(p).exists() for p in sys.argv[2:]):  # start together
            time.sleep(0.01)
        print(zoo.hub.fetch("hf-hub:zoo-test/tiny").sha256)
    """)
    ready = [str(tmp_path / f"ready-{i}") for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, ready[i], *ready],
            env=_child_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    want = sha256_file(hub.release / "model.safetensors")
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].split()[-1] for o in outs] == [want, want]
    blobs = [b for b in (tmp_path / "hf-cache").rglob("blobs/*") if b.is_file() and sha256_file(b) == want]
    assert len(blobs) == 1
    assert [f.status for f in zoo.hub.verify_cache()] and all(f.ok for f in zoo.hub.verify_cache())


def test_ten_threads_load_one_name_at_once(hub):
    results, errors = [], []

    def load():
        try:
            results.append(zoo.load("hf-hub:zoo-test/tiny"))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 10
    first = results[0].state_dict()
    for m in results[1:]:
        assert m.state_dict().keys() == first.keys()
        assert all(torch.equal(m.state_dict()[k], first[k]) for k in first)


# A child process whose first write to a file named like argv[1] writes half its bytes, says so, and hangs
# until it is killed (SIGKILL): the moment a torn file would be left behind by a writer that is not atomic.
TORN_CHILD = textwrap.dedent("""
    import builtins, io, os, sys, time
    tear = sys.argv[1]
    real_open = io.open

    class Torn:
        def __init__(self, f, path):
            self.f, self.path = f, path
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            os.fsync(self.f.fileno())
            print("TORN", self.path, flush=True)
            time.sleep(600)
        def __getattr__(self, name):
            return getattr(self.f, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def torn_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if any(c in mode for c in "wax") and isinstance(file, (str, os.PathLike)) and tear in os.path.basename(file):
            return Torn(f, os.fspath(file))
        return f

    builtins.open = io.open = torn_open
    try:  # safetensors writes from Rust: route it through open() to be torn too
        import safetensors.torch as st
        def save_file(tensors, filename, metadata=None):
            with open(filename, "wb") as f:
                f.write(st.save(tensors, metadata=metadata))
        st.save_file = save_file
    except ImportError:
        pass
    exec(sys.argv[2])
    print("FINISHED", flush=True)
""")


def _kill_mid_write(tear: str, code: str, **env: str) -> str:
    """Run `code` in a child, SIGKILL it when it has half-written a file named like `tear`; the torn path."""
    proc = subprocess.Popen(
        [sys.executable, "-c", TORN_CHILD, tear, textwrap.dedent(code)],
        env=_child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("TORN"), (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    return line.split(" ", 1)[1].strip()


@pytest.mark.slow
def test_a_process_killed_writing_a_checkpoint_leaves_the_old_one(tmp_path):
    from zoo.training.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"w": torch.zeros(1000)}, {"epoch": 1})
    old = path.read_bytes()
    torn = _kill_mid_write(
        "checkpoint.safetensors",
        f"""
        import torch
        from zoo.training.checkpoint import save_checkpoint
        save_checkpoint({str(path)!r}, {{"w": torch.ones(1000)}}, {{"epoch": 2}})
    """,
    )
    assert Path(torn) != path and path.read_bytes() == old
    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == 1 and torch.equal(tensors["w"], torch.zeros(1000))


def _random_independent(seed: int):
    torch.manual_seed(seed)
    model = tiny("independent")
    torch.nn.init.normal_(model.table)
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "tear, outcome", [("model.safetensors", "old"), ("config.json", "refused"), ("samples.png", "new")]
)
def test_a_process_killed_writing_a_release_folder_leaves_no_torn_file(tear, outcome, tmp_path):
    """save_pretrained writes model.safetensors, config.json (naming the weights' sha256), then samples.png."""
    from zoo.release import save_pretrained

    folder = save_pretrained(_random_independent(0), tmp_path / "release", samples=4)
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    torn = _kill_mid_write(
        tear,
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_faults import _random_independent
        from zoo.release import save_pretrained
        save_pretrained(_random_independent(1), {str(folder)!r}, samples=4)
    """,
    )
    assert Path(torn).parent == folder and Path(torn).name != tear  # the torn bytes went to a temporary file
    assert (folder / tear).read_bytes() == old[tear]  # the file being written is the old one, whole
    if outcome == "refused":  # new weights, old config.json: the sha256 check refuses them, nothing torn is used
        with pytest.raises(WeightsError, match="sha256 mismatch"):
            zoo.load(f"local-dir:{folder}")
    else:
        want = _random_independent(0 if outcome == "old" else 1)
        assert torch.equal(zoo.load(f"local-dir:{folder}").table, want.table)


@pytest.mark.slow
def test_a_process_killed_writing_a_data_cache_file_leaves_none(small_dataset, tmp_path):
    from zoo.data import DataError

    path = small_dataset.cache_path("train")
    torn = _kill_mid_write(
        "train.npz",
        f"""
        import numpy as np
        from zoo.data.cache import save_arrays
        save_arrays({str(path)!r}, np.ones((4, 1, 2, 2), np.uint8), levels=2)
    """,
    )
    assert Path(torn).name.startswith(".train.npz.") and not path.exists()
    with pytest.raises(DataError, match="not prepared"):
        small_dataset.load("train")


@pytest.mark.slow
def test_a_process_killed_downloading_a_blob_leaves_no_blob_that_is_used(hub, tmp_path):
    torn = _kill_mid_write(
        ".incomplete",
        """
        import zoo.hub
        zoo.hub.fetch("hf-hub:zoo-test/tiny")
    """,
    )
    assert torn.endswith(".incomplete")
    want = sha256_file(hub.release / "model.safetensors")
    blobs = [b for b in (tmp_path / "hf-cache").rglob("blobs/*") if b.is_file() and not b.name.endswith(".incomplete")]
    assert all(sha256_file(b) != sha256_file(torn) for b in blobs)  # the torn bytes are no blob
    assert zoo.load("hf-hub:zoo-test/tiny").zoo_weights.sha256 == want  # resumed or downloaded afresh, verified
