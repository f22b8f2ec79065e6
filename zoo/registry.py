"""What the zoo knows about its models: specs, weight specs, name parsing, list and info. No loading.

Plugins register a `ModelSpec` per architecture through the
`zoo_register_models` hook. A spec names its builder by import path
(`"zoo_pixelcnn.pixelcnn:PixelCNN"`), so listing models imports no model code;
`zoo.factory` is the one place that turns a name into a model.

Names:
- `arch`            the architecture with its default weights (for `load`)
- `arch.tag`        specific weights, e.g. `pixelrnn-diag.binarized-mnist`
- `hf-hub:org/repo[@rev]`  a repo published by `zoo publish`
- `local-dir:PATH`  a folder written by `zoo.save_pretrained`
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ArgumentError, UnknownNameError, ZooError
from .protocols import DataSpec
from .util import did_you_mean, lazy_getattr

__all__ = ["WeightsSpec", "ModelSpec", "ParsedName", "parse_name", "get_spec", "list_models", "info", "CAPABILITIES"]

CAPABILITIES = ("likelihood", "likelihood_bound", "sampler", "fast_sampler")
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
    # claimed results: a lazy zoo.release.CardMetrics reads them from the bundled card's eval.json
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)  # constructor overrides for these weights
    # a folder of release folders `<arch>.<tag>/` that the plugin ships, searched before the zoo's bundled
    # cards/: "package:subfolder" (inside an installed package, e.g. "zoo_made:cards") or a path; "" = none
    cards: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.cards, str):
            raise ValueError(
                f"WeightsSpec {self.tag!r}: cards must be 'package:subfolder' or a path, got {self.cards!r}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """An architecture in the zoo. Kept apart from the weights it may have."""

    name: str  # e.g. "pixelrnn-diag"
    family: str  # e.g. "pixelrnn"
    summary: str  # one line
    paper: str  # citation or URL of the paper it follows
    builder: str  # "module:callable" returning the model; called with the config as keywords
    config: Mapping[str, Any]  # default constructor arguments (the paper's config)
    data_spec: DataSpec | None = None  # of the default config; None: read from its channels/height/width/levels
    capabilities: frozenset[str] = frozenset()  # subset of CAPABILITIES
    weights: tuple[WeightsSpec, ...] = ()  # released weights; the first is the default tag
    test_config: Mapping[str, Any] = field(default_factory=dict)  # tiny overrides for tests and quick checks
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # named training recipes for `zoo train`
    trainer: str = ""  # "module:Class" of a family's own trainer (e.g. the GAN's); "" = maximum likelihood
    # published numbers to compare with, per dataset, and where they come from (the leaderboard shows them):
    # {"binarized-mnist": {"nll": 81.30, "source": "PixelRNN paper, Table 4"}}; "comparable": False marks a
    # number measured by the same protocol on other data (shown for orientation, never as reached or not);
    # "exact": True, an exact likelihood that a bounded model's number (marked ≤) is held to, printed unmarked
    reference_results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # why `config` is this one (the paper's, or the choice made where the paper leaves it open, with the runs that
    # decided it); the card of a release built with exactly this config prints it in its Model section
    config_note: str = ""
    plugin: str = ""  # filled in by the registry: the plugin that registered it

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"ModelSpec {self.name!r}: unknown capabilities {sorted(unknown)}; known: {CAPABILITIES}")
        if ":" not in self.builder:
            raise ValueError(f"ModelSpec {self.name!r}: builder must be 'module:callable', got {self.builder!r}")
        if "." in self.name or ":" in self.name:
            raise ValueError(
                f"ModelSpec name {self.name!r} may not contain '.' or ':' (they separate tags and schemes)"
            )
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "data_spec", _data_spec_of(self.name, self.config, self.data_spec))

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
            "config_note": self.config_note,
            "data_spec": self.data_spec.to_dict() if self.data_spec is not None else None,  # set in __post_init__
            "capabilities": sorted(self.capabilities),
            "tags": self.tags,
            "default_tag": self.default_tag,
            "weights": [
                {
                    "tag": w.tag,
                    "hub_id": w.hub_id,
                    "revision": w.revision,
                    "filename": w.filename,
                    "sha256": w.sha256,
                    "dataset": w.dataset,
                    "license": w.license,
                    "metrics": dict(w.metrics),
                    "cards": w.cards,
                }
                for w in self.weights
            ],
            "recipes": {k: dict(v) for k, v in self.recipes.items()},
            "trainer": self.trainer,
            "plugin": self.plugin,
        }


def _data_spec_of(name: str, config: Mapping[str, Any], given: DataSpec | None) -> DataSpec:
    """The data spec a config describes; a given one must agree with the entries the config has."""
    keys = [f.name for f in fields(DataSpec)]
    if given is None:
        missing = [k for k in keys if k not in config]
        if missing:
            raise ValueError(
                f"ModelSpec {name!r}: its config lacks {', '.join(missing)}; pass data_spec= "
                "or give the config all of channels, height, width and levels"
            )
        return DataSpec(*(config[k] for k in keys))
    if not isinstance(given, DataSpec):
        raise ValueError(f"ModelSpec {name!r}: data_spec must be a zoo.DataSpec, got {type(given).__name__}")
    clash = [f"{k}={config[k]!r}" for k in keys if k in config and config[k] != getattr(given, k)]
    if clash:
        raise ValueError(f"ModelSpec {name!r}: data_spec {given} disagrees with its config ({', '.join(clash)})")
    return given


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
        raise ArgumentError(f"a model name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name.startswith(HUB_PREFIX):
        rest = name[len(HUB_PREFIX) :]
        repo_id, _, revision = rest.partition("@")
        parts = repo_id.split("/")
        if len(parts) != 2 or not all(parts):
            raise ArgumentError(f"expected hf-hub:ORG/REPO[@REVISION], got {name!r}")
        if _ and not revision:
            raise ArgumentError(f"empty revision after '@' in {name!r}")
        return ParsedName("hub", repo_id=repo_id, revision=revision or None)
    if name.startswith(LOCAL_PREFIX):
        path = name[len(LOCAL_PREFIX) :]
        if not path:
            raise ArgumentError(f"expected local-dir:PATH, got {name!r}")
        return ParsedName("local", path=path)
    if "/" in name or "\\" in name:
        raise ArgumentError(
            f"expected ARCH or ARCH.TAG, got {name!r}; for a release folder use "
            f"'local-dir:{name}', for a Hub repo 'hf-hub:ORG/REPO'"
        )
    arch, dot, tag = name.partition(".")
    if not arch or (dot and not tag):
        raise ArgumentError(f"expected ARCH or ARCH.TAG, got {name!r}")
    return ParsedName("registry", arch=arch, tag=tag or None)


def _registry():
    from .plugins import get_registry

    return get_registry()


def get_spec(arch: str) -> ModelSpec:
    """The `ModelSpec` of `arch`, or `UnknownNameError` listing close matches."""
    models = _registry().models
    if arch not in models:
        names = sorted(models)
        raise UnknownNameError(
            f"unknown model {arch!r}{did_you_mean(arch, names)} (registered: {', '.join(names) or 'none'}; "
            "`zoo plugins` shows which plugins loaded)"
        )
    return models[arch]


def list_models(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Sorted model names matching an fnmatch `pattern`.

    With `pretrained=True`, one `arch.tag` entry per released set of weights.
    """
    if not isinstance(pattern, str):
        raise ArgumentError(
            f"list_models: pattern must be an fnmatch string such as 'pixel*' ('*' lists all), got {pattern!r}"
        )
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
        raise ArgumentError(f"zoo.info takes a registered ARCH[.TAG], got {name!r}")
    spec = get_spec(parsed.arch)
    if parsed.tag is not None:
        spec.weights_for(parsed.tag)  # raises for an unknown tag
    return spec


def with_plugin(spec: ModelSpec, plugin: str) -> ModelSpec:
    return replace(spec, plugin=plugin)


# names that moved to zoo.factory keep working here for one release, with a DeprecationWarning
__getattr__ = lazy_getattr(
    __name__, {}, moved={n: f"zoo.factory:{n}" for n in ("create", "load", "build", "import_builder")}
)
