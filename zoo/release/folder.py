"""Release folders: `save_pretrained` writes one, `render_release_card` rewrites its card from its files.

A release folder is exactly a Hub model repo (see zoo.weights): config.json and model.safetensors,
the card README.md, samples.png, and, from `zoo train`, training.json, eval.json and the logs.
The card is always rendered from files: config.json, eval.json (the harness's results) and
training.json (recipe, hardware, wall time); nobody types its numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..eval.trainlog import LOG_NAME, continued, earlier_history, lineage, validation_records
from ..util import is_int, sha256_file, write_atomic
from ..weights import CARD_NAME, CONFIG_NAME, SAMPLES_NAME, WEIGHTS_NAME, read_config, save_weights, state_sha256
from .card import render_card

__all__ = ["save_pretrained", "render_release_card"]

EVAL_NAME = "eval.json"
FURTHER_NAME = "eval_further.json"  # `zoo eval NAME ... --out FILE` of these weights at other settings (k=5000, say)
TRAINING_NAME = "training.json"
CURVE_NAME = "training_curve.png"
QUALITY_NAME = "fid_curve.jsonl"  # a sampler's fid/precision/recall per epoch (benchmarks/gan_fid_curve.py)
FIGURES = (
    (
        "growth.png",
        "How the images grow: the same latents after successive epochs of the run, one row each "
        "(lower resolutions nearest-upsampled to full size; growth.txt names each row's stage)",
    ),
)


def _write_samples(model: Any, samples: Any, path: Path) -> None:
    import torch

    from ..images import save_grid

    if isinstance(samples, (str, Path)):
        write_atomic(path, Path(samples).read_bytes())
        return
    if is_int(samples):
        samples = model.sample(samples, generator=torch.Generator().manual_seed(0))
    if not isinstance(samples, torch.Tensor):
        raise ValueError(
            f"samples must be a tensor of levels (n, C, H, W), an image path or an int, got {type(samples).__name__}"
        )
    spec = model.data_spec
    save_grid(spec.validate(samples, name="samples"), path, spec.levels, scale=2)


def save_pretrained(
    model: Any,
    directory: str | Path,
    *,
    results: Any = None,
    samples: Any = None,
    recipe: Mapping[str, Any] | None = None,
    tag: str | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    hardware: str | None = None,
    limitations: list[str] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write a release folder: `config.json`, `model.safetensors`, and, when given, the card and samples.

    - `results`: an `EvalResult` (or its dict) from `zoo.evaluate`; with it, `README.md`
      (the model card) is generated. Cards are never written by hand.
    - `samples`: integer levels `(n, C, H, W)`, an image file to copy, or an int `n`
      to draw `n` samples from the model with seed 0; written as `samples.png`.
    - `dataset`: the dataset the weights were trained on (recorded in config.json and the card).
    - `recipe`, `hardware`, `limitations`, `license`, `repo_id`: shown in the card; `training`
      (the run's summary: epochs, wall_time_s) sets the published numbers in context.
    """
    folder = Path(directory).expanduser()
    cfg = save_weights(model, folder, tag=tag, dataset=dataset)
    if samples is not None:
        _write_samples(model, samples, folder / SAMPLES_NAME)
    if results is not None:
        card = render_card(
            cfg,
            results,
            repo_id=repo_id,
            recipe=recipe,
            samples=SAMPLES_NAME if (folder / SAMPLES_NAME).is_file() else None,
            license=license,
            hardware=hardware,
            limitations=limitations,
            training=training,
            folder=folder,
        )
        write_atomic(folder / CARD_NAME, card)
    return folder


