"""Model cards: generated from a release's config.json and the harness's results, never by hand.

A card is the `README.md` of a release folder (= a Hub model repo):

- YAML front matter, written with huggingface_hub's `ModelCardData` so the Hub
  accepts it: license, library name, tags, datasets, and a `model-index` whose
  metrics are the harness's numbers (each metric's `type` is the flattened key
  of the EvalResult, e.g. `nll.nats`, its `args` the standard error and n);
  a `zoo` entry keeps what re-running the harness needs (dataset, split, seed, n).
- Then: summary, paper, usage, training recipe, sample grid, a metrics table
  with the command that reproduces each number, provenance, limitations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError, ZooError
from ..eval.result import published_mark
from ..eval.trainlog import MILESTONES, lineage, time_to_reach
from ..registry import get_spec
from .summary import EvalSummary, fmt, summarize, verifiable

__all__ = ["default_limitations", "front_matter", "render_card"]

DEFAULT_LIMITATIONS = [
    "Trained and evaluated on one dataset only; the numbers say nothing about other image distributions.",
]
LIKELIHOOD_LIMITATIONS = [
    "Likelihoods are of the discrete images (nats per image, or bits per sub-pixel); they are not comparable with "
    "continuous densities on dequantised data unless converted with care.",
    "A high likelihood does not imply good samples, and sample-based metrics (FID, precision/recall, Parzen) are "
    "estimates that depend on the reference features and on the number of samples.",
]
AUTOREGRESSIVE_LIMITATIONS = [
    "Autoregressive sampling is sequential: one network evaluation per sub-pixel with the naive sampler.",
]
BOUND_LIMITATIONS = [
    "An approximate density: its likelihood is known only through a lower bound (the importance-weighted bound "
    "of Burda et al. 2016 with k samples), so its NLL is an upper bound, marked ≤; it tightens as k grows and is "
    "not ranked against exact NLLs without that mark.",
    "A bound is a Monte Carlo estimate: the same seed and k give the same number; another seed moves it by about "
    "its standard error.",
]
IMPLICIT_LIMITATIONS = [
    "An implicit model: it has no likelihood. Its Parzen-window log-likelihood is an estimate from samples that "
    "is known to rank models poorly (Theis et al. 2016), kept for comparison with the GAN literature.",
    "FID, precision and recall are estimates that depend on the reference classifier's features and on the "
    "number of samples; the FID floor (real test images against real training images) is their scale.",
]


def default_limitations(capabilities: Any) -> list[str]:
    """The card's standing limitations for a model with these capabilities (see `CAPABILITIES`)."""
    caps = set(capabilities or ())
    out = list(DEFAULT_LIMITATIONS)
    if "likelihood" in caps or "likelihood_bound" in caps:
        out += LIKELIHOOD_LIMITATIONS
        if "fast_sampler" in caps:  # the zoo's fast samplers are the autoregressive ones
            out += AUTOREGRESSIVE_LIMITATIONS
        if "likelihood_bound" in caps:
            out += BOUND_LIMITATIONS
    elif "sampler" in caps:
        out += IMPLICIT_LIMITATIONS
    return out


