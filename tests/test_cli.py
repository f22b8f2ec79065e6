"""The command line, through click's CliRunner and once as a real process."""

import json
import subprocess
import sys

import pytest
from PIL import Image


def test_list_and_json(cli_runner):
    r = cli_runner("list")
    assert r.exit_code == 0 and "independent" in r.output
    rows = json.loads(cli_runner("list", "--json").output)
    row = next(x for x in rows if x["name"] == "independent")
    assert row["capabilities"] == ["fast_sampler", "likelihood", "sampler"] and row["plugin"] == "independent"
    assert json.loads(cli_runner("list", "nope*", "--json").output) == []
    r = cli_runner("list", "independant")
    assert r.exit_code == 1 and "no model matches 'independant'; did you mean independent?" in r.output


def test_info(cli_runner):
    r = cli_runner("info", "independent")
    assert r.exit_code == 0 and "1x28x28, 2 levels" in r.output and "none released yet" in r.output
    d = json.loads(cli_runner("info", "independent", "--json").output)
    assert d["data_spec"] == {"channels": 1, "height": 28, "width": 28, "levels": 2}


def test_unknown_name_is_one_clear_line(cli_runner):
    r = cli_runner("info", "independant")
    assert r.exit_code == 1
    assert "Error: unknown model 'independant'; did you mean independent?" in r.output
    assert "Traceback" not in r.output


def test_plugins_json(cli_runner):
    rows = json.loads(cli_runner("plugins", "--json").output)
    ex = next(p for p in rows if p["name"] == "independent")
    assert ex["status"] == "ok" and ex["registered"]["models"] == ["independent"]
    assert "zoo-independent" in ex["source"]


def test_check(cli_runner):
    r = cli_runner("check", "independent", "--tiny")
    assert r.exit_code == 0 and "PASSED" in r.output
    d = json.loads(cli_runner("check", "independent", "--set", "height=3", "--set", "width=3", "--json").output)
    assert d["passed"] and d["data_spec"]["height"] == 3


def test_sample_writes_a_png_grid(cli_runner, tmp_path):
    out = tmp_path / "grid.png"
    r = cli_runner("sample", "independent", "-n", "4", "--tiny", "--out", str(out), "--scale", "1")
    assert r.exit_code == 0, r.output
    img = Image.open(out)
    assert img.size == (2 + 2 * 10, 2 + 2 * 10)  # 2x2 grid of 8x8 images with 2-pixel borders


def test_sample_completion_keeps_the_top_half(cli_runner, tmp_path):
    import numpy as np

    src = tmp_path / "digit.png"
    top = np.zeros((8, 8), dtype=np.uint8)
    top[:4] = 255
    Image.fromarray(top).save(src)
    out = tmp_path / "done.png"
    r = cli_runner(
        "sample", "independent", "--tiny", "-n", "1", "--complete", str(src), "--out", str(out), "--scale", "1"
    )
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(out))[2:10, 2:10]
    assert (got[:4] == 255).all()
    bad = tmp_path / "big.png"
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(bad)
    r = cli_runner("sample", "independent", "--tiny", "--complete", str(bad), "--out", str(out))
    assert r.exit_code == 1 and "9x9; the model expects 8x8" in r.output


def test_bad_override_syntax(cli_runner):
    r = cli_runner("check", "independent", "--set", "height")
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


@pytest.mark.parametrize("args", [["-m", "zoo", "list"], ["-m", "zoo", "--version"]])
def test_python_dash_m(args):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_zoo_list_imports_neither_torch_nor_model_code():
    """`zoo list` must stay fast: every CLI module and plugin module imports torch lazily."""
    code = (
        "import sys, io, contextlib\n"
        "from zoo.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['list'])\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_a_bug_keeps_its_traceback_an_argument_error_is_one_line(cli_runner, monkeypatch):
    import zoo.registry

    def broken(*a, **kw):
        raise ValueError("a bug, not the user's mistake")

    monkeypatch.setattr(zoo.registry, "list_models", broken)
    with pytest.raises(ValueError, match="a bug"):  # not turned into "Error: ..."
        cli_runner("list")
    r = cli_runner("info", "hf-hub:org/repo")  # zoo.ArgumentError: the user's mistake, one line
    assert r.exit_code == 1 and "Error: zoo.info takes a registered ARCH[.TAG]" in r.output


def test_sample_says_when_it_draws_from_a_random_init(cli_runner, tmp_path):
    out = str(tmp_path / "s.png")
    r = cli_runner("sample", "pixelcnn", "--tiny", "-n", "1", "--out", out)
    assert r.exit_code == 0, r.output
    assert "released weights do not fit a changed config" in r.stderr and "random initialisation" in r.stderr
    r = cli_runner("sample", "pixelcnn", "--tiny", "--random-init", "-n", "1", "--out", out)
    assert r.exit_code == 0 and "random initialisation" not in r.stderr  # asked for: no note
    r = cli_runner("sample", "independent", "--tiny", "-n", "1", "--out", out)
    assert "has no released weights yet" in r.stderr
    r = cli_runner("sample", f"local-dir:{tmp_path}", "--set", "height=8", "--out", out)
    assert r.exit_code == 2 and "build a registered architecture" in r.output
    for bad in (["-n", "0"], ["--temperature", "-1"]):  # usage errors, before any model is built
        r = cli_runner("sample", "independent", "--tiny", *bad, "--out", out)
        assert r.exit_code == 2 and "Invalid value" in r.output
