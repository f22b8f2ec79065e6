"""benchmarks/bench_train.py runs its pieces honestly. No test here asserts a speed: speed goals are
ratios measured in one run by the benchmarks themselves, never timed assertions in tests."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"benchmarks/{name}.py cannot be loaded"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark("bench_train")


def _job(tree: Path | None, name: str = "pixelcnn", seconds: float = 0.05) -> dict:
    return {
        "kind": "measure",
        "tree": str(tree) if tree else None,
        "model": name,
        "config": dict(zoo.info(name).test_config),
        "train_batch": 4,
        "score_batch": 4,
        "seconds": seconds,
        "threads": 1,
        "seed": 0,
        "recipe": {**bench.list_likelihood_models()["models"][name]},
    }


@pytest.mark.parametrize("name", ["pixelcnn", "pixelrnn-row"])
def test_measure_returns_positive_rates_of_this_tree(name):
    r = bench.measure(_job(None, name))
    assert {"model", "train", "score", "params", "threads", "torch", "zoo_file", "model_file"} <= set(r)
    assert r["train"] > 0 and r["score"] > 0 and r["params"] > 0 and r["threads"] == 1
    bench.check_own_code(r, ROOT)


def test_listing_has_the_likelihood_models_with_their_recipes():
    listing = bench.list_likelihood_models()["models"]
    for name in zoo.list_models():
        assert (name in listing) == ("likelihood" in zoo.info(name).capabilities)
    assert {"pixelcnn", "pixelrnn-diag"} <= set(listing)
    assert listing["pixelrnn-diag"]["batch_size"] == zoo.info("pixelrnn-diag").recipes["default"]["batch_size"]
    assert set(bench.RECIPE_KEYS) | {"epochs", "train_images", "valid_images"} == set(listing["pixelcnn"])
    assert (listing["pixelcnn"]["train_images"], listing["pixelcnn"]["valid_images"]) == (50_000, 10_000)


def test_full_recipe_hours_from_the_measured_speeds():
    recipe = {"batch_size": 8, "epochs": 10, "train_images": 50_000, "valid_images": 10_000}
    row = {
        "model": "m",
        "note": "release config",
        "batch": 8,
        "recipe": recipe,
        "failed": {},
        "train": {"ref": 50.0, "new": 100.0, "ratio": 2.0},
        "score": {"ref": 500.0, "new": 1000.0, "ratio": 2.0},
    }
    assert bench.recipe_hours(row) == pytest.approx(10 * (500 + 10) / 3600)
    assert bench.recipe_hours({**row, "recipe": {"epochs": 10}}) is None  # dataset sizes unknown
    table = bench.markdown(
        {
            "command": "c",
            "machine": bench.machine(1, "x", 0.0),
            "ref": "r",
            "new": "n",
            "rounds": 1,
            "seconds": 1,
            "score_batch": 4,
            "rows": [row],
        }
    )
    assert "- m: 10 epochs, 1.4 h" in table


def test_rows_mark_a_model_missing_on_one_side():
    recipe = {"batch_size": 8}
    rows = bench.plan_rows(
        {"pixelcnn": recipe, "new-model": recipe}, {"pixelcnn": recipe, "old-model": recipe}, None, None
    )
    assert [(r["model"], r["sides"]) for r in rows] == [
        ("pixelcnn", ["new", "ref"]),
        ("pixelcnn", ["new", "ref"]),
        ("new-model", ["new"]),
        ("old-model", ["ref"]),
    ]
    assert rows[1]["config"] == bench.COMPARISON
    # both sides build the current tree's release config; a model only the reference has builds its own
    shared = bench.plan_rows(
        {"pixelcnn": recipe}, {"pixelcnn": recipe, "old": recipe}, None, None, {"pixelcnn": {"h": 2}}
    )
    assert [(r["model"], r["config"]) for r in shared] == [
        ("pixelcnn", {"h": 2}),
        ("pixelcnn", bench.COMPARISON),
        ("old", {}),
    ]
    assert [r["model"] for r in bench.plan_rows({"a": recipe, "b": recipe}, {}, {"b"}, 3)] == ["b"]
    # a side that did not run prints "-"
    row = {
        **rows[2],
        "train": {"ref": None, "new": 10.0, "ratio": None},
        "score": {"ref": None, "new": 5.0, "ratio": None},
        "failed": {},
    }
    broken = {
        **rows[0],
        "train": {"ref": 2.0, "new": None, "ratio": None},
        "score": {"ref": 4.0, "new": None, "ratio": None},
        "failed": {"new": "ZooError: oops"},
    }
    table = bench.markdown(
        {
            "command": "c",
            "machine": bench.machine(1, "x", 0.0),
            "ref": "r",
            "new": "n",
            "rounds": 1,
            "seconds": 1,
            "score_batch": 4,
            "rows": [row, broken],
        }
    )
    assert "| new-model | release config | 8 | - | 10.0 | - | - | 5.0 | - |" in table
    assert "| pixelcnn | release config | 8 | 2.0 | failed | - | 4.0 | failed | - |" in table
    assert "pixelcnn (release config) failed on new: ZooError: oops" in table


def test_check_own_code_refuses_the_other_tree(tmp_path):
    r = {"zoo_file": str(ROOT / "zoo" / "__init__.py"), "packages": {}, "model_file": str(ROOT / "x.py")}
    bench.check_own_code(r, ROOT, tmp_path)
    with pytest.raises(RuntimeError, match="imported code from elsewhere"):
        bench.check_own_code(r, tmp_path)
    with pytest.raises(RuntimeError, match="imported code from elsewhere"):
        bench.check_own_code({**r, "zoo_file": str(tmp_path / "zoo" / "__init__.py")}, tmp_path, ROOT)


@pytest.mark.slow
def test_an_exported_commit_runs_its_own_code(tmp_path):
    if (
        shutil.which("git") is None
        or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0
    ):
        pytest.skip("not a git checkout")
    tree = tmp_path / "ref"
    tree.mkdir()
    commit = bench.export_commit("HEAD", tree)
    assert commit and (tree / "zoo" / "__init__.py").is_file()
    listing = bench.run_worker({"kind": "list", "tree": str(tree)}, threads=1)
    bench.check_own_code(listing, tree, ROOT)
    assert "pixelcnn" in listing["models"]
    assert Path(listing["packages"]["zoo_pixelcnn"]).is_relative_to(tree)
    r = bench.run_worker(_job(tree, "pixelcnn"), threads=1)
    bench.check_own_code(r, tree, ROOT)
    assert Path(r["model_file"]).is_relative_to(tree / "plugins" / "zoo_pixelcnn")
    assert r["train"] > 0 and r["score"] > 0
    with pytest.raises(RuntimeError, match="imported code from elsewhere"):
        bench.check_own_code(r, ROOT, tree)  # the check would catch a worker that ran the other tree


def test_bf16_training_step_runs_under_autocast(monkeypatch):
    import torch

    seen = []
    model = zoo.create("pixelcnn", **zoo.info("pixelcnn").test_config)
    original = type(model).logits
    monkeypatch.setattr(
        type(model), "logits", lambda self, x: seen.append(torch.is_autocast_enabled("cpu")) or original(self, x)
    )
    x = torch.randint(0, 2, (2, 1, 8, 8))
    recipe = bench.list_likelihood_models()["models"]["pixelcnn"]
    bench.make_train_step(model, x, {**recipe, "precision": "bf16"})()
    bench.make_train_step(model, x, recipe)()
    assert seen == [True, False]


def test_flop_count_of_a_training_step_matches_the_convolutions_by_hand():
    """bench_flops counts forward and backward work: for one convolution whose input needs no
    gradient, the forward product and the weight's gradient, the same FLOPs each."""
    import torch

    flops = _load_benchmark("bench_flops")

    class OneConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False)

        def loss(self, x):
            return self.conv(x).square().mean()

    x = torch.randn(2, 3, 8, 8)  # needs no gradient: backward computes the weight's only
    forward = 2 * 2 * 8 * 8 * 5 * 3 * 3 * 3
    assert flops.step_flops(OneConv(), x) == 2 * forward  # forward + the weight's gradient


