"""A release's claims on its canonical subset: the same evaluation on `CANONICAL_LIMIT` images.

Re-scoring a whole test split can take minutes, so `zoo publish --limit` exists. A random
subset of N images only estimates the split's numbers, within a few standard errors, which
is too loose to catch a small lie. So every release also records, in eval.json's
`canonical_subset` (and the card's front matter), the *same* evaluation run with
`limit=CANONICAL_LIMIT`: the same seed, metrics, number of samples and batch size, on the
seeded subset `zoo.eval.subset` draws for that seed. That computation is deterministic,
so `zoo publish --limit 1000` re-runs it and compares at the full check's tolerance.

- For the exact NLL, the canonical number is the mean over 1,000 images of the split.
- For a bound on the NLL (a VAE), the same bound with at most `CANONICAL_IW_SAMPLES` importance
  samples: the literature's k=5000 on the whole split is the card's claim, and the canonical
  subset keeps a setting CI can re-score in seconds (k=100 on 1,000 images).
- For the sample metrics (fid, precision, recall, parzen) the samples are the full run's
  (same seed, same `num_samples`); only the real side is the canonical subset (and Parzen's
  sigma is chosen on 1,000 validation images, as any `--limit 1000` run does). These numbers
  are a deterministic fingerprint of the weights, not estimates of the full-split numbers.

`zoo train` records it at release time; `zoo card DIR` (re)computes it when it is missing or
was measured on other weights or other metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .summary import EvalSummary, summarize, verifiable

__all__ = ["CANONICAL_LIMIT", "CANONICAL_IW_SAMPLES", "canonical_subset", "canonical_is_current", "evaluation_settings"]

CANONICAL_LIMIT = 1000
# the most importance samples a bound is re-scored with on the canonical subset
CANONICAL_IW_SAMPLES = 100


def evaluation_settings(summary: EvalSummary) -> dict[str, Any]:
    """The keywords of `zoo.evaluate` that reproduce a summarised result (seed, samples, batch size, and the
    importance samples of a bound)."""
    prov = summary.provenance
    out: dict[str, Any] = {
        "dataset": summary.dataset,
        "split": summary.split,
        "metrics": summary.metric_names,
        "seed": 0 if summary.seed is None else summary.seed,
    }
    for key in ("num_samples", "batch_size", "iw_samples"):
        if isinstance(prov.get(key), int) and not isinstance(prov.get(key), bool):
            out[key] = prov[key]
    return out


def _verifiable_metrics(summary: EvalSummary) -> list[str]:
    return [m for m in summary.metric_names if verifiable(m)]


def canonical_subset(
    model: Any,
    results: Any,
    *,
    dataset: Any = None,
    limit: int | None = None,
    evaluate: Callable[..., Any] | None = None,
    device: Any = None,
    progress: bool = False,
) -> dict[str, Any] | None:
    """The canonical-subset evaluation (an EvalResult dict) for `results`, the full evaluation of `model`,
    on `limit` images (default `CANONICAL_LIMIT`), a bound at no more than `CANONICAL_IW_SAMPLES`.

    None when there is nothing to record: no verifiable metric, a split of at most `limit`
    images (the full claims are then the canonical ones), or no number came out (n/a)."""
    full = summarize(results)
    metrics = _verifiable_metrics(full)
    if not metrics:
        return None
    if evaluate is None:
        from ..eval import evaluate as harness

        evaluate = harness
    kw = {**evaluation_settings(full), "metrics": metrics}
    if "iw_samples" in kw:
        kw["iw_samples"] = min(kw["iw_samples"], CANONICAL_IW_SAMPLES)
    if dataset is not None:
        kw["dataset"] = dataset
    result = evaluate(model, limit=limit or CANONICAL_LIMIT, device=device, progress=progress, **kw)
    d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    if d["provenance"].get("subset") is None or not summarize(d).metrics:
        return None
    return d


def canonical_is_current(results: Mapping[str, Any]) -> bool:
    """Whether `results` (an eval.json) records canonical-subset claims of the same weights, dataset,
    split, seed and metrics as its full claims."""
    sub = results.get("canonical_subset")
    if not isinstance(sub, Mapping):
        return False
    full, prov, sub_prov = summarize(results), results.get("provenance") or {}, sub.get("provenance") or {}
    same = all(prov.get(k) == sub_prov.get(k) for k in ("weights", "dataset", "dataset_checksum", "split", "seed"))
    return same and sorted(_verifiable_metrics(full)) == sorted(_verifiable_metrics(summarize(sub)))
