"""What the demo page does, without the page: sample a grid, complete a drawing, score a drawing.

Only the public API is used (`zoo.load`, `zoo.sample`, `model.log_prob`, `model.log_prob_bound`), so
a release of a new family appears on the page as it is. What a model can do is read from the model:

- `log_prob(x)`: the exact log-likelihood, shown as the NLL in nats;
- else `log_prob_bound(x, k)` (a VAE): a lower bound on the log-likelihood, shown as "≤" on the NLL;
- else an implicit model (a GAN): "implicit model: no likelihood".

Completion is `zoo.sample(model, n, known=..., mask=...)`, as `zoo sample --complete` runs it; a model
that cannot condition on pixels says so with its own error. Drawings arrive as 8-bit grey values
`(H, W)` (white ink on black, as MNIST) and become each model's levels by the rule of
`zoo.images.read_image` for an 8-bit file: level round(v / 255 · (levels − 1)).

torch is imported on first use, so that the page is up before the models are (`Demo.warm_up`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, UnknownNameError, ZooError
from ..registry import info, list_models
from ..util import did_you_mean, is_int

if TYPE_CHECKING:
    import torch

__all__ = [
    "Demo",
    "Score",
    "MAX_SAMPLES",
    "MAX_COMPLETIONS",
    "BOUND_SAMPLES",
    "grey_size",
    "grey_to_levels",
    "likelihood_of",
]

MAX_SAMPLES = 64  # a sample grid (README, Benchmarks: the fast samplers draw 16 digits in 1-2 s on 2 idle cores)
MAX_COMPLETIONS = 16
BOUND_SAMPLES = 100  # k of a bounded model's importance-weighted bound


@dataclass(frozen=True)
class Score:
    """One release's verdict on one image. `kind`: "exact", "bound", "implicit" or "n/a"."""

    release: str
    kind: str
    nll: float | None = None  # nats per image: exact, or an upper bound when kind == "bound"
    bits_per_dim: float | None = None
    note: str = ""  # why there is no number, or how the bound was taken

    @property
    def text(self) -> str:
        """What the page shows: `87.31 nats`, `≤ 93.10 nats`, or the reason there is no number."""
        if self.kind == "exact":
            return f"{self.nll:.2f} nats ({self.bits_per_dim:.4f} bits/dim)"
        if self.kind == "bound":
            return f"≤ {self.nll:.2f} nats ({self.note})"
        return self.note

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "kind": self.kind,
            "nll": self.nll,
            "bits_per_dim": self.bits_per_dim,
            "note": self.note,
            "text": self.text,
        }


def grey_size(grey: Any) -> tuple[int, int]:
    """(rows, columns) of a drawing given as a list of equal rows; `ArgumentError` for anything else."""
    if not isinstance(grey, (list, tuple)) or not grey or not all(isinstance(r, (list, tuple)) for r in grey):
        raise ArgumentError(f"image: expected a list of rows of grey values, got {type(grey).__name__}")
    widths = {len(r) for r in grey}
    if len(widths) != 1:
        raise ArgumentError(f"image: expected rows of equal length, got lengths {sorted(widths)}")
    return len(grey), widths.pop()


def grey_to_levels(grey: Any, spec: Any) -> torch.Tensor:
    """8-bit grey values, a list of `spec.height` rows of `spec.width` ints in [0, 255], to levels `(C, H, W)`;
    a colour model gets the grey image in every channel. Anything else raises `ArgumentError`."""
    want = f"{spec.height} rows of {spec.width} grey values in [0, 255]"
    rows, cols = grey_size(grey)
    if (rows, cols) != (spec.height, spec.width):
        raise ArgumentError(f"image: expected {want}, got {rows} rows of {cols}")
    for r, row in enumerate(grey):
        bad = [v for v in row if not is_int(v) or not 0 <= v <= 255]
        if bad:
            raise ArgumentError(f"image: expected {want}, got {bad[0]!r} in row {r}")
    import torch

    v = torch.tensor(grey, dtype=torch.float64)  # (H, W)
    levels = torch.round(v / 255 * (spec.levels - 1)).long()
    return levels.unsqueeze(0).expand(spec.channels, -1, -1).contiguous()


def likelihood_of(model: Any, x: torch.Tensor, release: str) -> Score:
    """Score images `x` `(1, C, H, W)` by what the model offers: exact, a bound, or nothing (implicit)."""
    import torch

    dims = math.prod(x.shape[1:])
    with torch.no_grad():
        if callable(getattr(model, "log_prob", None)):
            nll = -float(model.log_prob(x)[0])
            return Score(release, "exact", nll, nll / (dims * math.log(2)))
        if callable(getattr(model, "log_prob_bound", None)):
            nll = -float(model.log_prob_bound(x, BOUND_SAMPLES)[0])
            return Score(
                release,
                "bound",
                nll,
                nll / (dims * math.log(2)),
                note=f"upper bound on the NLL: importance-weighted, k={BOUND_SAMPLES}",
            )
    return Score(release, "implicit", note="implicit model: no likelihood")


