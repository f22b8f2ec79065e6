"""What a model, a sampler, a likelihood and a trainer are.

Everything here is importable without torch: `zoo list` and `zoo info` read
these types and must stay fast. Tensor work happens inside functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import ArgumentError
from .util import is_int, is_positive_int

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["DataSpec", "Model", "Sampler", "Likelihood", "BoundedLikelihood", "Autoregressive", "Trainer", "is_bounded"]


@dataclass(frozen=True)
class DataSpec:
    """The shape and alphabet of the images a model handles.

    Images are integer tensors `(B, channels, height, width)` with values in
    `[0, levels)`: binarized MNIST is `DataSpec(1, 28, 28, 2)`, CIFAR-10 is
    `DataSpec(3, 32, 32, 256)`.
    """

    channels: int
    height: int
    width: int
    levels: int

    def __post_init__(self) -> None:
        for field in ("channels", "height", "width"):
            value = getattr(self, field)
            if not is_positive_int(value):
                raise ArgumentError(f"DataSpec.{field} must be a positive int, got {value!r}")
        if not is_int(self.levels) or self.levels < 2:
            raise ArgumentError(f"DataSpec.levels must be an int >= 2, got {self.levels!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(channels, height, width)` of one image."""
        return (self.channels, self.height, self.width)

    @property
    def dims(self) -> int:
        """Number of sub-pixels per image, `C*H*W`."""
        return self.channels * self.height * self.width

    def bits_per_dim(self, nats_per_image: float) -> float:
        """Convert a negative log-likelihood in nats per image to bits per sub-pixel."""
        return nats_per_image / (self.dims * math.log(2))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        try:
            return cls(int(d["channels"]), int(d["height"]), int(d["width"]), int(d["levels"]))
        except KeyError as e:
            raise ArgumentError(f"a data spec needs channels, height, width and levels; missing {e}") from None

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width}, {self.levels} levels"

    def validate(self, x: Any, *, name: str = "x", batch: bool = True) -> torch.Tensor:
        """Check that `x` is a batch of images of this spec and return it.

        Expected: an integer `torch.Tensor` of any integer dtype (uint8, int8, int16, int32, int64) of
        shape `(B, C, H, W)` (or `(C, H, W)` with `batch=False`) whose values lie in `[0, levels)`;
        it is returned as int64 (the index dtype every model uses). Anything else (floats included)
        raises `ArgumentError`, a `ValueError`, saying what was expected and what came.
        """
        import torch

        shape = f"{'(B, ' if batch else '('}{self.channels}, {self.height}, {self.width})"
        expected = f"an integer tensor of shape {shape} with levels in [0, {self.levels})"
        if not isinstance(x, torch.Tensor):
            raise ArgumentError(f"{name}: expected {expected}, got {type(x).__name__}")
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ArgumentError(
                f"{name}: expected {expected}, got dtype {x.dtype}; images are integer levels "
                f"(convert intensities with e.g. (x * {self.levels - 1}).round().long())"
            )
        if x.is_meta:
            raise ArgumentError(f"{name}: expected {expected}, got a meta tensor (it holds no values)")
        want_ndim = 4 if batch else 3
        if x.ndim != want_ndim or tuple(x.shape[-3:]) != self.shape:
            raise ArgumentError(f"{name}: expected {expected}, got shape {tuple(x.shape)}")
        if x.numel():
            lo, hi = int(x.min()), int(x.max())
            if lo < 0 or hi >= self.levels:
                raise ArgumentError(f"{name}: expected {expected}, got values in [{lo}, {hi}]")
        return x.long()


@runtime_checkable
class Model(Protocol):
    """Anything in the zoo: it knows the images it handles."""

    data_spec: DataSpec


@runtime_checkable
class Likelihood(Protocol):
    """A model with an exact log-likelihood of discrete images."""

    data_spec: DataSpec

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood in nats of each image of `x` (integer levels, `(B, C, H, W)`): a tensor `(B,)`."""
        ...


@runtime_checkable
class BoundedLikelihood(Protocol):
    """A model whose log-likelihood is known only through a lower bound (a VAE, say): an
    approximate density, never scored as if it were exact.

    The harness reports `-log_prob_bound` as an *upper* bound on the NLL, marked as such
    (`"bound": "upper"` and `k` in the JSON, `≤ 84.3` in tables and cards). A model is either a
    `Likelihood` or a `BoundedLikelihood`, never both (`is_bounded`).
    """

    data_spec: DataSpec

    def log_prob_bound(self, x: torch.Tensor, k: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A lower bound on the log-likelihood in nats of each image of `x` (integer levels,
        `(B, C, H, W)`): a tensor `(B,)`. With `k` importance samples drawn from `generator`, the
        importance-weighted bound of Burda et al. 2016 (k=1: the ELBO); its expectation never
        decreases in k. The same generator state gives the same values."""
        ...


def is_bounded(model: Any) -> bool:
    """Whether the harness scores `model` by a bound: it has `log_prob_bound` and no exact `log_prob`."""
    return callable(getattr(model, "log_prob_bound", None)) and not callable(getattr(model, "log_prob", None))


@runtime_checkable
class Sampler(Protocol):
    """A model that draws images."""

    data_spec: DataSpec

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        known: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`n` images as integer levels `(n, C, H, W)`; with `known` and a boolean `mask`
        of known sub-pixels, the known ones are kept and the rest completed."""
        ...


@runtime_checkable
class Autoregressive(Protocol):
    """A model that gives every sub-pixel's conditional distribution in one pass."""

    data_spec: DataSpec

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities `(B, C, H, W, levels)` of each sub-pixel given
        every sub-pixel before it (raster order, R before G before B)."""
        ...


@runtime_checkable
class Trainer(Protocol):
    """How a family trains a model that maximum likelihood does not fit (a GAN, say).

    A plugin names its class in `ModelSpec.trainer = "module:Class"`; `zoo.train`
    builds it as `Class(model, recipe, device)`, where `recipe` is the resolved
    recipe dict plus `steps_per_epoch` and `total_steps`. The loop owns the data,
    the epochs, the EMA, checkpoints of the model's weights, logging and the
    release; the trainer owns its optimizers and whatever else one step needs.
    Without `ModelSpec.trainer` the loop uses `zoo.training.MaximumLikelihoodTrainer`,
    which minimises `model.loss(x)`.

    Optional class attributes and hooks (the loop uses them only when present):

    - `recipe_defaults: Mapping[str, Any]`: recipe keys of its own, with defaults;
      they join the recipe schema for this model (they may not redefine its keys).
    - `supports_distributed: bool`: True when it runs under torchrun (it then wraps
      what it trains with `zoo.training.wrap_ddp`); default False: one process only.
    - `epoch_samples() -> Tensor | None`: images (integer levels `(n, C, H, W)`) saved
      as `samples/epochNNN.png` at every epoch's end, e.g. a GAN's fixed-noise batch.
      (Its old name, `fixed_noise_samples`, is still read for one release, with a
      DeprecationWarning.)
    """

    def step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step on a batch of images `x` (integer levels; `y`: labels of a
        class-conditional model); returns the metrics to log (e.g. `{"loss": 1.2}`)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the model's weights that an exact resume needs: tensors, numbers,
        strings, None, lists, tuples and dicts (checkpointed without pickling)."""
        ...

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        ...