def front_matter(
    config: Mapping[str, Any], summary: EvalSummary | None, *, name: str, license: str | None = None, family: str = ""
) -> str:
    """The YAML front matter (without the `---` fences)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = (summary.dataset if summary else "") or config.get("dataset") or ""
    datasets = list(dict.fromkeys(d for d in (config.get("dataset"), summary.dataset if summary else None) if d))
    results = []
    if summary is not None:
        for key, value in summary.metrics.items():
            args: dict[str, Any] = {"n": summary.n, "seed": summary.seed}
            if key in summary.stderr:
                args["stderr"] = summary.stderr[key]
            args.update(summary.bounds.get(key.split(".")[0], {}))  # a bound: {"bound": "upper", "k": k}
            results.append(
                EvalResult(
                    task_type="unconditional-image-generation",
                    task_name="Density estimation and sampling",
                    dataset_type=dataset or "unknown",
                    dataset_name=dataset or "unknown",
                    dataset_split=summary.split,
                    metric_type=key,
                    metric_name=key,
                    metric_value=value,
                    metric_args={k: v for k, v in args.items() if v is not None},
                )
            )
    arch = config.get("architecture", "")
    tags = ["zoo", "image-generation", "likelihood", "safetensors", "pytorch"] + [t for t in (family, arch) if t]
    zoo_meta = {
        "architecture": arch,
        "tag": config.get("tag"),
        "zoo_version": config.get("zoo_version"),
        "dataset": dataset or None,
        "split": summary.split if summary else None,
        "n": summary.n if summary else None,
        "seed": summary.seed if summary else None,
        "limit": summary.limit if summary else None,
        "iw_samples": summary.provenance.get("iw_samples") if summary else None,
        "canonical_subset": _canonical_meta(summary.subset) if summary and summary.subset else None,
    }
    data = ModelCardData(
        license=license or "apache-2.0",
        library_name="zoo",
        tags=tags,
        datasets=datasets or None,
        pipeline_tag="unconditional-image-generation",
        model_name=name,
        eval_results=results or None,
        zoo={k: v for k, v in zoo_meta.items() if v is not None},
    )
    return data.to_yaml()


def _canonical_meta(sub: EvalSummary) -> dict[str, Any]:
    """The canonical-subset claims as the front matter keeps them (read back by `read_claims`)."""
    meta = {
        "limit": sub.limit,
        "seed": sub.seed,
        "n": sub.n,
        "indices_sha256": sub.provenance.get("subset.indices_sha256"),
        "num_samples": sub.provenance.get("num_samples"),
        "batch_size": sub.provenance.get("batch_size"),
        "iw_samples": sub.provenance.get("iw_samples"),
        "metrics": {k: v for k, v in sub.metrics.items() if verifiable(k)},
        "stderr": {k: v for k, v in sub.stderr.items() if verifiable(k)},
    }
    return {k: v for k, v in meta.items() if v not in (None, {})}


def _bound_label(summary: EvalSummary, key: str) -> str:
    """ " (upper bound, k=K)" when the flattened `key` is a bound, else ""."""
    bound = summary.bounds.get(key.split(".")[0])
    return f" ({bound['bound']} bound, k={bound['k']})" if bound else ""


def _canonical_section(sub: EvalSummary) -> list[str]:
    """The Results section's paragraph on the canonical-subset claims."""
    out = [
        f"On the canonical subset ({sub.n} images of the split, the seeded subset `--limit {sub.limit} --seed "
        f"{sub.seed}` draws; indices sha256 `{sub.provenance.get('subset.indices_sha256')}`), the same evaluation "
        f"gives the numbers below. They are deterministic, so `zoo publish --limit {sub.limit}` checks them as "
        "tightly as the full split:",
        "",
        "| metric | canonical subset | standard error |",
        "| --- | --- | --- |",
    ]
    out += [
        f"| {k}{_bound_label(sub, k)} | {sub.mark(k)}{fmt(v)} | {fmt(sub.stderr.get(k))} |"
        for k, v in sub.metrics.items()
        if verifiable(k)
    ]
    return out + [""]


