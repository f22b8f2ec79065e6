"""`zoo.evaluate`: one code path that scores every model the same way.

    r = zoo.evaluate("pixelcnn", dataset="binarized-mnist", metrics=("nll", "fid"))
    print(r)                    # a table; r["nll"].value is nats per image
    r.to_json()                 # with provenance: weights sha256, data checksum, versions, ...

The harness resolves the model and the dataset, checks that their data specs
agree, then asks each metric whether it applies (`n/a` with the reason if not)
and computes it. Metrics share one `EvalContext`: the split, the samples drawn
from the model and the reference classifier's features are computed once.
Work is split in batches; under `torchrun` the batches are sharded over ranks
and gathered in order, so the result equals the single-process one.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..distributed import broadcast, map_batches, rank_world
from ..errors import ArgumentError, UnknownNameError, ZooError
from ..sampling import device_of, eval_mode
from ..util import is_int, is_positive_int
from ..weights import state_sha256
from .distributed import derive_seed
from .metric import MetricValue
from .result import EvalResult

__all__ = [
    "evaluate",
    "EvalContext",
    "NotApplicable",
    "resolve_metrics",
    "resolve_model",
    "get_dataset",
    "list_metrics",
    "DEFAULT_METRICS",
]

DEFAULT_METRICS = ("nll",)


class NotApplicable(ZooError):
    """Raised by a metric's `compute` when it cannot be computed here (reported as n/a with the message)."""


# -- lookups -----------------------------------------------------------------


def get_dataset(name: str) -> Any:
    """The registered dataset `name` (through `zoo.data`), or `UnknownNameError`."""
    from ..data import get_dataset as _get

    return _get(name)


def default_dataset(data_spec: Any, preferred: list[str], split: str) -> str:
    from ..data import default_dataset as _default

    return _default(data_spec, preferred, split)


def list_metrics() -> list[str]:
    from ..plugins import get_registry

    return sorted(get_registry().metrics)


def resolve_metrics(metrics: str | Iterable[Any] | None) -> list[Any]:
    """Metric objects for names (`"nll,fid"`, `("nll", "fid")`, `"all"`) or metric objects."""
    from ..plugins import get_registry

    table = get_registry().metrics
    if metrics is None:
        metrics = DEFAULT_METRICS
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = list(metrics)
    if metrics == ["all"]:
        return list(table.values())  # in registration order: the built-in metrics first (nll, fid, ...)
    if not metrics:
        raise ArgumentError(f"no metrics given; known: {', '.join(sorted(table))}")
    out, seen = [], set()
    for m in metrics:
        if isinstance(m, str):
            if m not in table:
                raise UnknownNameError(
                    f"unknown metric {m!r}; known: {', '.join(sorted(table)) or 'none'} "
                    "(plugins add metrics through zoo_register_metrics)"
                )
            m = table[m]
        if not (isinstance(getattr(m, "name", None), str) and callable(getattr(m, "compute", None))):
            raise ValueError(f"a metric needs a str `name` and a `compute(ctx)` method, got {m!r}")
        if m.name not in seen:
            seen.add(m.name)
            out.append(m)
    return out