# --------------------------------------------------------------------------------------------
# zoo card DIR
# --------------------------------------------------------------------------------------------
def render_release_card(
    directory: str | Path,
    *,
    metrics: str | None = None,
    limit: int | None = None,
    progress: bool = False,
    canonical: bool = True,
    iw_samples: int | None = None,
) -> Path:
    """Rewrite a release folder's card (README.md) from its files: config.json, training.json
    (recipe, hardware, wall time) and eval.json (the harness's results).

    With `metrics` (e.g. "fid,precision,recall,parzen"), the harness first scores the folder's
    weights on the test split of the dataset they were trained on, and eval.json is replaced;
    `iw_samples` sets k for a bounded model's nll (default: the harness's 5000).
    With `canonical` (the default), eval.json's claims on the canonical subset are computed when
    missing or stale (`zoo.release.canonical`); `zoo train` computes them itself, on every process.
    The weights and samples are not touched. Returns the card's path."""
    folder = Path(directory).expanduser()
    cfg = read_config(folder / CONFIG_NAME)
    if sha256_file(folder / WEIGHTS_NAME) != cfg["weights"]["sha256"]:
        raise ZooError(f"{folder / WEIGHTS_NAME} does not match the sha256 in its config.json; not rendering its card")
    eval_path = folder / EVAL_NAME
    if metrics:
        from ..eval import evaluate
        from ..factory import load

        dataset = cfg.get("dataset") or cfg.get("tag")
        result = evaluate(
            load(f"local-dir:{folder}"),
            dataset=dataset,
            split="test",
            metrics=metrics,
            limit=limit,
            iw_samples=iw_samples,
            progress=progress,
        )
        write_atomic(eval_path, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if not eval_path.is_file():
        raise ZooError(f"{folder} has no {EVAL_NAME}: pass metrics to score the weights first")
    results = _results_of_these_weights(folder, cfg, json.loads(eval_path.read_text()))
    if canonical:
        results = _with_canonical_subset(folder, cfg, results, progress=progress)
    write_atomic(eval_path, json.dumps(results, indent=2, default=str) + "\n")
    training_path = folder / TRAINING_NAME
    training = json.loads(training_path.read_text()) if training_path.is_file() else None
    recipe = hardware = limitations = None
    if training:
        recipe = {"name": training.get("recipe_name"), **training.get("recipe", {})}
        hardware = training_hardware(training)
        if training.get("limit"):
            limitations = [
                f"trained on the first {training['limit']} images of the "
                f"{training.get('recipe', {}).get('train_split', 'train')} split only (--limit)"
            ]
    log_path = folder / LOG_NAME  # its validation records on the clock of the runs behind the weights
    validation = continued(validation_records(log_path), training) if log_path.is_file() else None
    card = render_card(
        cfg,
        results,
        recipe=recipe,
        hardware=hardware,
        training=training,
        limitations=limitations,
        samples=SAMPLES_NAME if (folder / SAMPLES_NAME).is_file() else None,
        validation=validation,
        curve=CURVE_NAME if (folder / CURVE_NAME).is_file() else None,
        folder=folder,
        quality=_read_jsonl(folder / QUALITY_NAME),
        figures=[(f, c) for f, c in FIGURES if (folder / f).is_file()],
        further=_further_results(folder, cfg),
    )
    write_atomic(folder / CARD_NAME, card)
    return folder / CARD_NAME


def _further_results(folder: Path, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The results in the folder's eval_further.json (a `zoo eval --out` list), each checked to be of the
    folder's weights; none when there is no such file."""
    path = folder / FURTHER_NAME
    if not path.is_file():
        return []
    loaded = json.loads(path.read_text())
    results = loaded if isinstance(loaded, list) else [loaded]
    for r in results:
        weights = (r.get("provenance") or {}).get("weights") if isinstance(r, dict) else None
        if weights != cfg["weights"]["sha256"]:
            raise ZooError(
                f"{path} holds a result of weights {weights}, not of this folder's model.safetensors "
                f"({cfg['weights']['sha256']}); measure them again (zoo eval local-dir:{folder} ... --out {path})"
            )
    return results


def _read_jsonl(path: Path) -> list[dict[str, Any]] | None:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else None


def _results_of_these_weights(folder: Path, cfg: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """eval.json's results, checked to be of the folder's weights and naming them by the file's sha256.

    `zoo train` scores the model in memory before writing model.safetensors, so the harness records the
    sha256 of the tensors (serialised without metadata), not of the file. When the file holds exactly
    those tensors the provenance is rewritten to the file's sha256; results of other weights are refused."""
    prov = results.get("provenance") or {}
    file_sha = cfg["weights"]["sha256"]
    if prov.get("weights") in (None, file_sha):
        return results
    if prov.get("weights_source") != "in-memory state_dict":
        raise ZooError(
            f"{folder}/{EVAL_NAME} was measured on weights {prov.get('weights')}, "
            f"not on this folder's model.safetensors ({file_sha})"
        )
    from ..factory import load

    if state_sha256(load(f"local-dir:{folder}")) != prov["weights"]:
        raise ZooError(
            f"{folder}/{EVAL_NAME} was measured on other tensors than this folder's model.safetensors; "
            "re-score them (zoo card DIR --metrics ...)"
        )
    note = "scored in memory before being written; model.safetensors holds the same tensors"

    def renamed(p: dict[str, Any]) -> dict[str, Any]:
        return {
            **p,
            "weights": file_sha,
            "weights_source": "model.safetensors",
            "note": "; ".join(x for x in (p.get("note"), note) if x),
        }

    out = {**results, "provenance": renamed(prov)}
    sub = results.get("canonical_subset")
    if isinstance(sub, dict) and (sub.get("provenance") or {}).get("weights") == prov["weights"]:
        out["canonical_subset"] = {**sub, "provenance": renamed(sub["provenance"])}
    return out


def _with_canonical_subset(
    folder: Path, cfg: dict[str, Any], results: dict[str, Any], *, progress: bool = False
) -> dict[str, Any]:
    """`results` with claims on the canonical subset (`zoo.release.canonical`): kept when they are of the
    same weights, dataset, seed and metrics, else computed by loading the folder (on the CPU). Left out
    when the dataset is not registered here (nothing could verify them) or the split is that small."""
    from ..errors import UnknownNameError
    from .canonical import canonical_is_current, canonical_subset

    if canonical_is_current(results):
        return results
    results = {k: v for k, v in results.items() if k != "canonical_subset"}
    from ..eval.harness import get_dataset
    from ..factory import load

    try:
        get_dataset(str((results.get("provenance") or {}).get("dataset") or cfg.get("dataset")))
    except UnknownNameError:
        return results
    sub = canonical_subset(load(f"local-dir:{folder}"), results, progress=progress)
    if sub is None:
        return results
    model = results.get("model", sub["model"])  # the release's name, not the folder's path on this machine
    sub = {
        **sub,
        "model": model,
        "provenance": {**sub["provenance"], "model": (results.get("provenance") or {}).get("model", model)},
    }
    return {**results, "canonical_subset": sub}


# --------------------------------------------------------------------------------------------
# training.json, as the card tells it
# --------------------------------------------------------------------------------------------
def training_hardware(training: Mapping[str, Any]) -> str:
    """The card's "Hardware and time" line: wall time, epochs and the commands that ran; for a run that started
    from a release's weights with a recorded history, the totals, then every run from the first."""
    history = earlier_history(training)
    if not history:
        return _run_text(training)
    epochs = history["epochs"] + int(training.get("epochs") or 0)
    minutes = (history["wall_time_s"] + float(training.get("wall_time_s") or 0)) / 60
    return f"{minutes:.1f} min and {epochs} epochs in all. First {_runs_text(training)}"


def _runs_text(training: Mapping[str, Any]) -> str:
    """The runs behind a run's weights, the first first: "A. Then, from those weights ...: B"."""
    return ". Then, from those weights with a fresh optimizer: ".join(_run_text(run) for _, run in lineage(training))


def _run_text(training: Mapping[str, Any]) -> str:
    """One run: its hardware (when one machine ran it all), wall time, epochs and commands."""
    epochs = training.get("epochs")
    text = (
        f"{training.get('wall_time_s', 0) / 60:.1f} min, {epochs} epoch{'' if epochs == 1 else 's'}"
        f" ({training_commands(training)})"
    )
    if _stage_hardware(training) is None:  # one machine for the whole run; else each command names its own
        text = f"{_hardware_text(training.get('hardware'))}, {text}"
    return text


def _hardware_text(hardware: Any) -> str:
    return str(hardware).replace(" 1 threads)", " 1 thread)")  # runs recorded before the singular was fixed


def _stage_hardware(training: Mapping[str, Any]) -> list[str] | None:
    """Each stage's hardware when the stages of a run recorded different ones, else None (one machine)."""
    stages = training.get("stages") or []
    hardware = [_hardware_text(s["hardware"]) for s in stages if s.get("hardware")]
    if len(hardware) != len(stages) or len(set(hardware)) < 2:
        return None
    return hardware


def training_commands(training: Mapping[str, Any]) -> str:
    """The `zoo train` command(s) that produced a run, from its training.json: one command, or the
    first one and each `--resume` that changed the number of epochs (the cosine schedule follows them).
    Three or more `--resume` stages in a row that add the same number of epochs each, on the same hardware,
    are written once: "`... --epochs E ... --resume` for E = 2, 3, ..., 29"."""
    base = ["zoo", "train", str(training.get("model")), "--dataset", str(training.get("dataset"))]
    if training.get("recipe_name") not in (None, "default"):
        base += ["--recipe", str(training["recipe_name"])]
    extra = ["--limit", str(training["limit"])] if training.get("limit") else []
    for key, value in (training.get("set") or {}).items():  # the run's --set values (older runs lack them)
        extra += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    stages = training.get("stages") or [{"epochs": training.get("epochs"), "from_epoch": 0}]
    named = _stage_hardware(training)  # None: one machine for the whole run
    hardware: list[str | None] = list(named) if named else [None] * len(stages)
    stopped = [""] * len(stages)  # a stage the next one did not continue from its end
    for i in range(1, len(stages)):
        if stages[i - 1]["epochs"] != stages[i]["from_epoch"]:
            done = stages[i]["from_epoch"]
            epochs_done = f"{done} epoch{'' if done == 1 else 's'} done"
            stopped[i - 1] = f" stopped after {stages[i].get('from_step')} steps ({epochs_done})"

    init = stages[0].get("init_from")  # the release the run's weights started from, if any

    def command(epochs: str, resume: bool) -> str:
        start = [] if resume or not init else ["--init-from", str(init["name"])]
        return "`" + " ".join(base + ["--epochs", epochs] + extra + start + (["--resume"] if resume else [])) + "`"

    parts: list[str] = []
    i = 0
    while i < len(stages):
        j = i  # stages i..j form one group: resumed, an even step, the same hardware, none stopped before j
        step = stages[i + 1]["epochs"] - stages[i]["epochs"] if i and i + 1 < len(stages) else None
        while (
            step
            and step > 0
            and j + 1 < len(stages)
            and not stopped[j]
            and hardware[j + 1] == hardware[i]
            and stages[j + 1]["epochs"] - stages[j]["epochs"] == step
        ):
            j += 1
        if j - i >= 2:
            values = [str(s["epochs"]) for s in stages[i : j + 1]]
            values = values if len(values) == 3 else values[:2] + ["...", values[-1]]
            parts.append(command("E", True) + " for E = " + ", ".join(values))
        else:
            j = i
            parts.append(command(str(stages[i]["epochs"]), i > 0))
        if hardware[i] is not None:
            parts[-1] += f" on {hardware[i]}"
        if i == 0 and init:
            parts[-1] += f" (from the weights of sha256 {str(init['sha256'])[:12]}…, a fresh optimizer)"
        parts[-1] += stopped[j]
        i = j + 1
    if len(parts) == 1:
        return parts[0]
    return ", then ".join(parts) + " in the same --out folder"