def _further_section(name: str, further: Sequence[EvalSummary]) -> list[str]:
    """The Results section's table of the same weights' results at other settings (a bound at a larger k on a
    subset, say), each with the command that measures it; empty when there are none."""
    if not further:
        return []
    out = [
        "Measured on the same weights at other settings (`zoo publish` re-checks the tables above, not these; the "
        "command beside each number measures it again):",
        "",
        "| metric | value | standard error | images | reproduce |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in further:
        images = f"{s.n} (`--limit {s.limit} --seed {s.seed}`)" if s.limit else f"{s.n} (the whole split)"
        for k, v in s.metrics.items():
            out.append(
                f"| {k}{_bound_label(s, k)} | {s.mark(k)}{fmt(v)} | {fmt(s.stderr.get(k))} | {images} | "
                f"{_reproduce(name, s, k.split('.')[0])} |"
            )
    return out + [""]


def _usage_scoring_line(spec: Any) -> str:
    """The usage example's last line: what the model can say about an image it sampled."""
    capabilities = spec.capabilities if spec is not None else {"likelihood"}
    if "likelihood_bound" in capabilities:
        return "print(model.log_prob_bound(x, 100))     # a lower bound on the log-likelihood (k=100), nats per image"
    if "likelihood" in capabilities:
        return "print(model.log_prob(x))                  # exact log-likelihood, nats per image"
    return "# an implicit model: no log_prob; `zoo eval` scores its samples (fid, precision, recall)"


def _config_note(spec: Any, config: Mapping[str, Any]) -> str:
    """The spec's `config_note` when the release was built with exactly the spec's default config, else ""."""
    if spec is None or not spec.config_note:
        return ""
    from ..specs import filled_config  # imports the builder: only for a spec with a note

    try:
        same = filled_config(spec.name, config) == filled_config(spec.name, spec.config)
    except ZooError:  # a builder that cannot be imported here: say nothing rather than guess
        return ""
    return spec.config_note if same else ""


def _load_name(config: Mapping[str, Any], spec: Any, repo_id: str | None, folder: str | Path | None) -> str:
    """How the card's readers load these weights (see render_card)."""
    if repo_id:
        return f"hf-hub:{repo_id}"
    tag, sha = config.get("tag"), (config.get("weights") or {}).get("sha256")
    if spec is not None and tag and any(w.tag == tag and w.sha256 == sha for w in spec.weights):
        return f"{config['architecture']}.{tag}"
    return f"local-dir:{folder}" if folder is not None else "local-dir:PATH"


def _reproduce(name: str, summary: EvalSummary, metric: str) -> str:
    """The `zoo eval` command that measures `metric` of `summary` again (its k, subset and seed, unless defaults)."""
    k = summary.bounds.get(metric, {}).get("k")
    options = (f" --iw-samples {k}" if k else "") + (f" --limit {summary.limit}" if summary.limit else "")
    options += f" --seed {summary.seed}" if summary.seed else ""
    return f"`zoo eval {name} --dataset {summary.dataset} --metrics {metric}{options}`"


def render_card(
    config: Mapping[str, Any],
    results: Any = None,
    *,
    repo_id: str | None = None,
    recipe: Mapping[str, Any] | None = None,
    samples: str | None = None,
    license: str | None = None,
    hardware: str | None = None,
    limitations: list[str] | None = None,
    training: Mapping[str, Any] | None = None,
    validation: Sequence[Mapping[str, Any]] | None = None,
    curve: str | None = None,
    folder: str | Path | None = None,
    quality: Sequence[Mapping[str, Any]] | None = None,
    figures: Sequence[tuple[str, str]] = (),
    further: Sequence[Any] = (),
) -> str:
    """The model card (README.md) of a release, from its config.json and the harness's results.

    The card's code loads the weights by the name that works for them: `hf-hub:REPO` when
    published there (`repo_id`), `ARCH.TAG` once the registry pins these very weights, else
    `local-dir:FOLDER` (the release `folder`, when given).

    `training`: the run's summary (training.json: epochs, wall_time_s); with the registry's
    published numbers it fills the card's comparison section. `validation`: the run's
    validation records (train_log.jsonl, `kind` "valid"), for the card's training progress;
    `curve`: the file name of the training-curve picture beside the card. `quality`: records of
    fid/precision/recall after each epoch of a sampler's run (a release's fid_curve.jsonl);
    `figures`: (file, caption) pictures beside the card, shown with the training progress. `further`: more
    results of these weights at other settings (a release's eval_further.json), in a table of their own."""
    arch = config["architecture"]
    try:
        spec = get_spec(arch)
    except UnknownNameError:
        spec = None
    tag = config.get("tag")
    title = repo_id or (f"{arch}.{tag}" if tag else arch)
    load_name = _load_name(config, spec, repo_id, folder)
    summary = summarize(results) if results is not None else None
    ds = config.get("data_spec", {})
    weights = config.get("weights", {})

    out = [
        "---",
        front_matter(config, summary, name=title, license=license, family=spec.family if spec else "").rstrip(),
        "---",
        "",
    ]
    out += [f"# {title}", ""]
    if spec is not None:
        out += [f"{spec.summary}.", ""]
    trained_on = config.get("dataset")
    out += [
        f"Weights for the architecture `{arch}` of the zoo (likelihood-based image generative models), "
        f"for images of {ds.get('channels')}x{ds.get('height')}x{ds.get('width')} with {ds.get('levels')} levels"
        + (f", trained on `{trained_on}`" if trained_on else "")
        + (f", evaluated on `{summary.dataset}` ({summary.split} split)" if summary and summary.dataset else "")
        + ".",
        "",
    ]
    if spec is not None:
        out += ["## Paper", "", spec.paper, ""]
    out += [
        "## Usage",
        "",
        "```python",
        "import torch, zoo",
        f'model = zoo.load("{load_name}")          # eval mode, CPU float32, sha256-verified',
        "x = model.sample(16, generator=torch.Generator().manual_seed(0))   # integer levels",
        _usage_scoring_line(spec),
        "```",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | `{arch}`" + (f" (plugin `{config['plugin']}`)" if config.get("plugin") else "") + " |",
        f"| constructor arguments | `{json.dumps(config.get('config', {}), sort_keys=True)}` |",
        *([f"| why this config | {note} |"] if (note := _config_note(spec, config.get("config", {}))) else []),
        f"| data | {ds.get('channels')}x{ds.get('height')}x{ds.get('width')}, {ds.get('levels')} levels |",
        f"| parameters | {weights.get('num_parameters', '-')} |",
        f"| weights | `{weights.get('file', 'model.safetensors')}`, sha256 `{weights.get('sha256', '')}` |",
        f"| zoo version | {config.get('zoo_version', '-')} |",
        "",
    ]
    out += ["## Training recipe", ""]
    if recipe:
        out += ["```json", json.dumps(dict(recipe), indent=2, sort_keys=True, default=str), "```", ""]
    else:
        out += ["No recipe was recorded with these weights.", ""]
    if hardware:
        out += [f"Hardware and time: {hardware}", ""]
    bounded = bool(summary is not None and summary.bounds) or (
        spec is not None and "likelihood_bound" in spec.capabilities
    )
    out += training_progress(validation or [], curve, bounds=_validation_bounds(training, recipe) if bounded else ())
    out += quality_progress(quality or [], figures)
    if samples:
        out += [
            "## Samples",
            "",
            f"![samples from the model]({samples})",
            "",
            "Drawn with `model.sample(n, generator=torch.Generator().manual_seed(0))`.",
            "",
        ]
    out += ["## Results", ""]
    if summary is None:
        out += ["No evaluation results were recorded.", ""]
    else:
        out += [
            f"Measured by the zoo's harness on `{summary.dataset}` split `{summary.split}`"
            + (f", n = {summary.n}" if summary.n else "")
            + (f", seed {summary.seed}" if summary.seed is not None else "")
            + (f", limited to {summary.limit} images (a seeded random subset)" if summary.limit else "")
            + ".",
            "",
            "| metric | value | standard error | reproduce |",
            "| --- | --- | --- | --- |",
        ]
        for key, value in summary.metrics.items():
            mark = ("" if verifiable(key) else " (hardware-dependent)") + _bound_label(summary, key)
            unit = f" ({summary.units[key]})" if summary.units.get(key) else ""
            out.append(
                f"| {key}{unit}{mark} | {summary.mark(key)}{fmt(value)} | {fmt(summary.stderr.get(key))} | "
                f"{_reproduce(load_name, summary, key.split('.')[0])} |"
            )
        for metric, note in summary.notes.items():
            out.append(f"| {metric} | {note} | - | - |")
        asked = sorted(set(summary.metric_names) | {k.split(".")[0] for k in summary.notes})  # n/a ones too
        call: dict[str, Any] = {"dataset": summary.dataset, "split": summary.split, "metrics": asked}
        if summary.seed is not None:
            call["seed"] = summary.seed
        if summary.limit is not None:
            call["limit"] = summary.limit
        if summary.provenance.get("iw_samples"):
            call["iw_samples"] = summary.provenance["iw_samples"]
        args = ", ".join(f"{k}={v!r}" for k, v in call.items())
        out += ["", "The same numbers from Python:", "", "```python", f'zoo.evaluate("{load_name}", {args})', "```", ""]
        if summary.subset is not None:
            out += _canonical_section(summary.subset)
        out += _further_section(load_name, [summarize(r) for r in further])
        if summary.provenance:
            out += ["<details><summary>Provenance of these numbers</summary>", "", "| | |", "| --- | --- |"]
            out += [f"| {k} | {v} |" for k, v in sorted(summary.provenance.items()) if v is not None and v != ""]
            out += ["", "</details>", ""]
    if spec is not None and summary is not None:
        out += _comparison(spec, summary, recipe, training)
    out += ["## Limitations", ""]
    caps: Set[str]
    if spec is not None:
        caps = spec.capabilities
    else:  # an architecture this install does not know: judge by what was measured
        caps = (
            ({"likelihood_bound"} if summary.bounds else {"likelihood"})
            if summary is not None and "nll" in summary.metric_names
            else set()
        )
    out += [f"- {line}" for line in (list(limitations or []) + default_limitations(caps))]
    out += [
        "",
        "This card was generated by `zoo.save_pretrained` from the harness's results; do not edit the numbers by hand.",
        "",
    ]
    return "\n".join(out)


HIGHER_IS_BETTER = ("precision", "recall", "parzen")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d} h"


