"""Model cards: generated from a release's config.json and the harness's EvalResult, never by hand.

A card is the `README.md` of a release folder (= a Hub model repo):

- YAML front matter, written with huggingface_hub's `ModelCardData` so the Hub
  accepts it: license, library name, tags, datasets, and a `model-index` whose
  metrics are the harness's numbers (each metric's `type` is the flattened key
  of the EvalResult, e.g. `nll.nats`, its `args` the standard error and n);
  a `zoo` entry keeps what re-running the harness needs (dataset, split, seed, n).
- Then: summary, paper, usage, training recipe, sample grid, a metrics table
  with the command that reproduces each number, provenance, limitations.

`read_claims` reads the numbers back from a card, and `compare_claims` checks
them against a fresh `zoo.evaluate` run: this is what `zoo publish` verifies.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["EvalSummary", "ClaimCheck", "summarize", "render_card", "read_claims", "compare_claims", "front_matter"]

# Keys whose numbers depend on the machine: shown in the card, never verified.
UNVERIFIED_PREFIXES = ("speed",)
UNVERIFIED_WORDS = ("per_s", "per_sec", "wall", "seconds", "time_s", "_time")
STDERR_WORDS = ("stderr", "std_err", "standard_error", "sem")
META_KEYS = ("n", "count", "num", "samples", "n_samples", "num_samples", "n_real", "features", "sample_batch")  # not claims

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
    if "likelihood" in caps:
        out += LIKELIHOOD_LIMITATIONS
        if "fast_sampler" in caps:  # the zoo's fast samplers are the autoregressive ones
            out += AUTOREGRESSIVE_LIMITATIONS
    elif "sampler" in caps:
        out += IMPLICIT_LIMITATIONS
    return out


@dataclass
class EvalSummary:
    """An EvalResult reduced to what a card shows and what publishing verifies."""

    dataset: str = ""
    split: str = "test"
    n: int | None = None
    seed: int | None = None
    limit: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # flattened key -> value, e.g. "nll", "nll.bits_per_dim"
    stderr: dict[str, float] = field(default_factory=dict)  # flattened key -> standard error
    units: dict[str, str] = field(default_factory=dict)  # flattened key -> unit, when the harness gives one
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is n/a
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        """The harness metrics behind the numbers (`nll`, `fid`, ...), for `zoo.evaluate(metrics=...)`."""
        return sorted({k.split(".")[0] for k in self.metrics})


def _as_dict(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return dict(result)
    for attr in ("to_dict", "as_dict", "dict"):
        fn = getattr(result, attr, None)
        if callable(fn):
            d = fn()
            if isinstance(d, Mapping):
                return dict(d)
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    raise TypeError(f"expected an EvalResult or a dict of results, got {type(result).__name__}")


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:  # numpy / torch scalars
        return float(v.item())
    except (AttributeError, TypeError, ValueError):
        return None


def _is_stderr(key: str) -> bool:
    return any(w in key.lower() for w in STDERR_WORDS)


def _stderr_target(name: str, leaf: str, siblings: list[str]) -> str:
    """Which value a standard-error entry belongs to: `nats_stderr` -> `nats`; a lone `stderr` -> the only value."""
    low = leaf.lower()
    for w in STDERR_WORDS:
        for cand in (low.replace(f"_{w}", ""), low.replace(f"{w}_", "")):
            if cand != low and cand in siblings:
                return f"{name}.{cand}"
    values = [s for s in siblings if not _is_stderr(s) and s not in META_KEYS]
    if len(values) == 1:
        return f"{name}.{values[0]}"
    if "nats" in values:  # the harness's nll: nats per image first
        return f"{name}.nats"
    return f"{name}.{values[0]}" if values else name


def summarize(result: Any) -> EvalSummary:
    """Reduce an EvalResult (or its `to_dict()`, or a plain dict) to an `EvalSummary`.

    `dataset`, `split`, `n`, `seed`, `limit` are read from the top level or `provenance`.
    `metrics` maps a metric name to one of:

    - the harness's `MetricValue` layout `{"value", "unit", "stderr", "details", "note"}`:
      the value is claimed as `name`, numeric details as `name.detail` (e.g.
      `nll.bits_per_dim`, its `stderr_bits_per_dim` as that key's standard error);
      `value: None` is n/a, with `note` as the reason;
    - a number; a mapping of numbers (`{"nats": 80.1, "stderr": 0.2}` -> `nll.nats`);
      or a string / `{"status": "n/a", "reason": ...}` for a metric that does not apply.
    """
    if isinstance(result, EvalSummary):
        return result
    d = _as_dict(result)
    prov = dict(d.get("provenance") or {})
    get = lambda k, default=None: d.get(k, prov.get(k, default))  # noqa: E731
    dataset = get("dataset") or ""
    if isinstance(dataset, Mapping):
        prov.setdefault("dataset_checksum", dataset.get("checksum"))
        dataset = dataset.get("name", "")
    s = EvalSummary(dataset=str(dataset), split=str(get("split") or "test"))
    for key in ("n", "seed", "limit"):
        v = get(key)
        setattr(s, key, int(v) if _number(v) is not None else None)
    flat = {**prov, **d}
    for k, v in list(flat.items()):
        if isinstance(v, Mapping) and k not in ("metrics", "provenance", "data_spec"):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, (list, dict))})
    s.provenance = {k: v for k, v in flat.items()
                    if k not in ("metrics", "provenance", "schema") and not isinstance(v, (list, dict)) and v is not None}
    metrics = d.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"EvalResult.metrics must be a mapping of metric name to values, got {type(metrics).__name__}")
    for name, value in metrics.items():
        num = _number(value)
        if num is not None:
            s.metrics[name] = num
            continue
        if isinstance(value, str):
            s.notes[name] = value
            continue
        if not isinstance(value, Mapping):
            continue
        if "value" in value and ("details" in value or "stderr" in value or "unit" in value):  # a MetricValue
            _add_metric_value(s, str(name), value)
            continue
        if str(value.get("status", "")).lower() in ("n/a", "na", "unsupported", "skipped"):
            s.notes[name] = f"n/a, {value.get('reason', '')}".rstrip(", ")
            continue
        leaves = {k: _number(v) for k, v in value.items()}
        numeric = [k for k, v in leaves.items() if v is not None]
        for k in numeric:
            if _is_stderr(k):
                s.stderr[_stderr_target(name, k, numeric)] = leaves[k]
            elif k in META_KEYS:
                continue
            else:
                s.metrics[f"{name}.{k}"] = leaves[k]
    if not s.metrics and not s.notes:
        raise ValueError("the EvalResult has no metrics to report")
    return s


def _add_metric_value(s: EvalSummary, name: str, mv: Mapping[str, Any]) -> None:
    value = _number(mv.get("value"))
    if value is None:
        note = mv.get("note") or ""
        s.notes[name] = f"n/a ({note})" if note else "n/a"
        return
    s.metrics[name] = value
    if mv.get("unit"):
        s.units[name] = str(mv["unit"])
    se = _number(mv.get("stderr"))
    if se is not None:
        s.stderr[name] = se
    details = mv.get("details") or {}
    leaves = {k: _number(v) for k, v in details.items()}
    numeric = [k for k, v in leaves.items() if v is not None]
    for k in numeric:
        if _is_stderr(k):
            low = k.lower()
            for w in STDERR_WORDS:  # stderr_bits_per_dim / bits_per_dim_stderr -> bits_per_dim
                target = next((c for c in (low.replace(f"{w}_", ""), low.replace(f"_{w}", "")) if c != low and c in numeric), None)
                if target:
                    s.stderr[f"{name}.{target}"] = leaves[k]
                    break
        elif k not in META_KEYS:
            s.metrics[f"{name}.{k}"] = leaves[k]
            if "bits_per_dim" in k:
                s.units[f"{name}.{k}"] = "bits/dim"


def _verifiable(key: str) -> bool:
    low = key.lower()
    return not low.startswith(UNVERIFIED_PREFIXES) and not any(w in low for w in UNVERIFIED_WORDS)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def front_matter(config: Mapping[str, Any], summary: EvalSummary | None, *, name: str, license: str | None = None,
                 family: str = "") -> str:
    """The YAML front matter (without the `---` fences)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = (summary.dataset if summary else "") or config.get("dataset") or ""
    datasets = list(dict.fromkeys(d for d in (config.get("dataset"), summary.dataset if summary else None) if d))
    results = []
    if summary is not None:
        for key, value in summary.metrics.items():
            args = {"n": summary.n, "seed": summary.seed}
            if key in summary.stderr:
                args["stderr"] = summary.stderr[key]
            results.append(EvalResult(
                task_type="unconditional-image-generation", task_name="Density estimation and sampling",
                dataset_type=dataset or "unknown", dataset_name=dataset or "unknown", dataset_split=summary.split,
                metric_type=key, metric_name=key, metric_value=value,
                metric_args={k: v for k, v in args.items() if v is not None},
            ))
    arch = config.get("architecture", "")
    tags = ["zoo", "image-generation", "likelihood", "safetensors", "pytorch"] + [t for t in (family, arch) if t]
    zoo_meta = {
        "architecture": arch, "tag": config.get("tag"), "zoo_version": config.get("zoo_version"),
        "dataset": dataset or None, "split": summary.split if summary else None,
        "n": summary.n if summary else None, "seed": summary.seed if summary else None,
        "limit": summary.limit if summary else None,
    }
    data = ModelCardData(
        license=license or "apache-2.0", library_name="zoo", tags=tags, datasets=datasets or None,
        pipeline_tag="unconditional-image-generation", model_name=name, eval_results=results or None,
        zoo={k: v for k, v in zoo_meta.items() if v is not None},
    )
    return data.to_yaml()


def _reproduce(name: str, summary: EvalSummary, metric: str) -> str:
    return f"`zoo eval {name} --dataset {summary.dataset} --metrics {metric}`"


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
) -> str:
    """The model card (README.md) of a release, from its config.json and the harness's results.

    `training`: the run's summary (training.json: epochs, wall_time_s); with the registry's
    published numbers it fills the card's comparison section."""
    from .errors import UnknownNameError
    from .registry import get_spec

    arch = config["architecture"]
    try:
        spec = get_spec(arch)
    except UnknownNameError:
        spec = None
    tag = config.get("tag")
    title = repo_id or (f"{arch}.{tag}" if tag else arch)
    load_name = f"hf-hub:{repo_id}" if repo_id else (f"{arch}.{tag}" if tag else "local-dir:PATH")
    summary = summarize(results) if results is not None else None
    ds = config.get("data_spec", {})
    weights = config.get("weights", {})

    out = ["---", front_matter(config, summary, name=title, license=license, family=spec.family if spec else "").rstrip(), "---", ""]
    out += [f"# {title}", ""]
    if spec is not None:
        out += [f"{spec.summary}.", ""]
    trained_on = config.get("dataset")
    out += [
        f"Weights for the architecture `{arch}` of the zoo (likelihood-based image generative models), "
        f"for images of {ds.get('channels')}x{ds.get('height')}x{ds.get('width')} with {ds.get('levels')} levels"
        + (f", trained on `{trained_on}`" if trained_on else "")
        + (f", evaluated on `{summary.dataset}` ({summary.split} split)" if summary and summary.dataset else "") + ".",
        "",
    ]
    if spec is not None:
        out += ["## Paper", "", spec.paper, ""]
    out += [
        "## Usage", "",
        "```python",
        "import torch, zoo",
        f'model = zoo.load("{load_name}")          # eval mode, CPU float32, sha256-verified',
        "x = model.sample(16, generator=torch.Generator().manual_seed(0))   # integer levels",
        "print(model.log_prob(x))                  # exact log-likelihood, nats per image",
        "```", "",
        "## Model", "",
        "| | |", "| --- | --- |",
        f"| architecture | `{arch}`" + (f" (plugin `{config['plugin']}`)" if config.get("plugin") else "") + " |",
        f"| constructor arguments | `{json.dumps(config.get('config', {}), sort_keys=True)}` |",
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
    if samples:
        out += ["## Samples", "", f"![samples from the model]({samples})", "",
                "Drawn with `model.sample(n, generator=torch.Generator().manual_seed(0))`.", ""]
    out += ["## Results", ""]
    if summary is None:
        out += ["No evaluation results were recorded.", ""]
    else:
        out += [
            f"Measured by the zoo's harness on `{summary.dataset}` split `{summary.split}`"
            + (f", n = {summary.n}" if summary.n else "") + (f", seed {summary.seed}" if summary.seed is not None else "")
            + (f", limited to {summary.limit} images" if summary.limit else "") + ".",
            "",
            "| metric | value | standard error | reproduce |",
            "| --- | --- | --- | --- |",
        ]
        for key, value in summary.metrics.items():
            mark = "" if _verifiable(key) else " (hardware-dependent)"
            unit = f" ({summary.units[key]})" if summary.units.get(key) else ""
            out.append(f"| {key}{unit}{mark} | {_fmt(value)} | {_fmt(summary.stderr.get(key))} | {_reproduce(load_name, summary, key.split('.')[0])} |")
        for metric, note in summary.notes.items():
            out.append(f"| {metric} | {note} | - | - |")
        asked = sorted(set(summary.metric_names) | {k.split(".")[0] for k in summary.notes})  # n/a ones too
        call = {"dataset": summary.dataset, "split": summary.split, "metrics": asked}
        if summary.seed is not None:
            call["seed"] = summary.seed
        if summary.limit is not None:
            call["limit"] = summary.limit
        args = ", ".join(f"{k}={v!r}" for k, v in call.items())
        out += ["", "The same numbers from Python:", "", "```python", f'zoo.evaluate("{load_name}", {args})', "```", ""]
        if summary.provenance:
            out += ["<details><summary>Provenance of these numbers</summary>", "", "| | |", "| --- | --- |"]
            out += [f"| {k} | {v} |" for k, v in sorted(summary.provenance.items()) if v is not None and v != ""]
            out += ["", "</details>", ""]
    if spec is not None and summary is not None:
        out += _comparison(spec, summary, recipe, training)
    out += ["## Limitations", ""]
    if spec is not None:
        caps = spec.capabilities
    else:  # an architecture this install does not know: judge by what was measured
        caps = {"likelihood"} if summary is not None and "nll" in summary.metric_names else set()
    out += [f"- {line}" for line in (list(limitations or []) + default_limitations(caps))]
    out += ["", "This card was generated by `zoo.save_pretrained` from the harness's results; do not edit the numbers by hand.", ""]
    return "\n".join(out)


HIGHER_IS_BETTER = ("precision", "recall", "parzen")


def _comparison(spec: Any, summary: EvalSummary, recipe: Mapping[str, Any] | None,
                training: Mapping[str, Any] | None) -> list[str]:
    """The card's "Against the published numbers" section (empty when the registry gives none)."""
    ref = dict(spec.reference_results.get(summary.dataset, {}))
    source = ref.pop("source", "")
    comparable = ref.pop("comparable", True)  # False: the same protocol on other data, shown for orientation
    rows = []
    for metric, published in ref.items():
        value = summary.metrics.get(metric)
        if value is None:
            continue
        better = value >= published if metric in HIGHER_IS_BETTER else value <= published
        verdict = ("not comparable" if not comparable else
                   f"{'reached' if better else 'not reached'} ({value - published:+.2f})")
        rows.append(f"| {metric} | {published:.2f} | {value:.2f} | {verdict} |")
    if not rows:
        return []
    out = ["## Against the published numbers", "", f"Published: {source}." if source else "", "",
           "| metric | published | this release | |", "| --- | --- | --- | --- |", *rows, ""]
    name = (recipe or {}).get("name")
    full = spec.recipes.get(name, {}).get("epochs") if name else None
    done = (training or {}).get("epochs") or (recipe or {}).get("epochs")
    if full and done and done < full:
        line = (f"These weights come from {done} of the {full} epochs of the `{name}` recipe "
                f"(`zoo train {spec.name} --recipe {name}` runs them all)")
        wall = (training or {}).get("wall_time_s")
        if wall:
            line += f"; at this run's speed the full recipe takes about {wall / done * full / 3600:.1f} h on the same hardware"
        if comparable:
            line += ". Whether the full recipe reaches the published number has not been measured"
        out += [line + ".", ""]
    return out


# --------------------------------------------------------------------------------------------
# Reading claims back and checking them
# --------------------------------------------------------------------------------------------
def read_claims(card: str) -> EvalSummary:
    """The numbers a card claims, read back from its front matter."""
    import yaml

    from .errors import ZooError

    if not card.startswith("---"):
        return EvalSummary()
    end = card.find("\n---", 3)
    if end < 0:
        raise ZooError("the model card's YAML front matter is not closed by '---'")
    try:
        meta = yaml.safe_load(card[3:end]) or {}
    except yaml.YAMLError as e:
        raise ZooError(f"the model card's front matter is not valid YAML: {e}") from None
    z = meta.get("zoo") or {}
    s = EvalSummary(dataset=z.get("dataset") or "", split=z.get("split") or "test", n=z.get("n"), seed=z.get("seed"), limit=z.get("limit"))
    for entry in meta.get("model-index") or []:
        for res in entry.get("results") or []:
            dataset = res.get("dataset") or {}
            s.dataset = s.dataset or dataset.get("type", "")
            s.split = dataset.get("split") or s.split
            for m in res.get("metrics") or []:
                value = _number(m.get("value"))
                if value is None:
                    continue
                s.metrics[str(m["type"])] = value
                se = _number((m.get("args") or {}).get("stderr"))
                if se is not None:
                    s.stderr[str(m["type"])] = se
    return s


@dataclass
class ClaimCheck:
    """One claimed number against the harness's fresh measurement."""

    key: str
    claimed: float
    measured: float | None
    tolerance: float
    ok: bool

    def __str__(self) -> str:
        if self.measured is None:
            return f"{self.key}: claimed {_fmt(self.claimed)}, but the harness did not report it  FAIL"
        diff = abs(self.measured - self.claimed)
        return (f"{self.key}: claimed {_fmt(self.claimed)}, measured {_fmt(self.measured)} "
                f"(|diff| {diff:.3g}, tolerance {self.tolerance:.3g})  {'ok' if self.ok else 'FAIL'}")


def compare_claims(claims: EvalSummary, measured: EvalSummary, *, subset: bool = False, rtol: float | None = None) -> list[ClaimCheck]:
    """Check each verifiable claim. Full runs: within `rtol` (default 1e-3) relative.

    A `subset` run (`--limit`) measures other images than the card (the harness takes the
    first N of the split, and a split's order is not random: MNIST's first 5000 test digits
    are easier than the rest), so it is a smoke check that catches numbers belonging to other
    weights or data, not small discrepancies: the tolerance is the larger of 4 standard errors
    of the subset's estimate and `rtol` (default 5%) relative.
    """
    checks = []
    for key, claimed in claims.metrics.items():
        if not _verifiable(key):
            continue
        got = measured.metrics.get(key)
        if subset:
            se = measured.stderr.get(key)
            tol = max(4.0 * se if se else 0.0, (rtol if rtol is not None else 0.05) * abs(claimed))
        else:
            tol = (rtol if rtol is not None else 1e-3) * abs(claimed)
        tol = max(tol, 1e-6)
        ok = got is not None and math.isfinite(got) and abs(got - claimed) <= tol
        checks.append(ClaimCheck(key, claimed, got, tol, ok))
    return checks
