"""zoo.train: recipes, the loop, EMA, custom trainers, DDP (checkpoints and resume: test_train_resume.py).

Every test trains tiny models (8x8 images, a few dozen parameters) on an
in-process toy dataset registered through a fake plugin (train_toys.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo
from zoo.data import Dataset
from zoo.distributed import shard_indices
from zoo.errors import UnknownNameError, ZooError
from zoo.plugins import use_plugins
from zoo.training import RecipeError, plot_training_curves, resolve_recipe, split_overrides, train
from zoo.training.checkpoint import flatten_state, unflatten_state
from zoo.training.data import validation_nll
from zoo.training.optim import lr_factor
from zoo.training.state import CHECKPOINT

from train_toys import (
    SPEC,
    FakeGANTrainer,
    TinyDropout,
    TinyGAN,
    ToyDataset,
    ToyPlugin,
    assert_same,
    interrupt_at,
    quick,
    weights,
)


# -- recipes --------------------------------------------------------------------------------------
def test_recipe_defaults_named_and_overrides(toy):
    spec = zoo.info("tiny-dropout")
    r = resolve_recipe(spec, "default", {"epochs": 3, "betas": (0.8, 0.99)})
    assert r["lr"] == 0.05 and r["batch_size"] == 16 and r["epochs"] == 3
    assert r["betas"] == [0.8, 0.99]
    assert r["optimizer"] == "adam" and r["ema_decay"] == 0.9  # schema default, recipe value
    assert isinstance(resolve_recipe(spec, "default", {"lr": 1})["lr"], float)  # ints are numbers


@pytest.mark.parametrize(
    "override, match",
    [
        ({"learning_rate": 0.1}, "unknown recipe key 'learning_rate'"),
        ({"lr": "fast"}, "'lr' must be a number"),
        ({"lr": -1.0}, "'lr' must be > 0"),
        ({"epochs": 2.5}, "'epochs' must be an integer"),
        ({"optimizer": "lion"}, "'optimizer' must be one of adam, adamw, sgd, rmsprop"),
        ({"lr_schedule": "linear"}, "'lr_schedule' must be one of"),
        ({"ema_decay": 1.0}, "'ema_decay' must be in"),
        ({"ema_warmup": 1}, "'ema_warmup' must be true or false"),
        ({"betas": [0.9]}, "'betas' must be a list of 2 numbers"),
        ({"total_steps": 5}, "computed by the training loop"),
        ({"batch_size": 0}, "'batch_size' must be >= 1"),
    ],
)
def test_recipe_validation_errors(toy, override, match):
    with pytest.raises(RecipeError, match=match):
        resolve_recipe(zoo.info("tiny-dropout"), "default", override)


def test_recipe_unknown_key_suggests_and_unknown_recipe(toy):
    with pytest.raises(RecipeError, match="did you mean ema_decay"):
        resolve_recipe(zoo.info("tiny-dropout"), {"ema_decy": 0.9})
    with pytest.raises(UnknownNameError, match="no recipe 'cosin'.*did you mean cosine"):
        resolve_recipe(zoo.info("tiny-dropout"), "cosin")
    with pytest.raises(UnknownNameError, match="recipes: default, cosine"):
        train("tiny-dropout", dataset="toy", recipe="nope", progress=False)


def test_trainer_recipe_defaults_extend_the_schema(toy):
    spec = zoo.info("tiny-gan")
    r = resolve_recipe(spec, "default", extra_defaults=FakeGANTrainer.recipe_defaults)
    assert r["lr_d"] == 0.1 and r["fixed_noise"] == 4
    with pytest.raises(RecipeError, match="unknown recipe key 'lr_d'"):  # without the trainer's keys
        resolve_recipe(spec, "default")
    with pytest.raises(RecipeError, match="may not redefine schema keys"):
        resolve_recipe(spec, "default", extra_defaults={"lr": 1.0})


def test_split_overrides():
    rec, cfg = split_overrides(
        "x", {"lr": 0.1, "hidden": 8, "model.lr": 3, "recipe.seed": 2, "lr_d": 1}, recipe_extra={"lr_d": 0.1}
    )
    assert rec == {"lr": 0.1, "seed": 2, "lr_d": 1}
    assert cfg == {"hidden": 8, "lr": 3}


def test_lr_schedules():
    base = resolve_recipe(
        zoo.ModelSpec("m", "f", "s", "p", "a:b", {}, SPEC),
        {"warmup_steps": 4, "lr_schedule": "cosine", "min_lr": 1e-4, "lr": 1e-2},
    )
    rec = {**base, "total_steps": 104, "steps_per_epoch": 10}
    assert [lr_factor(s, rec) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, rec) == pytest.approx(1.0)
    assert lr_factor(104, rec) * rec["lr"] == pytest.approx(1e-4)
    assert lr_factor(54, rec) == pytest.approx(0.01 + 0.99 * 0.5)
    exp = {**rec, "lr_schedule": "exponential", "lr_gamma": 0.5, "warmup_steps": 0}
    assert lr_factor(20, exp) == pytest.approx(0.25)


# -- pieces -------------------------------------------------------------------------------------------
def test_state_codec_roundtrip_keeps_int_keys_and_tuples():
    p = nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.8, 0.9))
    p.grad = torch.ones(3)
    opt.step()
    state = {"opt": opt.state_dict(), "t": (1, 2.5, None), "__tensor__": "tricky key", "s": "x", 3: [True]}
    tensors = {}
    skeleton = flatten_state(state, "trainer", tensors)
    json.dumps(skeleton)  # plain JSON
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert back["t"] == (1, 2.5, None) and back["__tensor__"] == "tricky key" and back[3] == [True]
    assert list(back["opt"]["state"]) == [0]  # int key, as the optimizer needs it
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.9)
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])
    opt2 = torch.optim.Adam([nn.Parameter(torch.randn(3))], lr=0.1)
    opt2.load_state_dict(back["opt"])
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        flatten_state({"x": object()}, "t", {})


def test_shard_indices_match_single_process_batches():
    n, world, batch = 10, 2, 4
    single = shard_indices(n, seed=3, epoch=1)
    assert sorted(single.tolist()) == list(range(n))
    assert not torch.equal(single, shard_indices(n, seed=3, epoch=2))  # reshuffled every epoch
    shards = [shard_indices(n, seed=3, epoch=1, rank=r, world=world) for r in range(world)]
    assert all(len(s) == 5 for s in shards)
    per_rank = batch // world
    for k in range(2):  # full batches: the ranks together take exactly the single-process batch
        together = torch.cat([s[k * per_rank : (k + 1) * per_rank] for s in shards])
        assert sorted(together.tolist()) == sorted(single[k * batch : (k + 1) * batch].tolist())
    with pytest.raises(ZooError, match="cannot shard 1 images over 2"):
        shard_indices(1, seed=0, epoch=0, world=2)


def test_plot_training_curves(tmp_path):
    from PIL import Image

    records = [{"kind": "train", "step": s, "bpd": 1.0 / s, "loss": 40.0 / s} for s in range(1, 20)]
    records += [{"kind": "valid", "step": s, "bpd": 1.2 / s} for s in (5, 10, 15)]
    path = plot_training_curves(records, tmp_path / "c.png", title="t")
    img = Image.open(path).convert("RGB")
    assert img.size == (720, 440)
    colours = {c for _, c in img.getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # both series drawn
    empty = plot_training_curves([], tmp_path / "e.png")
    assert Image.open(empty).size == (720, 440)


# -- the loop -------------------------------------------------------------------------------------------
def test_train_writes_checkpoint_log_and_release(toy, tmp_path):
    r = quick(tmp_path / "run", samples=4)
    assert (r.epochs, r.steps) == (2, 12)  # 96 images / batch 16
    out = tmp_path / "run"
    assert (out / CHECKPOINT).is_file() and (out / "best.safetensors").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    rel = r.release_dir
    for f in (
        "config.json",
        "model.safetensors",
        "training_curve.png",
        "train_log.jsonl",
        "training.json",
        "samples.png",
    ):
        assert (rel / f).is_file(), f
    cfg = json.loads((rel / "config.json").read_text())
    assert cfg["architecture"] == "tiny-dropout" and cfg["data_spec"] == SPEC.to_dict()
    log = [json.loads(line) for line in (rel / "train_log.jsonl").read_text().splitlines()]
    valid = [x for x in log if x["kind"] == "valid"]
    assert [v["epoch"] for v in valid] == [1, 2] and all(v["ema"] for v in valid)
    assert [x["step"] for x in log if x["kind"] == "train"] == list(range(2, 13, 2))  # log_every 2; epoch ends at 6, 12
    summary = json.loads((rel / "training.json").read_text())
    assert summary["best_epoch"] == r.best_epoch and summary["weights"] == "EMA of the weights"
    # the release folder loads back into the released model
    from safetensors.torch import load_file

    assert_same(load_file(rel / "model.safetensors"), weights(r.model))
    # training lowered the validation NLL below the uniform model's 64 ln 2
    assert r.best_valid_nll < 64 * 0.6931 - 1


def test_ema_is_validated_and_released(toy, tmp_path):
    r = quick(tmp_path / "run", epochs=3)
    assert r.best_epoch == 3  # the NLL keeps falling on this toy problem
    valid_x = ToyDataset().load("valid")[0]
    nll_ema = validation_nll(r.ema, valid_x, batch_size=7, device=torch.device("cpu"))
    nll_raw = validation_nll(r.last, valid_x, batch_size=7, device=torch.device("cpu"))
    assert nll_ema == pytest.approx(r.best_valid_nll, rel=1e-12)  # the logged NLL is the EMA's
    assert nll_raw != pytest.approx(nll_ema, rel=1e-6)
    assert_same(weights(r.model), weights(r.ema))  # released = EMA weights of the best epoch
    assert any(not torch.equal(a, b) for a, b in zip(weights(r.model).values(), weights(r.last).values(), strict=True))


def test_no_ema_releases_raw_weights(toy, tmp_path):
    r = quick(tmp_path / "run", epochs=2, overrides={"ema_decay": 0.0})
    assert r.ema is None and r.best_epoch == 2
    assert_same(weights(r.model), weights(r.last))


def test_same_seed_same_weights_other_seed_differs(toy, tmp_path):
    a = quick(tmp_path / "a", epochs=1)
    b = quick(tmp_path / "b", epochs=1)
    c = quick(tmp_path / "c", epochs=1, seed=1)
    assert_same(weights(a.last), weights(b.last))
    assert not torch.equal(a.last.table, c.last.table)


def test_dynamic_binarization_redraws_the_train_split_every_epoch(toy, tmp_path, monkeypatch):
    seen = []
    original = ToyDataset.redraw

    def spy(self, split, *, seed, epoch):
        seen.append((split, seed, epoch))
        return original(self, split, seed=seed, epoch=epoch)

    monkeypatch.setattr(ToyDataset, "redraw", spy)
    dynamic = quick(tmp_path / "dynamic", recipe="dynamic", epochs=3, seed=4)
    assert seen == [("train", 4, 0), ("train", 4, 1), ("train", 4, 2)]  # the valid split is never redrawn
    fixed = quick(tmp_path / "fixed", recipe="dynamic", epochs=3, seed=4, overrides={"dynamic_binarization": False})
    assert len(seen) == 3
    assert not torch.equal(dynamic.last.table, fixed.last.table)

    class Fixed(ToyDataset):
        name = "toy-fixed"
        redraw = Dataset.redraw

    with pytest.raises(RecipeError, match="dynamic_binarization: dataset 'toy-fixed' has no random draws"):
        train(
            "tiny-dropout",
            dataset=Fixed(),
            recipe="dynamic",
            out=tmp_path / "x",
            progress=False,
            evaluate=False,
            samples=0,
            epochs=1,
        )


def test_bf16_precision_autocasts_the_training_forward_only(toy, tmp_path, monkeypatch):
    modes = []
    original = TinyDropout.logits

    def spy(self, x):
        modes.append((self.training, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return original(self, x)

    monkeypatch.setattr(TinyDropout, "logits", spy)
    quick(tmp_path / "bf16", epochs=1, overrides={"precision": "bf16"})
    assert {m for m in modes if m[0]} == {(True, True, torch.bfloat16)}  # every training step
    assert {m[1] for m in modes if not m[0]} == {False}  # validation is exact fp32
    modes.clear()
    quick(tmp_path / "fp32", epochs=1)
    assert not any(m[1] for m in modes)
    with pytest.raises(RecipeError, match="'precision' must be one of fp32, bf16"):
        quick(tmp_path / "bad", overrides={"precision": "fp16"})


def test_the_card_command_repeats_the_runs_set_values(toy, tmp_path):
    """Settings given on top of the named recipe (`--set`) are recorded in training.json and the card's
    training command repeats them: recipe keys by name, constructor options as model.KEY."""
    result = quick(
        tmp_path / "run", epochs=1, overrides={"lr": 0.01, "precision": "bf16"}, config={"p": 0.25}, evaluate=True
    )
    training = json.loads((result.release_dir / "training.json").read_text())
    assert training["set"] == {"lr": 0.01, "precision": "bf16", "model.p": 0.25}
    from zoo.release.folder import training_commands

    assert training_commands(training) == (
        "`zoo train tiny-dropout --dataset toy --epochs 1 --set lr=0.01 --set precision=bf16 --set model.p=0.25`"
    )
    assert "--set model.p=0.25" in (result.release_dir / "README.md").read_text()


def test_custom_trainer_interface(toy, tmp_path):
    FakeGANTrainer.instances.clear()
    r = quick(tmp_path / "gan", name="tiny-gan", samples=4, epochs=2)
    trainer = FakeGANTrainer.instances[-1]
    assert trainer.steps == 12 and trainer.recipe["lr_d"] == 0.1 and trainer.recipe["steps_per_epoch"] == 6
    assert r.best_valid_nll is None and r.ema is None  # no likelihood: no validation NLL
    assert (tmp_path / "gan" / "samples" / "epoch002.png").is_file()  # epoch_samples every epoch
    log = [json.loads(x) for x in (r.release_dir / "train_log.jsonl").read_text().splitlines()]
    assert {"loss_d", "loss_g"} <= set(log[0])
    assert (r.release_dir / "samples.png").is_file()
    # its own state (two optimizers, a generator) checkpoints and resumes exactly
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", name="tiny-gan", callbacks=[interrupt_at("step", 5)])
    resumed = quick(tmp_path / "cut", name="tiny-gan", resume=True)
    assert_same(weights(resumed.last), weights(r.last))


def test_class_conditional_models_get_labels(toy, tmp_path):
    r = quick(tmp_path / "cond", name="tiny-cond", epochs=1)
    assert r.last.seen and all(y is not None for y in r.last.seen)  # training batches came with labels
    valid_x, valid_y = ToyDataset().load("valid")
    nll = validation_nll(r.last, valid_x, labels=valid_y, batch_size=32, device=torch.device("cpu"))
    assert nll == pytest.approx(r.best_valid_nll, rel=1e-12)  # validation is p(x | y)

    class Unlabelled(ToyDataset):
        def load(self, split):
            return super().load(split)[0], None

    with pytest.raises(ZooError, match="class-conditional .* has no labels"):
        train("tiny-cond", dataset=Unlabelled(), out=tmp_path / "u", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_train_and_resume(toy, tmp_path):
    full = quick(tmp_path / "full", device="cuda")
    assert full.last.table.device.type == "cuda"
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", device="cuda", callbacks=[interrupt_at("step", 8)])
    resumed = quick(tmp_path / "cut", device="cuda", resume=True)
    assert_same(weights(resumed.last), weights(full.last))


def test_bad_inputs(toy, tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ZooError, match="no CUDA device"):
            quick(tmp_path / "x", device="cuda")
    with pytest.raises(ZooError, match="has images 1x8x8, 2 levels; model independent takes 1x28x28"):
        train("independent", dataset="toy", out=tmp_path / "y", progress=False)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        quick(tmp_path / "z", limit=0)
    with pytest.raises(ZooError, match="no split 'dev'"):
        quick(tmp_path / "w", overrides={"valid_split": "dev"})


def test_limit_and_default_dataset(toy, tmp_path):
    r = train("tiny-dropout", out=tmp_path / "run", limit=40, epochs=1, progress=False, evaluate=False, samples=0)
    assert r.steps == 3  # ceil(40 / 16); the dataset came from the recipe
    assert json.loads((r.release_dir / "training.json").read_text())["limit"] == 40


def test_evaluate_hook_runs_the_harness(toy, tmp_path, monkeypatch, capfd):
    """The harness on the test split, and on the canonical subset (here 10 of the toy's test images); without
    progress (`zoo train --quiet`) its scoring draws no bars either."""
    assert pytest.importorskip("zoo.eval").evaluate  # the harness is another module; skip if it is absent
    import zoo.release.canonical

    monkeypatch.setattr(zoo.release.canonical, "CANONICAL_LIMIT", 10)
    capfd.readouterr()
    r = quick(tmp_path / "run", epochs=1, evaluate=True, overrides={"ema_decay": 0.0})
    assert r.eval is not None
    assert "img/s" not in capfd.readouterr().err
    nll = r.eval["metrics"]["nll"]["value"]
    test_x = ToyDataset().load("test")[0]
    assert nll == pytest.approx(validation_nll(r.model, test_x, batch_size=32, device=torch.device("cpu")), rel=1e-6)
    assert (r.release_dir / "eval.json").is_file()
    sub = json.loads((r.release_dir / "eval.json").read_text())["canonical_subset"]
    assert sub["provenance"]["subset"]["limit"] == 10 and sub["provenance"]["n"] == 10
    card = (r.release_dir / "README.md").read_text()
    assert "canonical_subset:" in card and f"indices_sha256: {sub['provenance']['subset']['indices_sha256']}" in card
    # weights no registry pins yet: the card names the folder, the name that loads them
    assert f'zoo.load("local-dir:{r.release_dir}")' in card and f"`zoo eval local-dir:{r.release_dir} --dataset" in card


def test_cli_train(toy, tmp_path, cli_runner):
    out = tmp_path / "cli"
    res = cli_runner(
        "train",
        "tiny-dropout",
        "--dataset",
        "toy",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-eval",
        "--samples",
        "0",
        "--quiet",
        "--set",
        "lr=0.1",
        "--set",
        "model.p=0.25",
        "--json",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["steps"] == 6 and summary["best_epoch"] == 1
    cfg = json.loads((out / "release" / "config.json").read_text())
    assert cfg["config"]["p"] == 0.25
    rec = json.loads((out / "release" / "training.json").read_text())["recipe"]
    assert rec["lr"] == 0.1
    again = cli_runner("train", "tiny-dropout", "--dataset", "toy", "--out", str(out), "--quiet")
    assert again.exit_code != 0 and "--resume" in again.output
    bad = cli_runner("train", "tiny-dropout", "--set", "lr=-1", "--out", str(tmp_path / "b"), "--quiet")
    assert bad.exit_code != 0 and "'lr' must be > 0" in bad.output
    # a resumed run's messages go to stderr: with --json, stdout is the summary alone
    more = cli_runner(
        "train",
        "tiny-dropout",
        "--dataset",
        "toy",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--resume",
        "--no-eval",
        "--samples",
        "0",
        "--quiet",
        "--set",
        "lr=0.1",
        "--set",
        "model.p=0.25",
        "--json",
    )
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["steps"] == 12 and "resuming a 1-epoch run with epochs=2" in more.stderr


# -- DistributedDataParallel ------------------------------------------------------------------------------------
DDP_SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import torch
    sys.path.insert(0, {tests!r})
    import train_toys as T
    from zoo.plugins import use_plugins
    import zoo

    torch.set_num_threads(1)
    out, recipe = sys.argv[1], json.loads(sys.argv[2])
    with use_plugins({{"toy-plugin": T.ToyPlugin}}):
        r = zoo.train("tiny-dropout", dataset="toy", out=out, epochs=2, overrides=recipe, progress=False,
                      evaluate=False, samples=0)
    rank = int(os.environ.get("RANK", 0))
    digest = hashlib.sha256()
    for k, v in sorted(r.last.state_dict().items()):
        digest.update(k.encode()); digest.update(v.numpy().tobytes())
    with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
        json.dump({{"sha256": digest.hexdigest(), "table": r.last.table.flatten().tolist(),
                   "release": str(r.release_dir)}}, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_hold_identical_weights(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    recipe = {"batch_size": 16, "ema_decay": 0.0, "log_every": 1, "lr": 0.05, "config": {"p": 0.0}}  # no dropout
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        str(script),
        str(out),
        json.dumps(recipe),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    assert ranks[0]["release"].endswith("release") and ranks[1]["release"] == "None"  # only rank 0 writes
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in log if x["kind"] == "train"]
    assert steps == list(range(1, 13))  # one writer: every step logged once, 96 images / global batch 16
    # the ranks' half batches together make the single-process batch: the same weights up to rounding
    with use_plugins({"toy-plugin": ToyPlugin}):
        single = quick(tmp_path / "single", overrides=recipe)
    assert torch.allclose(single.last.table.flatten(), torch.tensor(ranks[0]["table"]), atol=1e-5)


# -- the package layout, the trainer protocol and the names kept for one release ----------------------
def test_old_import_paths_warn_and_give_the_same_objects():
    import zoo.distributed
    import zoo.eval.distributed
    import zoo.training
    import zoo.training.checkpoint
    import zoo.training.data
    import zoo.training.state

    for old, new in (
        (lambda: zoo.training.shard_indices, zoo.distributed.shard_indices),
        (lambda: zoo.training.flatten_state, zoo.training.checkpoint.flatten_state),
        (lambda: zoo.training.validation_nll, zoo.training.data.validation_nll),
        (lambda: zoo.training.CHECKPOINT, zoo.training.state.CHECKPOINT),
        (lambda: zoo.eval.distributed.map_batches, zoo.distributed.map_batches),
    ):
        with pytest.warns(DeprecationWarning, match="moved to zoo"):
            assert old() is new
    with pytest.warns(DeprecationWarning):
        assert zoo.eval.distributed.init_from_env() is False  # the old interface: "did this call start a group?"
    with pytest.raises(AttributeError):
        _ = zoo.training.no_such_name
    assert zoo.train is zoo.training.train  # the function; the package is zoo.training


def test_trainers_implement_the_protocol(toy):
    from zoo.training import MaximumLikelihoodTrainer
    from zoo.training.trainer import trainer_class

    rec = {**resolve_recipe(zoo.info("tiny-dropout"), "default"), "steps_per_epoch": 1, "total_steps": 1}
    assert isinstance(MaximumLikelihoodTrainer(zoo.create("tiny-dropout"), rec, torch.device("cpu")), zoo.Trainer)
    gan_rec = {**resolve_recipe(zoo.info("tiny-gan"), "default", extra_defaults=FakeGANTrainer.recipe_defaults)}
    assert isinstance(FakeGANTrainer(TinyGAN(), gan_rec, torch.device("cpu")), zoo.Trainer)
    assert trainer_class(zoo.info("tiny-gan")) is FakeGANTrainer
    assert trainer_class(zoo.info("tiny-dropout")) is MaximumLikelihoodTrainer


class OldHookTrainer(FakeGANTrainer):
    """A third-party trainer written against the hook's old name."""

    epoch_samples = None  # type: ignore[assignment]  # hide the new name this test class inherits

    def fixed_noise_samples(self):
        return self.model.sample(2, generator=torch.Generator().manual_seed(0))


def test_the_old_epoch_samples_hook_name_still_works_with_a_warning(toy):
    import dataclasses

    from zoo.training.trainer import epoch_samples, trainer_class

    old = dataclasses.replace(zoo.info("tiny-gan"), trainer=f"{__name__}:OldHookTrainer")
    with pytest.warns(DeprecationWarning, match="now called epoch_samples"):
        assert trainer_class(old) is OldHookTrainer
    t = OldHookTrainer(TinyGAN(), {"lr": 0.05, "lr_d": 0.1, "seed": 0, "fixed_noise": 2}, torch.device("cpu"))
    assert epoch_samples(t).shape == (2, 1, 8, 8)


def test_cli_train_tiny_fits_the_datasets_images_and_threads(tmp_path, cli_runner, monkeypatch):
    """`--tiny` keeps the tiny network but trains on 28x28 binarized MNIST; `--threads` sets torch's threads."""
    import zoo.training.loop

    built = {}
    real = zoo.training.loop.create

    def spy(name, **cfg):
        built.update(cfg)
        return real(name, **cfg)

    monkeypatch.setattr(zoo.training.loop, "create", spy)
    saved = torch.get_num_threads()
    try:
        r = cli_runner(
            "train",
            "pixelcnn",
            "--tiny",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--limit",
            "64",
            "--no-eval",
            "--samples",
            "0",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
            "--dataset",
            "binarized-mnist",
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
    assert r.exit_code == 0, r.output
    tiny = zoo.info("pixelcnn").test_config
    assert built["hidden"] == tiny["hidden"] and (built["height"], built["width"]) == (28, 28)  # the dataset's


def test_cli_train_unknown_set_key_lists_recipe_keys_and_model_options(cli_runner):
    r = cli_runner("train", "pixelcnn", "--set", "learning_rate=0.1")
    assert r.exit_code == 1
    assert "--set learning_rate: neither a recipe key nor an option of pixelcnn" in r.output
    assert (
        "recipe keys: " in r.output
        and "batch_size" in r.output
        and "model options: " in r.output
        and "hidden" in r.output
    )


def test_keep_freed_memory_tunes_glibcs_malloc_and_can_be_turned_off(monkeypatch):
    """`zoo train`/`zoo eval` keep freed activations for reuse (zoo.util.keep_freed_memory): glibc takes the
    settings; `ZOO_KEEP_FREED_MEMORY=0` leaves malloc as it is."""
    import platform
    import sys

    from zoo.util import keep_freed_memory

    monkeypatch.setenv("ZOO_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("ZOO_KEEP_FREED_MEMORY")
    assert keep_freed_memory() is (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")


def test_short_openmp_spin_is_set_before_torch_loads_and_never_overrides(monkeypatch):
    """`zoo train`/`zoo eval` shorten the idle OpenMP threads' spin (zoo.util.short_openmp_spin) only where torch
    is not loaded yet and the environment says nothing of its own."""
    import os
    import subprocess
    import sys

    from zoo.util import OPENMP_SPIN, short_openmp_spin

    assert short_openmp_spin() is False  # torch is loaded in this process: too late to matter
    code = "import os, zoo.util as u; print(u.short_openmp_spin(), os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", OPENMP_SPIN]
    for key, value in (("GOMP_SPINCOUNT", "5"), ("OMP_WAIT_POLICY", "PASSIVE")):
        out = subprocess.run([sys.executable, "-c", code], env={**env, key: value}, capture_output=True, text=True)
        assert out.stdout.split() == ["False", "5" if key == "GOMP_SPINCOUNT" else "None"]
    # the same rule for a subprocess's environment (benchmarks/bench_train.py's workers)
    from zoo.util import openmp_spin_setting

    assert openmp_spin_setting({"PATH": "/bin"}) == {"GOMP_SPINCOUNT": OPENMP_SPIN}
    assert openmp_spin_setting({"OMP_WAIT_POLICY": "PASSIVE"}) == openmp_spin_setting({"GOMP_SPINCOUNT": "5"}) == {}