def _validation_bounds(training: Mapping[str, Any] | None, recipe: Mapping[str, Any] | None) -> list[tuple[int, int]]:
    """A bounded model's validation bounds: (first epoch, k) for each run behind its weights, on the lineage's
    epochs (each run validated with its recipe's `valid_iw_samples`; runs recorded before that setting, with 1)."""
    runs = lineage(training)
    if not runs:
        return [(1, int((recipe or {}).get("valid_iw_samples", 1)))]
    return [(start + 1, int(run.get("recipe", {}).get("valid_iw_samples", 1))) for start, run in runs]


def _bound_text(bounds: Sequence[tuple[int, int]]) -> str:
    """What a bounded model's validation NLL is: " (for this model the negative ELBO, an upper bound on the NLL)",
    or, when the runs behind the weights validated with different k, each run's bound and its epochs."""

    def name(k: int) -> str:
        return "the negative ELBO" if k == 1 else f"the negative importance-weighted bound with k={k}"

    bounds = [b for i, b in enumerate(bounds) if i == 0 or b[1] != bounds[i - 1][1]]  # a restart at the same k
    if len(bounds) == 1:
        return f" (for this model {name(bounds[0][1])}, an upper bound on the NLL)"
    spans = [
        f"{name(k)} for epochs {first}-{nxt - 1}" if nxt else f"{name(k)} from epoch {first} on"
        for (first, k), nxt in zip(bounds, [b[0] for b in bounds[1:]] + [0], strict=True)
    ]
    return f" (for this model an upper bound on the NLL: {'; '.join(spans)}; the values jump where the bound changes)"


