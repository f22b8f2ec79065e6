"""Model specs, weight specs, name parsing and lookup.

Plugins register a `ModelSpec` per architecture through the
`zoo_register_models` hook. A spec names its builder by import path
(`"zoo_pixelcnn.pixelcnn:PixelCNN"`), so listing models imports no model code.

Names:
- `arch`            the architecture with its default weights (for `load`)
- `arch.tag`        specific weights, e.g. `pixelrnn-diag.binarized-mnist`
- `hf-hub:org/repo[@rev]`  a repo published by `zoo publish`
- `local-dir:PATH`  a folder written by `zoo.save_pretrained`
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import UnknownNameError, ZooError
from .protocols import DataSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "WeightsSpec", "ModelSpec", "ParsedName", "parse_name", "list_models", "info",
    "create", "load", "import_builder", "CAPABILITIES",
]

CAPABILITIES = ("likelihood", "sampler", "fast_sampler")
HUB_PREFIX = "hf-hub:"
LOCAL_PREFIX = "local-dir:"


@dataclass(frozen=True)
class WeightsSpec:
    """One released set of weights: where it lives and how to check it."""

    tag: str  # e.g. "binarized-mnist"; the part after the dot in `arch.tag`
    hub_id: str  # Hugging Face Hub repo id, e.g. "zoo-models/pixelrnn-diag.binarized-mnist"
    revision: str  # the pinned commit or tag on the Hub
    sha256: str  # of `filename`; checked before loading
    filename: str = "model.safetensors"
    dataset: str = ""  # the zoo dataset it was trained on
    license: str = "apache-2.0"
    metrics: Mapping[str, float] = field(default_factory=dict)  # claimed results, from the card
    config: Mapping[str, Any] = field(default_factory=dict)  # constructor overrides for these weights


@dataclass(frozen=True)
class ModelSpec:
    """An architecture in the zoo. Kept apart from the weights it may have."""

    name: str  # e.g. "pixelrnn-diag"
    family: str  # e.g. "pixelrnn"
    summary: str  # one line
    paper: str  # citation or URL of the paper it follows
    builder: str  # "module:callable" returning the model; called with the config as keywords
    config: Mapping[str, Any]  # default constructor arguments (the paper's config)
    data_spec: DataSpec  # of the default config
    capabilities: frozenset[str] = frozenset()  # subset of CAPABILITIES
    weights: tuple[WeightsSpec, ...] = ()  # released weights; the first is the default tag
    test_config: Mapping[str, Any] = field(default_factory=dict)  # tiny overrides for tests and quick checks
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # named training recipes for `zoo train`
    trainer: str = ""  # "module:Class" of a family's own trainer (e.g. the GAN's); "" = maximum likelihood
    # published numbers to compare with, per dataset, and where they come from (the leaderboard shows them):
    # {"binarized-mnist": {"nll": 81.30, "source": "PixelRNN paper, Table 4"}}; "comparable": False marks a
    # number measured by the same protocol on other data (shown for orientation, never as reached or not)
    reference_results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugin: str = ""  # filled in by the registry: the plugin that registered it

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"ModelSpec {self.name!r}: unknown capabilities {sorted(unknown)}; known: {CAPABILITIES}")
        if ":" not in self.builder:
            raise ValueError(f"ModelSpec {self.name!r}: builder must be 'module:callable', got {self.builder!r}")
        if "." in self.name or ":" in self.name:
            raise ValueError(f"ModelSpec name {self.name!r} may not contain '.' or ':' (they separate tags and schemes)")
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    @property
    def tags(self) -> list[str]:
        return [w.tag for w in self.weights]

    @property
    def default_tag(self) -> str | None:
        return self.weights[0].tag if self.weights else None

    def weights_for(self, tag: str | None) -> WeightsSpec:
        """The weights of `tag` (the default tag when None)."""
        if not self.weights:
            raise ZooError(
                f"{self.name!r} has no released weights yet; build a randomly initialised one with "
                f"zoo.create({self.name!r}) or train one with `zoo train {self.name}`"
            )
        if tag is None:
            return self.weights[0]
        for w in self.weights:
            if w.tag == tag:
                return w
        raise UnknownNameError(f"{self.name!r} has no weights tagged {tag!r}; tags: {', '.join(self.tags)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "summary": self.summary,
            "paper": self.paper,
            "reference_results": {k: dict(v) for k, v in self.reference_results.items()},
            "builder": self.builder,
            "config": dict(self.config),
            "data_spec": self.data_spec.to_dict(),
            "capabilities": sorted(self.capabilities),
            "tags": self.tags,
            "default_tag": self.default_tag,
            "weights": [
                {"tag": w.tag, "hub_id": w.hub_id, "revision": w.revision, "filename": w.filename,
                 "sha256": w.sha256, "dataset": w.dataset, "license": w.license, "metrics": dict(w.metrics)}
                for w in self.weights
            ],
            "recipes": {k: dict(v) for k, v in self.recipes.items()},
            "trainer": self.trainer,
            "plugin": self.plugin,
        }


@dataclass(frozen=True)
class ParsedName:
    """A model name taken apart. `kind` is "registry", "hub" or "local"."""

    kind: str
    arch: str = ""
    tag: str | None = None
    repo_id: str = ""
    revision: str | None = None
    path: str = ""


def parse_name(name: str) -> ParsedName:
    """Split `arch[.tag]`, `hf-hub:org/repo[@rev]` or `local-dir:PATH`."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name.startswith(HUB_PREFIX):
        rest = name[len(HUB_PREFIX):]
        repo_id, _, revision = rest.partition("@")
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"expected hf-hub:ORG/REPO[@REVISION], got {name!r}")
        if _ and not revision:
            raise ValueError(f"empty revision after '@' in {name!r}")
        return ParsedName("hub", repo_id=repo_id, revision=revision or None)
    if name.startswith(LOCAL_PREFIX):
        path = name[len(LOCAL_PREFIX):]
        if not path:
            raise ValueError(f"expected local-dir:PATH, got {name!r}")
        return ParsedName("local", path=path)
    if "/" in name or "\\" in name:
        raise ValueError(f"expected ARCH or ARCH.TAG, got {name!r}; for a release folder use "
                         f"'local-dir:{name}', for a Hub repo 'hf-hub:ORG/REPO'")
    arch, dot, tag = name.partition(".")
    if not arch or (dot and not tag):
        raise ValueError(f"expected ARCH or ARCH.TAG, got {name!r}")
    return ParsedName("registry", arch=arch, tag=tag or None)


