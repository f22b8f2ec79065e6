"""zoo.train: checkpoints, exact resume, warm starts (`--init-from`), stages, and the damaged checkpoints a
resume refuses. The toys come from train_toys.py.
"""

from __future__ import annotations

import itertools
import json
import os
import signal

import pytest
import torch

from zoo.errors import ZooError
from zoo.training import load_checkpoint, train
from zoo.training.state import CHECKPOINT

from train_toys import ToyDataset, assert_same, interrupt_at, quick, weights


@pytest.mark.parametrize("recipe", ["default", "cosine", "dynamic"])
@pytest.mark.parametrize(
    "kind, step, epoch, in_epoch",
    # the last: after epoch 1's last step, before its validation
    [("epoch", 6, 1, 0), ("step", 8, 1, 2), ("step", 6, 0, 6)],
)
def test_resume_gives_the_same_weights(toy, tmp_path, recipe, kind, step, epoch, in_epoch):
    """2 epochs straight == interrupted (after epoch 1, mid-epoch 2, or between epoch 1's steps and its validation)
    + --resume, bit for bit."""
    full = quick(tmp_path / "full", recipe=recipe)
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "cut", recipe=recipe, callbacks=[interrupt_at(kind, step)])
    _, meta = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert (meta["step"], meta["epoch"], meta["step_in_epoch"]) == (step, epoch, in_epoch)
    resumed = quick(tmp_path / "cut", recipe=recipe, resume=True)
    assert resumed.steps == full.steps == 12
    assert_same(weights(resumed.last), weights(full.last))
    assert_same(weights(resumed.model), weights(full.model))
    if full.ema is not None:
        assert_same(weights(resumed.ema), weights(full.ema))
    assert resumed.best_valid_nll == full.best_valid_nll and resumed.best_epoch == full.best_epoch
    log = [json.loads(x) for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in log if x["kind"] == "valid"] == [1, 2]  # no duplicated records


def test_resume_with_more_epochs_continues(toy, tmp_path):
    full = quick(tmp_path / "full", epochs=2)
    quick(tmp_path / "more", epochs=1)
    more = quick(tmp_path / "more", epochs=2, resume=True)  # constant lr: extending == training longer
    assert_same(weights(more.last), weights(full.last))
    # the checkpoint keeps the stages, and the card turns them into the commands that reproduce the run
    _, meta = load_checkpoint(tmp_path / "more" / CHECKPOINT)
    from zoo.training.device import hardware

    here = hardware(torch.device("cpu"), 1)
    assert meta["stages"] == [
        {"epochs": 1, "from_epoch": 0, "from_step": 0, "hardware": here},
        {"epochs": 2, "from_epoch": 1, "from_step": 6, "hardware": here},
    ]
    assert load_checkpoint(tmp_path / "full" / CHECKPOINT)[1]["stages"] == [
        {"epochs": 2, "from_epoch": 0, "from_step": 0, "hardware": here}
    ]
    from zoo.release.folder import training_commands as _training_commands

    summary = {"model": "toy", "dataset": "d", "recipe_name": "default", "epochs": 2, "stages": meta["stages"]}
    assert _training_commands(summary) == (
        "`zoo train toy --dataset d --epochs 1`, then "
        "`zoo train toy --dataset d --epochs 2 --resume` in the same --out folder"
    )
    cut = [{"epochs": 3, "from_epoch": 0, "from_step": 0}, {"epochs": 5, "from_epoch": 1, "from_step": 6}]
    assert _training_commands({**summary, "stages": cut}) == (
        "`zoo train toy --dataset d --epochs 3` stopped after 6 steps (1 epoch done), then "
        "`zoo train toy --dataset d --epochs 5 --resume` in the same --out folder"
    )
    # stages run on different hardware name theirs; a run on one machine leaves that to the card's hardware line
    two = [{**cut[0], "hardware": "CPU (x86_64, 2 cores, 2 threads)"}, {**cut[1], "hardware": "NVIDIA H100"}]
    assert _training_commands({**summary, "stages": two}) == (
        "`zoo train toy --dataset d --epochs 3` on CPU (x86_64, 2 cores, 2 threads) stopped after 6 steps "
        "(1 epoch done), then `zoo train toy --dataset d --epochs 5 --resume` on NVIDIA H100 in the same --out folder"
    )
    old = [cut[0], {**cut[1], "hardware": "NVIDIA H100"}]  # a run begun before stages recorded their hardware
    assert "NVIDIA" not in _training_commands({**summary, "stages": old})
    assert _training_commands({**summary, "stages": None}) == "`zoo train toy --dataset d --epochs 2`"
    # runs in many stages: three or more resumes with the same step, on the same hardware, are written once
    ones = [{"epochs": e, "from_epoch": max(e - 1, 0), "from_step": 0} for e in range(1, 30)]
    assert _training_commands({**summary, "stages": ones}) == (
        "`zoo train toy --dataset d --epochs 1`, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, ..., 29 in the same --out folder"
    )
    quarters = [{"epochs": 25, "from_epoch": 0}] + [{"epochs": e, "from_epoch": e - 25} for e in (50, 75, 100)]
    assert _training_commands({**summary, "stages": quarters}).endswith(" for E = 50, 75, 100 in the same --out folder")
    cut = ones[:6] + [{"epochs": 7, "from_epoch": 5, "from_step": 30}] + ones[7:9]  # stage 6 stopped in its epoch
    assert _training_commands({**summary, "stages": cut}) == (
        "`zoo train toy --dataset d --epochs 1`, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, ..., 6 stopped after 30 steps (5 epochs done), then `zoo train toy --dataset d --epochs E --resume` "
        "for E = 7, 8, 9 in the same --out folder"
    )
    moved = [{**s, "hardware": "CPU" if s["epochs"] < 5 else "GPU"} for s in ones[:6]]
    assert _training_commands({**summary, "stages": moved}) == (
        "`zoo train toy --dataset d --epochs 1` on CPU, then `zoo train toy --dataset d --epochs E --resume` for "
        "E = 2, 3, 4 on CPU, then `zoo train toy --dataset d --epochs 5 --resume` on GPU, then "
        "`zoo train toy --dataset d --epochs 6 --resume` on GPU in the same --out folder"
    )