def training_progress(
    validation: Sequence[Mapping[str, Any]], curve: str | None = None, *, bounds: Sequence[tuple[int, int]] = ()
) -> list[str]:
    """The card's "Training progress" section: the validation NLL after every epoch against the
    training wall time (time spent validating included, writing releases between stages not), and
    when the run first reached each milestone and its best. Empty without timed NLL records. `bounds`: a
    bounded model, whose validation NLL is the negative bound with k samples (1: the ELBO) from each first epoch
    (`(first epoch, k)` per run of the lineage), said so."""
    rows = [r for r in validation if r.get("nll") is not None and r.get("elapsed_s") is not None]
    if not rows:
        return []
    best = min(rows, key=lambda r: r["nll"])
    out = [
        "## Training progress",
        "",
        "Validation NLL (nats per image, EMA weights when the recipe keeps them) after each epoch, against the "
        "run's training wall time on the hardware above"
        + (", counted on from the runs whose weights it continued" if any(r.get("continued") for r in rows) else "")
        + (_bound_text(bounds) if bounds else "")
        + ":",
        "",
        "| epoch | valid NLL | wall time |",
        "| --- | --- | --- |",
    ]
    out += [
        f"| {r['epoch']} | {r['nll']:.2f}{' (best)' if r is best else ''}"
        f"{' (a fresh optimizer from this epoch on)' if r.get('continued') else ''} | {_clock(r['elapsed_s'])} |"
        for r in rows
    ]
    reached = []
    for nats in MILESTONES:
        t = time_to_reach(rows, nats)
        reached.append(f"{nats:.0f} nats: " + (_clock(t) if t is not None else "not reached"))
    reached.append(f"the best, {best['nll']:.2f} nats: {_clock(best['elapsed_s'])} (epoch {best['epoch']})")
    out += ["", "Time to reach " + "; ".join(reached) + ".", ""]
    if curve:
        out += [f"![training curve]({curve})", ""]
    return out


