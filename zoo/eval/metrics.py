"""The built-in metrics, as registered by `zoo.eval.plugin`. Importable without torch.

Each class says what it needs (`supports`) and delegates the tensor work to a
module imported on first use, so that registering metrics stays cheap.
"""

from __future__ import annotations

from typing import Any

from .metric import Metric, MetricValue

__all__ = ["NLL", "FID", "Precision", "Recall", "Parzen", "Speed", "TrainTime", "BUILTIN_METRICS"]


def _is_likelihood(model: Any) -> bool:
    """An exact `log_prob`, or a bound on it (`log_prob_bound`, reported as a bound)."""
    return callable(getattr(model, "log_prob", None)) or callable(getattr(model, "log_prob_bound", None))


def _is_sampler(model: Any) -> bool:
    return callable(getattr(model, "sample", None))


class NLL(Metric):
    name = "nll"
    unit = "nats"
    summary = (
        "negative log-likelihood: mean nats/image over the split, bits/dim, standard error; exact, or for "
        "a bounded model (a VAE) an upper bound with k = --iw-samples importance samples, marked ≤"
    )

    def supports(self, model: Any) -> str | None:
        return None if _is_likelihood(model) else "implicit model: no log_prob"

    def compute(self, ctx: Any) -> MetricValue:
        from .likelihood import nll

        return nll(ctx)


class _SampleMetric(Metric):
    uses_samples = True

    def supports(self, model: Any) -> str | None:
        return None if _is_sampler(model) else "not a sampler: no sample()"


class FID(_SampleMetric):
    name = "fid"
    unit = ""
    summary = "Fréchet distance between samples and the split in reference-classifier features; floor = train vs split"

    def compute(self, ctx: Any) -> MetricValue:
        from .fid import fid

        return fid(ctx)


class Precision(_SampleMetric):
    name = "precision"
    unit = ""
    summary = "fraction of samples inside the k-NN manifold of the split (Kynkäänniemi et al. 2019)"

    def compute(self, ctx: Any) -> MetricValue:
        from .manifold import precision_recall

        return precision_recall(ctx)["precision"]


class Recall(_SampleMetric):
    name = "recall"
    unit = ""
    summary = "fraction of the split inside the k-NN manifold of the samples (Kynkäänniemi et al. 2019)"

    def compute(self, ctx: Any) -> MetricValue:
        from .manifold import precision_recall

        return precision_recall(ctx)["recall"]


class Parzen(_SampleMetric):
    name = "parzen"
    unit = "nats"
    summary = "Gaussian Parzen-window log-density of the split under samples, sigma from the valid split (weak)"

    def compute(self, ctx: Any) -> MetricValue:
        from .parzen import parzen

        return parzen(ctx)


class Speed(Metric):
    name = "speed"
    unit = "samples/s"
    summary = "samples/s (naive and fast sampler) and eval images/s; a timing, not reproducible"
    deterministic = False

    def supports(self, model: Any) -> str | None:
        return None if _is_sampler(model) or _is_likelihood(model) else "neither a sampler nor a likelihood"

    def compute(self, ctx: Any) -> MetricValue:
        from .speed import speed

        return speed(ctx)


class TrainTime(Metric):
    name = "train-time"
    unit = "h"
    summary = "hours of training to reach 85 nats on the validation split, from the release's train_log.jsonl"

    def supports(self, model: Any) -> str | None:
        from .trainlog import log_of

        return None if log_of(model) is not None else "no training log beside the weights"

    def compute(self, ctx: Any) -> MetricValue:
        from .trainlog import train_time

        return train_time(ctx)


BUILTIN_METRICS = (NLL, FID, Precision, Recall, Parzen, Speed, TrainTime)