def resolve_model(
    model_or_name: Any, *, device: str | torch.device | None = None, random_init: bool = False, seed: int = 0
) -> tuple[Any, dict[str, Any]]:
    """The model to score and its provenance (name, weights sha256 and where they came from).

    A name with released weights is loaded with `zoo.load`. A registered name
    without released weights (or with `random_init=True`) is built with
    `zoo.create`: its weights are recorded as "random init" and a note says so;
    the initialisation is drawn from `seed` (the global torch RNG is left as it was).
    """
    from ..distributed import check_device
    from ..factory import create, load
    from ..registry import get_spec, parse_name

    if device is not None:  # as zoo.load does, for a name or a model object alike
        check_device(device)
    if isinstance(model_or_name, str):
        name = model_or_name
        parsed = parse_name(name)
        note = ""
        if parsed.kind == "registry":
            spec = get_spec(parsed.arch)
            if random_init or not spec.weights:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(derive_seed(seed, "init"))
                    model = create(name)
                if not random_init:
                    note = f"{spec.name} has no released weights; scored a random initialisation (seeded by --seed)"
                model.to(device or "cpu")
                return model, {"model": name, "weights": "random init", "weights_source": "zoo.create", "note": note}
        model = load(name, device=device or "cpu")
    else:
        model = model_or_name
        name = getattr(model, "zoo_name", None) or type(model).__name__
        if device is not None and hasattr(model, "to"):
            model.to(device)
    w = getattr(model, "zoo_weights", None)
    if w is not None:
        sha = getattr(w, "sha256", w)
        tag = getattr(w, "tag", None)
        plain = tag is None or "." in name or ":" in name  # local-dir:PATH and hf-hub:ID are names already
        return model, {
            "model": name if plain else f"{name}.{tag}",
            "weights": str(sha),
            "weights_source": "zoo.load" if isinstance(model_or_name, str) else "model.zoo_weights",
            "note": "",
        }
    if hasattr(model, "state_dict"):
        return model, {
            "model": name,
            "weights": state_sha256(model),
            "weights_source": "in-memory state_dict",
            "note": "",
        }
    return model, {"model": name, "weights": "unknown", "weights_source": "not a torch module", "note": ""}


# -- the context shared by the metrics ---------------------------------------------