def test_init_from_starts_from_a_releases_weights_and_the_card_says_so(toy, tmp_path):
    first = quick(tmp_path / "a", epochs=1)
    source = f"local-dir:{first.release_dir}"
    # a learning rate of 1e-12: one Adam step moves no weight by more than ~1e-12, so the run ends where it began
    again = quick(tmp_path / "b", epochs=1, init_from=source, overrides={"lr": 1e-12})
    for k, v in weights(first.model).items():
        assert v.abs().max() > 0.1  # trained away from the zeros a fresh model starts from
        torch.testing.assert_close(weights(again.last)[k], v, rtol=0, atol=1e-6)
    training = json.loads((again.release_dir / "training.json").read_text())
    sha = json.loads((first.release_dir / "config.json").read_text())["weights"]["sha256"]
    init = training["stages"][0]["init_from"]
    assert {k: init[k] for k in ("name", "sha256")} == {"name": source, "sha256": sha}
    from zoo.release.folder import training_commands

    assert f"--set lr=1e-12 --init-from {source}` (from the weights of sha256 {sha[:12]}" in training_commands(training)
    # the stage record survives a --resume (the checkpoint keeps it); --resume itself takes no init_from
    more = quick(tmp_path / "b", epochs=2, resume=True, overrides={"lr": 1e-12})
    assert json.loads((more.release_dir / "training.json").read_text())["stages"][0]["init_from"]["sha256"] == sha
    with pytest.raises(ZooError, match="give one"):
        quick(tmp_path / "b", epochs=3, resume=True, init_from=source, overrides={"lr": 1e-12})
    with pytest.raises(ZooError, match=r"another config .*p: 0.5 there, 0.25 here"):
        quick(tmp_path / "c", epochs=1, init_from=source, config={"p": 0.25})
    with pytest.raises(ZooError, match="is a tiny-dropout, not the tiny-gan"):
        quick(tmp_path / "d", name="tiny-gan", epochs=1, init_from=source)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()  # refused before anything is written