def _registry():
    from .plugins import get_registry

    return get_registry()


def _close_matches(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=4, cutoff=0.5)
    if not close:
        close = [c for c in candidates if word.lower() in c.lower()][:4]
    return f"; did you mean {', '.join(close)}?" if close else ""


def get_spec(arch: str) -> ModelSpec:
    """The `ModelSpec` of `arch`, or `UnknownNameError` listing close matches."""
    models = _registry().models
    if arch not in models:
        names = sorted(models)
        raise UnknownNameError(
            f"unknown model {arch!r}{_close_matches(arch, names)} (registered: {', '.join(names) or 'none'}; "
            "`zoo plugins` shows which plugins loaded)"
        )
    return models[arch]


def list_models(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Sorted model names matching an fnmatch `pattern`.

    With `pretrained=True`, one `arch.tag` entry per released set of weights.
    """
    models = _registry().models
    if pretrained:
        names = [f"{s.name}.{t}" for s in models.values() for t in s.tags]
    else:
        names = list(models)
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def info(name: str) -> ModelSpec:
    """The `ModelSpec` of a registered `arch` or `arch.tag`."""
    parsed = parse_name(name)
    if parsed.kind != "registry":
        raise ValueError(f"zoo.info takes a registered ARCH[.TAG], got {name!r}")
    spec = get_spec(parsed.arch)
    if parsed.tag is not None:
        spec.weights_for(parsed.tag)  # raises for an unknown tag
    return spec


def import_builder(path: str) -> Callable[..., Any]:
    """Import `module:callable`."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ZooError(f"cannot import model module {module_name!r}: {e}") from e
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ZooError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def build(spec: ModelSpec, config: Mapping[str, Any]) -> Any:
    """Call the spec's builder with `config`, turning bad options into a clear error."""
    builder = import_builder(spec.builder)
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        allowed = [k for k, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        bad = [k for k in config if k not in allowed]
        if bad:
            raise ValueError(f"{spec.name} does not take option(s) {', '.join(map(repr, bad))}; its options: {', '.join(allowed)}")
    model = builder(**config)
    model.zoo_name = spec.name
    model.zoo_config = dict(config)
    model.zoo_weights = None  # set by load(): the WeightsSpec or sha256 the weights came from
    return model


def create(name: str, **overrides: Any) -> Any:
    """A model of `name` with random weights; `overrides` replace entries of its default config."""
    parsed = parse_name(name)
    if parsed.kind != "registry":
        raise ValueError(f"zoo.create builds a registered architecture; for {name!r} use zoo.load")
    spec = get_spec(parsed.arch)
    config = dict(spec.config)
    if parsed.tag is not None:
        config.update(spec.weights_for(parsed.tag).config)
    config.update(overrides)
    return build(spec, config)


def load(
    name: str,
    *,
    device: "str | torch.device" = "cpu",
    dtype: "torch.dtype | None" = None,
    revision: str | None = None,
) -> Any:
    """A pretrained model in eval mode, its weights verified by sha256 and loaded strictly.

    `name` is `arch`, `arch.tag`, `hf-hub:org/repo[@rev]` or `local-dir:PATH`.
    """
    parsed = parse_name(name)
    if parsed.kind == "registry":
        spec = get_spec(parsed.arch)
        spec.weights_for(parsed.tag)  # a clear error when there are none
    from . import hub  # Hub I/O lives in one module

    return hub.load_pretrained(parsed, device=device, dtype=dtype, revision=revision)


def with_plugin(spec: ModelSpec, plugin: str) -> ModelSpec:
    return replace(spec, plugin=plugin)