def test_flops_measure_reports_work_and_speed_of_a_tiny_model():
    import torch

    flops = _load_benchmark("bench_flops")
    recipe = {**bench.list_likelihood_models()["models"]["pixelcnn"], "batch_size": 2}
    row = flops.measure("pixelcnn", recipe, dict(zoo.info("pixelcnn").test_config), seconds=0.05)
    assert row["batch"] == 2 and row["gflop_per_image"] > 0 and row["train"] > 0
    assert flops.gemm_rate(64, torch.float32, 0.01) > 0


def test_diagonal_scan_benchmark_times_both_sides(monkeypatch, capsys):
    """benchmarks/bench_diagonal_scan.py: the C kernel and the PyTorch loop, both timed, a ratio each; the
    scan's kernels are back in place afterwards."""
    import torch

    from zoo_pixelrnn import diagonal_scan

    if diagonal_scan._c_kernels(torch.float32) is None:
        pytest.skip("diagonal_cells.c could not be built here (no C compiler, or ZOO_NATIVE=0)")
    kernels = diagonal_scan._kernels
    module = _load_benchmark("bench_diagonal_scan")
    monkeypatch.setattr("sys.argv", ["bench_diagonal_scan.py", "--batch", "1", "--rounds", "1", "--steps", "1"])
    module.main()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["train", "score"]
    assert all("C kernel" in line and "PyTorch loop" in line and line.endswith("x") for line in lines[1:])
    assert diagonal_scan._kernels is kernels