def _seeded(seed: Any) -> torch.Generator:
    import torch

    if not is_int(seed) or not 0 <= seed < 2**63:
        raise ArgumentError(f"seed: expected an integer in [0, 2^63), got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _count(n: Any, most: int, what: str) -> int:
    if not is_int(n) or not 1 <= n <= most:
        raise ArgumentError(f"{what}: expected an integer from 1 to {most} (the demo's limit), got {n!r}")
    return n


def _load(name: str) -> Any:
    from ..factory import load

    return load(name)


class Demo:
    """The releases a page offers, loaded on first use and kept; one computation at a time.

    `releases`: the names offered (default: every release, `zoo.list_models(pretrained=True)`);
    `loader`: name -> model (default `zoo.load`; tests pass small models).
    """

    def __init__(self, releases: Sequence[str] | None = None, *, loader: Callable[[str], Any] | None = None) -> None:
        self.releases = list(list_models(pretrained=True) if releases is None else releases)
        self._load = loader or _load
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()  # torch work one request at a time; the CPU has few cores

    def describe(self) -> list[dict[str, Any]]:
        """Per release: name, family, summary, and the images it takes (from the registry; nothing loads)."""
        out = []
        for name in self.releases:
            try:
                spec = info(name)
            except UnknownNameError:  # a Hub or folder name: known once loaded
                spec = None
            d = spec.data_spec if spec is not None else self.model(name).data_spec
            assert d is not None  # a ModelSpec's is set when it is made
            out.append(
                {
                    "name": name,
                    "family": spec.family if spec else "",
                    "summary": spec.summary if spec else "",
                    "channels": d.channels,
                    "height": d.height,
                    "width": d.width,
                    "levels": d.levels,
                }
            )
        return out

    def default_release(self) -> str | None:
        """The release the page opens with: the first whose spec claims a likelihood, else the first."""
        for name in self.releases:
            try:
                if "likelihood" in info(name).capabilities:
                    return name
            except UnknownNameError:
                continue
        return self.releases[0] if self.releases else None

    def model(self, release: str) -> Any:
        """The loaded model of one of the offered releases."""
        if release not in self.releases:
            hint = did_you_mean(release, self.releases) or "; offered: " + ", ".join(self.releases)
            raise UnknownNameError(f"release {release!r} is not offered here{hint}")
        if release not in self._models:
            self._models[release] = self._load(release)
        return self._models[release]

    def warm_up(self) -> None:
        """Load every release now (a server calls this in a thread after it starts listening); a release
        that fails to load is left for its first use, which reports the error."""
        for release in self.releases:
            with self._lock:
                try:
                    self.model(release)
                except ZooError:
                    pass

    def sample_grid(self, release: str, n: int, seed: int, temperature: float) -> tuple[torch.Tensor, float]:
        """`n` samples `(n, C, H, W)` and the seconds they took; the same images as
        `zoo sample RELEASE -n N --seed SEED --temperature T`."""
        from ..sampling import check_sample_args, sample

        n = _count(n, MAX_SAMPLES, "samples")
        check_sample_args(n, temperature)
        g = _seeded(seed)
        with self._lock:
            model = self.model(release)
            t0 = time.perf_counter()
            x = sample(model, n, generator=g, temperature=temperature)
            return x, time.perf_counter() - t0

    def complete(
        self, release: str, grey: Any, keep_rows: int, n: int, seed: int, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Keep the top `keep_rows` rows of a drawing and let the model draw the rest, `n` times.
        Returns the kept image (levels, `(C, H, W)`), the completions `(n, C, H, W)` and the seconds."""
        import torch

        from ..sampling import check_sample_args, sample

        n = _count(n, MAX_COMPLETIONS, "completions")
        check_sample_args(n, temperature)
        g = _seeded(seed)
        with self._lock:
            model = self.model(release)
            spec = model.data_spec
            known = grey_to_levels(grey, spec)
            if not is_int(keep_rows) or not 0 <= keep_rows <= spec.height:
                raise ArgumentError(f"keep rows: expected an integer from 0 to {spec.height}, got {keep_rows!r}")
            mask = torch.zeros(spec.height, spec.width, dtype=torch.bool)
            mask[:keep_rows] = True
            t0 = time.perf_counter()
            x = sample(model, n, generator=g, temperature=temperature, known=known, mask=mask)
            return known, x, time.perf_counter() - t0

    def score(self, grey: Any) -> list[Score]:
        """The drawing under every release at once: exact NLL, a bound, or why there is none."""
        size = grey_size(grey)
        scores = []
        with self._lock:
            for release in self.releases:
                try:
                    spec = self.model(release).data_spec
                except ZooError as e:  # e.g. a Hub release not in the cache of an offline machine
                    scores.append(Score(release, "n/a", note=f"n/a: {e}"))
                    continue
                if size != (spec.height, spec.width):
                    scores.append(Score(release, "n/a", note=f"n/a: takes {spec.width}x{spec.height} images"))
                    continue
                x = grey_to_levels(grey, spec).unsqueeze(0)
                scores.append(likelihood_of(self.model(release), x, release))
        return scores