def quality_progress(records: Sequence[Mapping[str, Any]], figures: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The card's "Sample quality during training" section for a model without a likelihood: fid,
    precision and recall after each epoch (as `benchmarks/gan_fid_curve.py` records them) against the
    run's training wall time, and the pictures in `figures`. Empty when there is neither."""
    if not records and not figures:
        return []
    out = ["## Sample quality during training", ""]
    if records:
        out += [
            "FID (with the real-data floor), precision and recall of 1000 samples against the canonical subset "
            "of the test split (1000 images, seed 0), after each epoch, against the run's training wall time "
            "(`python benchmarks/gan_fid_curve.py RUN_DIR`, run beside the training):",
            "",
            "| epoch | fid | floor | precision | recall | wall time |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {r['epoch']} | {r['fid']:.2f} | {r.get('fid_floor') or float('nan'):.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {_clock(r['elapsed_s'])} |"
            for r in records
        ]
        out += [""]
    for file, caption in figures:
        out += [f"![{caption}]({file})", "", caption, ""]
    return out


def _comparison(
    spec: Any, summary: EvalSummary, recipe: Mapping[str, Any] | None, training: Mapping[str, Any] | None
) -> list[str]:
    """The card's "Against the published numbers" section (empty when the registry gives none)."""
    ref = dict(spec.reference_results.get(summary.dataset, {}))
    source = ref.pop("source", "")
    comparable = ref.pop("comparable", True)  # False: the same protocol on other data, shown for orientation
    exact = {"exact": ref.pop("exact", False)}  # True: an exact value, beside this model's bound
    rows, reached = [], []
    for metric, published in ref.items():
        value = summary.metrics.get(metric)
        if value is None:
            continue
        better = value >= published if metric in HIGHER_IS_BETTER else value <= published
        reached.append(better)
        verdict = (
            "not comparable"
            if not comparable
            else f"{'reached' if better else 'not reached'} ({value - published:+.2f})"
        )
        rows.append(
            f"| {metric} | {published_mark(exact, bound=bool(summary.mark(metric)))}{published:.2f} "
            f"| {summary.mark(metric)}{value:.2f} | {verdict} |"
        )
    if not rows:
        return []
    out = [
        "## Against the published numbers",
        "",
        f"Published: {source}." if source else "",
        "",
        "| metric | published | this release | |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    name = (recipe or {}).get("name")
    full = spec.recipes.get(name, {}).get("epochs") if name else None
    done = (training or {}).get("epochs") or (recipe or {}).get("epochs")
    runs = lineage(training)
    chained = len(runs) > 1  # a chain: the last run's share of its recipe says little of the whole
    if full and done and (chained or done < full):
        if chained:
            line = (
                f"These weights come from {len(runs)} runs in a row, each from the last one's weights "
                f"({runs[-1][0] + done} epochs in all; the training curve above shows them), not from one run of "
                f"the {full} epochs of the `{name}` recipe"
            )
        else:
            line = (
                f"These weights come from {done} of the {full} epochs of the `{name}` recipe "
                f"(`zoo train {spec.name} --recipe {name}` runs them all)"
            )
            wall = (training or {}).get("wall_time_s")
            if wall:
                line += (
                    "; at this run's speed the full recipe takes about "
                    f"{wall / done * full / 3600:.1f} h on the same hardware"
                )
        if comparable and all(reached):
            line += ". These weights reach the published number already"
        elif comparable and not chained:
            line += ". Whether the full recipe reaches the published number has not been measured"
        out += [line + ".", ""]
    return out