def test_a_run_from_a_releases_weights_counts_the_runs_behind_them(toy, tmp_path, capsys):
    """`--init-from` records the history of the release it starts from (its training.json and timed validation,
    itself continuing earlier runs), so that the card's epochs, wall time, progress table and time to a likelihood
    count every run behind the weights, and a restart's first epoch is marked."""
    from zoo.eval.trainlog import lineage_records, validation_records
    from zoo.release.card import training_progress
    from zoo.release.folder import training_hardware

    first = quick(tmp_path / "a", epochs=2)
    first_training = json.loads((first.release_dir / "training.json").read_text())
    second = quick(tmp_path / "b", epochs=1, init_from=f"local-dir:{first.release_dir}")
    third = quick(tmp_path / "c", epochs=1, init_from=f"local-dir:{second.release_dir}")
    training = json.loads((third.release_dir / "training.json").read_text())
    history = training["stages"][0]["init_from"]["history"]
    second_training = json.loads((second.release_dir / "training.json").read_text())
    assert history["training"] == second_training  # which itself holds the first run's history
    assert history["epochs"] == 3 and history["steps"] == first_training["steps"] + second_training["steps"]
    assert history["wall_time_s"] == pytest.approx(first_training["wall_time_s"] + second_training["wall_time_s"])

    own = [validation_records(r.release_dir / "train_log.jsonl") for r in (first, second, third)]
    lineage = lineage_records(third.release_dir)
    assert [r["epoch"] for r in lineage] == [1, 2, 3, 4]
    assert [r["nll"] for r in lineage] == [r["nll"] for records in own for r in records]
    assert [bool(r.get("continued")) for r in lineage] == [False, False, True, True]
    assert lineage[3]["elapsed_s"] == pytest.approx(own[2][0]["elapsed_s"] + history["wall_time_s"])
    assert lineage[2]["step"] == own[1][0]["step"] + first_training["steps"]
    assert all(b["elapsed_s"] > a["elapsed_s"] - 0.1 for a, b in itertools.pairwise(lineage))  # wall_time_s: 0.1 s

    text = training_hardware(training)
    minutes = (history["wall_time_s"] + training["wall_time_s"]) / 60
    assert text.startswith(f"{minutes:.1f} min and 4 epochs in all. First ")
    assert text.count("from those weights with a fresh optimizer") == 2  # the second run, then the third
    assert text.count("in all") == 1  # the totals once, then every run from the first
    table = "\n".join(training_progress(lineage))
    assert "| 3 | " in table and table.count("(a fresh optimizer from this epoch on)") == 2
    assert "counted on from the runs whose weights it continued" in table
    from zoo.eval.trainlog import lineage as runs_behind

    assert runs_behind(training) == [(0, first_training), (2, second_training), (3, training)]
    # a run from scratch is told as before
    assert "in all" not in training_hardware(first_training) and lineage_records(first.release_dir) == own[0]
    # a release whose run went on past its best epoch holds that epoch's weights: its history stops there
    from zoo.eval.trainlog import run_history

    past = tmp_path / "past"
    past.mkdir()
    nlls = {1: 9.0, 2: 8.0, 3: 8.5}
    log = [{"kind": "valid", "epoch": e, "step": 10 * e, "nll": nll, "elapsed_s": 5.0 * e} for e, nll in nlls.items()]
    (past / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (past / "training.json").write_text(json.dumps({"epochs": 3, "steps": 30, "best_epoch": 2, "wall_time_s": 16.0}))
    cut = run_history(past)
    assert (cut["epochs"], cut["steps"], cut["wall_time_s"]) == (2, 20, 10.0) and len(cut["validation"]) == 2
    # unreadable records of the release (its weights verify) do not stop a run from it: it counts itself only
    (first.release_dir / "training.json").write_text("{ not json")
    fresh = quick(tmp_path / "d", epochs=1, init_from=f"local-dir:{first.release_dir}")
    assert "history" not in json.loads((fresh.release_dir / "training.json").read_text())["stages"][0]["init_from"]
    assert "unreadable" in capsys.readouterr().err


def test_resume_accepts_a_checkpoint_from_before_a_recipe_key_existed(toy, tmp_path):
    # a checkpoint written before `precision` joined the schema resumes when the run keeps its default
    from zoo.training.checkpoint import save_checkpoint

    full = quick(tmp_path / "full", epochs=2)
    quick(tmp_path / "old", epochs=1)
    tensors, meta = load_checkpoint(tmp_path / "old" / CHECKPOINT)
    del meta["identity"]["recipe"]["precision"]
    save_checkpoint(tmp_path / "old" / CHECKPOINT, tensors, meta)
    with pytest.raises(ZooError, match=r"precision"):  # another value than the default is another training
        quick(tmp_path / "old", epochs=2, resume=True, overrides={"precision": "bf16"})
    more = quick(tmp_path / "old", epochs=2, resume=True)
    assert_same(weights(more.last), weights(full.last))


def test_a_resume_on_other_hardware_is_a_stage_of_its_own(toy, tmp_path):
    """Same epochs, other threads: the card must not say the whole run used the first stage's hardware."""
    from zoo.training.device import hardware

    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(KeyboardInterrupt):
            quick(tmp_path / "run", callbacks=[interrupt_at("step", 8)])
        torch.set_num_threads(2)
        quick(tmp_path / "run", resume=True)
        two = hardware(torch.device("cpu"), 1)
        torch.set_num_threads(1)
        one = hardware(torch.device("cpu"), 1)
    finally:
        torch.set_num_threads(saved)
    stages = load_checkpoint(tmp_path / "run" / CHECKPOINT)[1]["stages"]
    assert one != two and stages == [
        {"epochs": 2, "from_epoch": 0, "from_step": 0, "hardware": one},
        {"epochs": 2, "from_epoch": 1, "from_step": 8, "hardware": two},
    ]


def test_interrupt_writes_a_checkpoint_and_refuses_to_clobber_it(toy, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        quick(out, callbacks=[interrupt_at("step", 3)])
    tensors, meta = load_checkpoint(out / CHECKPOINT)
    assert (meta["epoch"], meta["step_in_epoch"], meta["step"]) == (0, 3, 3)
    assert {"model/table", "ema/table", "rng/0/torch"} <= set(tensors)
    assert any(k.startswith("trainer/optimizer/state") for k in tensors)
    assert meta["identity"]["model"] == "tiny-dropout"
    assert not (out / "release").exists()
    with pytest.raises(ZooError, match="already holds a training checkpoint; pass --resume"):
        quick(out)
    with pytest.raises(ZooError, match="recipe: checkpoint .*now"):
        quick(out, resume=True, overrides={"lr": 0.01})
    with pytest.raises(ZooError, match="no checkpoint"):
        quick(tmp_path / "empty", resume=True)


def test_sigterm_checkpoints_then_stops(toy, tmp_path):
    def terminate(event):
        if event.kind == "step" and event.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        quick(tmp_path / "run", callbacks=[terminate])
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    _, meta = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert meta["step"] == 2  # the step in progress finished, nothing after it ran
    full = quick(tmp_path / "full")
    assert_same(weights(quick(tmp_path / "run", resume=True).last), weights(full.last))


def test_resuming_without_a_dataset_checksum_says_so(toy, tmp_path, capsys):
    class NoChecksum(ToyDataset):
        def checksum(self, split):
            raise NotImplementedError

    kw = dict(epochs=1, progress=False, evaluate=False, samples=0, out=tmp_path / "run")
    train("tiny-dropout", dataset=NoChecksum(), **kw)
    assert "no checksum" not in capsys.readouterr().err  # a fresh run checks nothing
    train("tiny-dropout", dataset=NoChecksum(), resume=True, **{**kw, "epochs": 2})
    err = capsys.readouterr().err
    assert "note: dataset 'toy' has no checksum" in err and "cannot check that it continues on the same data" in err
    # with checksums on both sides there is no note, and a different dataset is refused
    quick(tmp_path / "checked", epochs=1)
    quick(tmp_path / "checked", epochs=2, resume=True)
    assert "no checksum" not in capsys.readouterr().err


# -- bad input on --resume (issue 18) ---------------------------------------------------------------------------
def test_resuming_a_finished_run_with_fewer_epochs_is_refused(toy, tmp_path):
    out = tmp_path / "run"
    quick(out, epochs=2)
    before = {p.name: p.read_bytes() for p in (out / "release").iterdir() if p.is_file()}
    ckpt = (out / CHECKPOINT).read_bytes()
    with pytest.raises(
        ZooError,
        match=r"cannot resume from .*: it has done 2 epochs already, so epochs=1 would "
        "train nothing",
    ):
        quick(out, epochs=1, resume=True)
    assert (out / CHECKPOINT).read_bytes() == ckpt  # no bogus stage in the checkpoint
    assert {p.name: p.read_bytes() for p in (out / "release").iterdir() if p.is_file()} == before  # nor in the card


def _damage(path, *, meta=None, drop=(), reshape=(), raw_meta=None):
    """Rewrite checkpoint `path`: its metadata changed by `meta` (a function), tensors dropped or reshaped."""
    from safetensors.torch import save_file

    tensors, m = load_checkpoint(path)
    if meta is not None:
        meta(m)
    tensors = {k: v for k, v in tensors.items() if not any(k.startswith(p) for p in drop)}
    for k in reshape:
        tensors[k] = torch.cat([tensors[k].flatten(), tensors[k].flatten()[:1]])
    save_file(tensors, str(path), metadata={"zoo_checkpoint": raw_meta if raw_meta is not None else json.dumps(m)})


DAMAGED_CHECKPOINTS = {
    "metadata not JSON": (dict(raw_meta="{not json"), "metadata is not JSON"),
    "metadata deeply nested": (dict(raw_meta="[" * 100_000 + "]" * 100_000), "not JSON|JSON list"),
    "metadata a list": (dict(raw_meta="[1, 2]"), "metadata is a JSON list"),
    "epoch missing": (dict(meta=lambda m: m.pop("epoch")), "lacks 'epoch'"),
    "epoch a string": (dict(meta=lambda m: m.update(epoch="1")), "'epoch' must be an int >= 0, got '1'"),
    "epoch negative": (dict(meta=lambda m: m.update(epoch=-5)), "'epoch' must be an int >= 0, got -5"),
    "epoch beyond epochs": (dict(meta=lambda m: m.update(epoch=7)), "epoch 7 of a 2-epoch run"),
    "step a float": (dict(meta=lambda m: m.update(step=1.5)), "'step' must be an int"),
    "step_in_epoch past the epoch": (dict(meta=lambda m: m.update(step_in_epoch=99)), "step 99 within an epoch of 6"),
    "epochs zero": (dict(meta=lambda m: m.update(epochs=0)), "'epochs' must be an int >= 1"),
    "best_nll a string": (dict(meta=lambda m: m.update(best_nll="low")), "'best_nll' must be a number"),
    "identity missing": (dict(meta=lambda m: m.pop("identity")), "lacks 'identity'"),
    "trainer state missing": (dict(meta=lambda m: m.pop("trainer_state")), "lacks 'trainer_state'"),
    "a model tensor missing": (dict(drop=("model/",)), "model weights do not fit the model \\(missing .*table"),
    "a model tensor reshaped": (dict(reshape=("model/table",)), "model weights do not fit the model \\(reshaped table"),
    "EMA weights missing": (dict(drop=("ema/",)), "no EMA weights"),
    "optimizer tensors missing": (dict(drop=("trainer/",)), "missing entry"),
    "RNG state missing": (dict(drop=("rng/",)), "no RNG state for rank 0"),
}


@pytest.mark.parametrize("case", list(DAMAGED_CHECKPOINTS))
def test_a_damaged_checkpoint_is_one_cannot_resume_error(case, toy, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        quick(out, callbacks=[interrupt_at("step", 3)])
    damage, why = DAMAGED_CHECKPOINTS[case]
    _damage(out / CHECKPOINT, **damage)
    with pytest.raises(ZooError, match=f"^cannot resume from {out / CHECKPOINT}: .*({why})") as e:
        quick(out, resume=True)
    assert "\n" not in str(e.value)


def test_a_checkpoint_that_is_no_safetensors_file(toy, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(b"\x00" * 40)
    with pytest.raises(ZooError, match=f"^cannot resume from {out / CHECKPOINT}: cannot read checkpoint"):
        quick(out, resume=True)


def test_checkpoints_and_release_files_are_written_0644(toy, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        quick(out, epochs=1)
    finally:
        os.umask(old)
    files = [out / CHECKPOINT, *[p for p in (out / "release").rglob("*") if p.is_file()]]
    assert {
        str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in files if p.stat().st_mode & 0o777 != 0o644
    } == {}