@dataclass
class EvalContext:
    """What a metric sees: the model, the data, the seed, and shared cached work."""

    model: Any
    dataset: Any
    split: str
    seed: int = 0
    batch_size: int = 100
    limit: int | None = None
    num_samples: int = 1000
    iw_samples: int = 5000  # importance samples of a bounded model's nll (zoo.eval.likelihood.DEFAULT_IW_SAMPLES)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = False
    feature_extractor: Any = None  # images (B, C, H, W) levels -> features (B, D); default: the reference classifier
    parts: Path | None = None  # a folder of nll's per-batch values, reused and added to (zoo.eval.likelihood)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def data_spec(self) -> Any:
        return self.dataset.data_spec

    def generator(self, *keys: Any) -> torch.Generator:
        """A CPU generator for the random stream named by `keys` under this seed."""
        return torch.Generator().manual_seed(derive_seed(self.seed, *keys))

    def map_batches(
        self,
        fn: Callable[[int, int, int], torch.Tensor],
        n: int,
        *,
        desc: str = "",
        batch_size: int | None = None,
        unit: str = "img",
    ) -> torch.Tensor:
        """Run `fn(b, start, stop)` over batches, sharded over ranks, gathered in order (see `distributed`)."""
        return map_batches(fn, n, batch_size or self.batch_size, desc=desc, progress=self.progress, unit=unit)

    # data -------------------------------------------------------------------
    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images `(N, C, H, W)` (integer levels, CPU) and labels (or None) of a split of the dataset."""
        key = f"split:{split}"
        if key not in self.cache:
            available = getattr(self.dataset, "available", None)
            if split not in self.dataset.splits:
                raise ZooError(
                    f"dataset {self.dataset.name!r} has no split {split!r}; splits: {', '.join(self.dataset.splits)}"
                )
            if callable(available) and not available(split):
                raise NotApplicable(
                    f"the {split!r} split of {self.dataset.name} is not prepared; "
                    f"run `zoo data prepare {self.dataset.name}`"
                )
            images, labels = self.dataset.load(split)
            images = torch.as_tensor(images)
            self.data_spec.validate(images, name=f"{self.dataset.name}[{split}] images")
            labels = None if labels is None else torch.as_tensor(labels)
            self.cache[key] = (images, labels)
        return self.cache[key]

    def split_images(self) -> torch.Tensor:
        """The evaluated split; with a limit, its seeded subset of `limit` images (see `zoo.eval.subset`)."""
        images, _ = self.load_split(self.split)
        idx = self.subset_indices()
        return images if idx is None else images[idx]

    def subset_indices(self) -> torch.Tensor | None:
        """The sorted indices of the images a limit scores (None: the whole split)."""
        if "limit-indices" not in self.cache:
            from .subset import subset_indices

            total = self.load_split(self.split)[0].shape[0]
            self.cache["limit-indices"] = subset_indices(total, self.limit, self.seed, self.split)
        return self.cache["limit-indices"]

    def subset(self, split: str, n: int, key: str) -> torch.Tensor:
        """`n` images of `split` drawn without replacement by the stream `key` (all of them, in order, if fewer)."""
        images = self.split_images() if split == self.split else self.load_split(split)[0]
        if images.shape[0] <= n:
            return images
        idx = torch.randperm(images.shape[0], generator=self.generator("subset", split, key))[:n]
        return images[idx.sort().values]

    # samples and features -----------------------------------------------------
    def samples(self) -> torch.Tensor:
        """`num_samples` images drawn from the model (cached; see `draw`)."""
        if "samples" not in self.cache:
            self.cache["samples"] = self.draw(self.num_samples)
        return self.cache["samples"]

    def draw(self, n: int) -> torch.Tensor:
        """`n` images from the model, integer levels `(n, C, H, W)` on the CPU.

        Batch b is drawn with its own generator, seeded from `(seed, "samples", b)`,
        so the images do not depend on the number of processes.
        """
        from ..sampling import sample

        if "samples" in self.cache and self.cache["samples"].shape[0] >= n:
            return self.cache["samples"][:n]
        spec = self.data_spec
        model = self.model

        def one_batch(b: int, start: int, stop: int) -> torch.Tensor:
            x = sample(model, stop - start, generator=self.generator("samples", b))
            return spec.validate(x, name="model samples").to(torch.uint8 if spec.levels <= 256 else torch.long)

        with eval_mode(model), torch.no_grad():
            return self.map_batches(one_batch, n, desc="sampling")

    def features(self, key: str, images: torch.Tensor) -> torch.Tensor:
        """Reference-classifier features `(N, D)` (float64) of `images`, cached under `key`."""
        ck = f"features:{key}"
        if ck not in self.cache:
            extractor = self.feature_extractor
            if extractor is None:
                from .classifier import load_reference

                extractor = self.feature_extractor = load_reference(
                    self.dataset.name, data_spec=self.data_spec, device=self.device
                )

            def feats(b: int, start: int, stop: int) -> torch.Tensor:
                return extractor(images[start:stop].to(self.device).long()).double()

            with torch.no_grad():
                self.cache[ck] = self.map_batches(feats, images.shape[0], desc=f"features ({key})")
        return self.cache[ck]


# -- evaluate ---------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"zoo": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _trained_on(model_or_name: Any, model: Any) -> list[str]:
    """The datasets of the released weights of a registered name (its tag's first, else all of its
    weights'); empty for other names and for model objects of no registered architecture."""
    from ..registry import get_spec, parse_name

    name = model_or_name if isinstance(model_or_name, str) else getattr(model, "zoo_name", None)
    if not name:
        return []
    parsed = parse_name(name)
    if parsed.kind != "registry":
        return []
    weights = get_spec(parsed.arch).weights
    return [w.dataset for w in weights if w.tag == parsed.tag] + [w.dataset for w in weights]


def evaluate(
    model_or_name: Any,
    dataset: Any = None,
    split: str = "test",
    metrics: str | Iterable[Any] | None = DEFAULT_METRICS,
    *,
    batch_size: int = 100,
    seed: int = 0,
    limit: int | None = None,
    num_samples: int = 1000,
    iw_samples: int | None = None,
    device: str | torch.device | None = None,
    random_init: bool = False,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None,
    grid: int = 0,
    progress: bool = False,
    parts: str | Path | None = None,
) -> EvalResult:
    """Score a model on a dataset split with the given metrics; see the module docstring.

    - `model_or_name`: a model object, or a name for `zoo.load` (`arch[.tag]`,
      `hf-hub:...`, `local-dir:...`); a registered name with no released
      weights is scored at a random initialisation, recorded as "random init".
    - `metrics`: names (`("nll", "fid")`, `"nll,fid"`, `"all"`) or metric objects.
    - `limit`: score a seeded random subset of `limit` images of the split (the same images for the
      same seed; see `zoo.eval.subset`), named in `provenance["subset"]`.
    - `num_samples`: images drawn from the model for fid, precision, recall and parzen.
    - `iw_samples`: importance samples k of the bound that `nll` reports for a bounded model (a VAE);
      default 5000, as in the literature (Burda et al. 2016). Its cost is k decoder passes per image.
    - `seed`: every random stream (samples, subsets) derives from it: same seed, same numbers.
    - `feature_extractor`: replaces the dataset's reference classifier for fid/precision/recall.
    - `grid`: also keep this many samples in `result.samples`, and for a model that can complete
      images, lower-half completions of `min(grid, 8)` split images in `result.completions`
      (for a picture; not serialised): the first `grid` images of the draw the sample metrics
      use, so the same seed gives the same pictures whatever the metrics. With `metrics=()` only
      these are made: a full run's pictures without its scores.
    - `parts`: a folder for nll's per-image values, one file per batch, written as each batch is done and
      reused by a later call with the same weights, data, subset, seed, batch size and k (pinned in
      `parts/pin.json`; another evaluation's folder is refused): a long score (a bound at k=5000) that is
      stopped goes on where it left off, with the same numbers. `wall_time_s` counts this call only.
    """
    if iw_samples is None:
        from .likelihood import DEFAULT_IW_SAMPLES

        iw_samples = DEFAULT_IW_SAMPLES
    for k, v in (("batch_size", batch_size), ("num_samples", num_samples), ("iw_samples", iw_samples)):
        if not is_positive_int(v):
            raise ArgumentError(f"{k} must be a positive int, got {v!r}")
    if limit is not None and not is_positive_int(limit):
        raise ArgumentError(f"limit must be a positive int or None, got {limit!r}")
    if not is_int(seed):
        raise ArgumentError(f"seed must be an int, got {seed!r}")
    t0 = time.perf_counter()
    if metrics is not None and not isinstance(metrics, str):
        metrics = list(metrics)
    metric_objs = [] if metrics == [] and grid else resolve_metrics(metrics)  # metrics=() with a grid: pictures
    model, prov = resolve_model(model_or_name, device=device, random_init=random_init, seed=seed)
    spec = getattr(model, "data_spec", None)
    if spec is None:
        raise ArgumentError(f"{prov['model']}: expected a zoo model with a `data_spec`, got {type(model).__name__}")
    if dataset is None:
        dataset = default_dataset(spec, _trained_on(model_or_name, model), split)
    ds = get_dataset(dataset) if isinstance(dataset, str) else dataset
    if split not in ds.splits:
        raise ArgumentError(f"dataset {ds.name!r} has no split {split!r}; its splits: {', '.join(ds.splits)}")
    if spec != ds.data_spec:
        raise ZooError(
            f"{prov['model']} models images of {spec}, but dataset {ds.name!r} has images of {ds.data_spec}; "
            "pick a dataset that matches the model (or weights trained on it)"
        )
    if prov["note"]:
        warnings.warn(prov["note"], stacklevel=2)
    dev = device_of(model)
    if parts is not None:  # what names the numbers: another evaluation's folder is refused
        from .likelihood import pin_parts

        pin = {"model": prov["model"], "weights": prov["weights"], "dataset": ds.name, "split": split, "limit": limit}
        pin |= {"seed": seed, "batch_size": batch_size, "k": iw_samples if _density(model) == "bound" else None}
        parts = pin_parts(parts, pin)
    ctx = EvalContext(
        model=model,
        dataset=ds,
        split=split,
        seed=seed,
        batch_size=batch_size,
        limit=limit,
        num_samples=num_samples,
        iw_samples=iw_samples,
        device=dev,
        progress=progress,
        feature_extractor=feature_extractor,
        parts=parts,
    )
    n = ctx.split_images().shape[0]
    results: dict[str, MetricValue] = {}
    with eval_mode(model), torch.no_grad():
        for m in metric_objs:
            results[m.name] = _run_metric(m, model, ctx)
        grid_samples = None
        if grid and callable(getattr(model, "sample", None)):  # whole batches: the same images whatever the metrics
            grid_samples = ctx.draw(-(-grid // batch_size) * batch_size)[:grid]
        completions = _complete_lower_halves(ctx, min(grid, 8)) if grid else None
    _, world = rank_world()
    provenance = {
        **prov,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "dataset": ds.name,
        "data_spec": ds.data_spec.to_dict(),
        "dataset_checksum": ds.checksum(split),
        "split": split,
        "n": n,
        "limit": limit,
        "subset": _subset_provenance(ctx),
        "num_samples": num_samples if any(getattr(m, "uses_samples", False) for m in metric_objs) else None,
        "iw_samples": iw_samples if any(v.bound is not None for v in results.values()) else None,
        "density": _density(model),
        "seed": seed,
        "batch_size": batch_size,
        "versions": _versions(),
        "device": str(dev),
        "world_size": world,
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "reference": _reference_results(prov["model"], ds.name),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    provenance = broadcast(provenance) if world > 1 else provenance
    return EvalResult(
        model=prov["model"], metrics=results, provenance=provenance, samples=grid_samples, completions=completions
    )


def _density(model: Any) -> str:
    """The model's family for the leaderboard: "exact" (log_prob), "bound" (log_prob_bound) or "implicit"."""
    from ..protocols import is_bounded

    if is_bounded(model):
        return "bound"
    return "exact" if callable(getattr(model, "log_prob", None)) else "implicit"


def _subset_provenance(ctx: EvalContext) -> dict[str, Any] | None:
    """The identity of the images a limit scored (seed, N, sha256 of the indices); None for the whole split."""
    from .subset import subset_identity

    idx = ctx.subset_indices()
    return None if idx is None else subset_identity(idx, seed=ctx.seed, total=ctx.load_split(ctx.split)[0].shape[0])


def _reference_results(name: str, dataset: str) -> dict[str, Any]:
    """The published numbers the registry gives for `name`'s architecture on `dataset` ({} if none)."""
    from ..errors import UnknownNameError
    from ..registry import get_spec, parse_name

    try:
        parsed = parse_name(name)
        spec = get_spec(parsed.arch) if parsed.kind == "registry" else None
    except (ValueError, UnknownNameError):  # a model object's class name, a file, a Hub id: nothing to look up
        return {}
    return dict(spec.reference_results.get(dataset, {})) if spec is not None else {}


def _complete_lower_halves(ctx: EvalContext, k: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(images, completions): `k` images of the split, spread over it, whose lower half the model
    draws given the upper half (seeded by `(seed, "completions")`); None for a model that cannot."""
    from ..sampling import sample

    model = ctx.model
    if k < 1 or not callable(getattr(model, "logits", None)) or not callable(getattr(model, "sample", None)):
        return None
    x = ctx.split_images()
    x = x[torch.linspace(0, x.shape[0] - 1, k).long()]
    H = x.shape[-2]
    mask = torch.zeros(x.shape[-2:], dtype=torch.bool)
    mask[: H // 2] = True
    out = sample(model, k, known=x.to(ctx.device), mask=mask.to(ctx.device), generator=ctx.generator("completions"))
    return x.cpu(), out.cpu()


def _run_metric(metric: Any, model: Any, ctx: EvalContext) -> MetricValue:
    unit = getattr(metric, "unit", "")
    supports = getattr(metric, "supports", None)
    reason = supports(model) if callable(supports) else None
    if reason:
        return MetricValue.na(metric.name, reason, unit)
    try:
        value = metric.compute(ctx)
    except NotApplicable as e:
        return MetricValue.na(metric.name, str(e), unit)
    if not isinstance(value, MetricValue):
        raise TypeError(f"metric {metric.name!r} returned {type(value).__name__}; expected a zoo.eval.MetricValue")
    if not getattr(metric, "deterministic", True):
        value = broadcast(value)  # timings differ between ranks: report rank 0's
    return value
