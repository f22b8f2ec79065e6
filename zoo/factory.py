"""Names into models: `create` (random weights) and `load` (pretrained), the one place that does it.

`zoo.load(name)` reads top to bottom:

1. `parse_name` (zoo.registry) takes the name apart;
2. the weights are found and their sha256 checked:
   - `arch[.tag]`: the registry pins the tag's `WeightsSpec` (repo id, revision, file, sha256);
     looked up in the release folder bundled with the package (`cards/<arch>.<tag>/`, works
     offline), then the Hugging Face cache, then the Hub (zoo.weights, zoo.hub);
   - `hf-hub:org/repo[@rev]`: `config.json` of the repo names the architecture and the
     weights' sha256 (zoo.hub);
   - `local-dir:PATH`: the same, from a folder written by `save_pretrained` (zoo.weights);
3. the model is built from the registry's config (or the folder's config.json) by the spec's builder;
4. the state dict loads strictly (zoo.weights), and the model moves to the device in eval mode.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import hub
from .errors import ArgumentError, UnknownNameError, WeightsError, ZooError
from .protocols import DataSpec
from .registry import ModelSpec, ParsedName, get_spec, parse_name
from .weights import LoadedWeights, check_sha256, load_state_dict, local_files, release_dir

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["create", "load", "load_pretrained", "resolve_weights", "build", "import_builder"]


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
def import_builder(path: str) -> Callable[..., Any]:
    """Import `module:callable`."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ZooError(f"cannot import model module {module_name!r}: {e}") from e
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ZooError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


DEFAULT_MAX_PARAMS = 1_000_000_000  # 4 GB of float32: far above every registered model


def max_params_limit(max_params: int | None = None) -> int:
    """The largest parameter count `build` allows: `max_params`, else `ZOO_MAX_PARAMS`, else 10**9."""
    import os

    from .util import is_positive_int

    if max_params is None:
        raw = os.environ.get("ZOO_MAX_PARAMS", "").strip()
        if not raw:
            return DEFAULT_MAX_PARAMS
        try:
            max_params = int(float(raw)) if float(raw).is_integer() else None
        except (ValueError, OverflowError):
            max_params = None
        if is_positive_int(max_params):
            return max_params
        raise ArgumentError(f"ZOO_MAX_PARAMS must be a positive whole number of parameters, got {raw!r}")
    if is_positive_int(max_params):
        return max_params
    raise ArgumentError(f"max_params must be a positive int, got {max_params!r}")


def parameter_count(builder: Callable[..., Any], config: Mapping[str, Any]) -> int | None:
    """How many parameters `builder(**config)` would allocate, counted on the meta device (no memory, no
    initialisation); None when the builder cannot run there (then nothing is estimated)."""
    import torch

    try:
        with torch.device("meta"), _skip_init_on_meta():
            model = builder(**config)
    except Exception:  # the real build, which follows, raises the builder's own error
        return None
    params = getattr(model, "parameters", None)
    return sum(p.numel() for p in params()) if callable(params) else None


def _skip_init_on_meta():
    from torch.overrides import TorchFunctionMode

    class SkipInitOnMeta(TorchFunctionMode):
        """In-place initialisers (`normal_`, `uniform_`, `zero_`...) on meta tensors do nothing: their values do
        not exist, and torch would import its compiler to trace them (seconds, once per process)."""

        def __torch_function__(
            self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None
        ) -> Any:
            name = getattr(func, "__name__", "")
            target = args[0] if args else (kwargs or {}).get("tensor")  # torch.nn.init passes tensor=
            if name.endswith("_") and not name.endswith("__") and getattr(target, "is_meta", False):
                return target
            return func(*args, **(kwargs or {}))

    return SkipInitOnMeta()


def build(spec: ModelSpec, config: Mapping[str, Any], *, max_params: int | None = None) -> Any:
    """Call the spec's builder with `config`, turning options it does not take into a clear error.

    The parameters are counted on the meta device first: a config asking for more than `max_params`
    (default `ZOO_MAX_PARAMS`, else 10**9) raises `ArgumentError` before any memory is allocated."""
    builder = import_builder(spec.builder)
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        allowed = [k for k, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        bad = [k for k in config if k not in allowed]
        if bad:
            raise ArgumentError(
                f"{spec.name} does not take option(s) {', '.join(map(repr, bad))}; its options: {', '.join(allowed)}"
            )
    limit = max_params_limit(max_params)
    count = parameter_count(builder, config)
    if count is not None and count > limit:
        raise ArgumentError(
            f"{spec.name} with config {_short(config)} would have {count:,} parameters ({count * 4 / 1e9:,.1f} GB "
            f"in float32), above the limit of {limit:,}; pass max_params= (or set ZOO_MAX_PARAMS) to allow it"
        )
    model = builder(**config)
    model.zoo_name = spec.name
    model.zoo_config = dict(config)
    model.zoo_weights = None  # set by load(): where the weights came from (a LoadedWeights)
    return model


def _short(config: Mapping[str, Any]) -> str:
    text = repr(dict(config))
    return text if len(text) <= 120 else text[:117] + "..."


def create(name: str, *, max_params: int | None = None, **overrides: Any) -> Any:
    """A model of `name` with random weights; `overrides` replace entries of its default config.

    A config asking for more than `max_params` parameters (default `ZOO_MAX_PARAMS`, else 10**9) is refused."""
    parsed = parse_name(name)
    if parsed.kind != "registry":
        raise ArgumentError(f"zoo.create builds a registered architecture; for {name!r} use zoo.load")
    spec = get_spec(parsed.arch)
    config = dict(spec.config)
    if parsed.tag is not None:
        config.update(spec.weights_for(parsed.tag).config)
    config.update(overrides)
    return build(spec, config, max_params=max_params)


def _build_from_config(cfg: Mapping[str, Any], where: str, max_params: int | None) -> Any:
    """Construct the architecture that a config.json names, with its constructor kwargs."""
    arch = cfg["architecture"]
    try:
        spec = get_spec(arch)
    except UnknownNameError:
        plugin, package = cfg.get("plugin") or "?", cfg.get("plugin_package") or ""
        hint = f"`pip install {package}`" if package else "install the plugin that registers it"
        raise WeightsError(
            f"{where} needs architecture {arch!r} from plugin {plugin!r}"
            f"{f' (package {package})' if package else ''}, which is not installed: {hint}, then check `zoo plugins`"
        ) from None
    model = build(spec, cfg["config"], max_params=max_params)
    expected = DataSpec.from_dict(cfg["data_spec"])
    if getattr(model, "data_spec", expected) != expected:
        raise WeightsError(
            f"{where}: config.json says data spec {expected}, but the built {arch!r} has {model.data_spec}"
        )
    return model


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def resolve_weights(arch: str, tag: str | None = None, *, download: bool = True) -> LoadedWeights:
    """Find and verify the pinned weights of a registered `arch[.tag]`: bundled, then cache, then Hub."""
    ws = get_spec(arch).weights_for(tag)
    name = f"{arch}.{ws.tag}"
    folder = release_dir(arch, ws.tag)
    if folder is not None and (folder / ws.filename).is_file():
        path = folder / ws.filename
        try:
            sha = check_sha256(path, ws.sha256, f"bundled weights of {name} ({folder})")
        except WeightsError as e:
            raise WeightsError(
                f"{e}. The package's copy is damaged: reinstall the zoo, or move {folder} away to use the Hub copy"
            ) from None
        return LoadedWeights(sha, "bundled", str(path), ws.hub_id, ws.revision, ws.filename, ws.tag)
    return hub.pinned_weights(name, ws, download_missing=download)


def _finish(model: Any, weights: LoadedWeights, device: Any, dtype: Any) -> Any:
    model.zoo_weights = weights
    model.to(device=device)
    if dtype is not None:
        import torch

        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ArgumentError(f"dtype must be a floating torch.dtype such as torch.float32, got {dtype!r}")
        model.to(dtype=dtype)
    return model.eval()


def load_pretrained(
    parsed: ParsedName | str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    max_params: int | None = None,
) -> Any:
    """A pretrained model in eval mode; see the module docstring for how names resolve.

    `revision` overrides the pinned revision of a registered name (the weights are then
    checked against that revision's config.json instead of the registry's pin) or the
    `@rev` of an `hf-hub:` name. A config.json asking for more than `max_params` parameters
    (default `ZOO_MAX_PARAMS`, else 10**9) is refused before the model is allocated.
    """
    if isinstance(parsed, str):
        parsed = parse_name(parsed)
    from .distributed import check_device  # (deferred: torch)

    if device is not None:  # (None: leave the model where it is built)
        check_device(device)  # before anything is downloaded or built
    if parsed.kind == "registry":
        spec = get_spec(parsed.arch)
        ws = spec.weights_for(parsed.tag)
        if revision is not None and revision != ws.revision:  # another revision: trust its config.json, not the pin
            parsed = ParsedName("hub", repo_id=ws.hub_id, revision=revision)
        else:
            weights = resolve_weights(parsed.arch, ws.tag)
            model = build(spec, {**spec.config, **ws.config}, max_params=max_params)
            load_state_dict(model, Path(weights.path), f"{parsed.arch}.{ws.tag} ({weights.source})")
            return _finish(model, weights, device, dtype)
    if parsed.kind == "hub":
        cfg, weights = hub.hub_files(parsed.repo_id, revision or parsed.revision)
        where = f"hf-hub:{parsed.repo_id}@{weights.revision}"
    elif parsed.kind == "local":
        folder = Path(parsed.path).expanduser()
        cfg, weights = local_files(folder)
        where = f"local-dir:{folder}"
    else:  # pragma: no cover - parse_name only makes the three kinds
        raise ValueError(f"cannot load a name of kind {parsed.kind!r}")
    model = _build_from_config(cfg, where, max_params)
    load_state_dict(model, Path(weights.path), where)
    return _finish(model, weights, device, dtype)


def load(
    name: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    max_params: int | None = None,
) -> Any:
    """A pretrained model in eval mode, its weights verified by sha256 and loaded strictly.

    `name` is `arch`, `arch.tag`, `hf-hub:org/repo[@rev]` or `local-dir:PATH`. A model of more than
    `max_params` parameters (default `ZOO_MAX_PARAMS`, else 10**9) is refused before it is allocated.
    """
    return load_pretrained(parse_name(name), device=device, dtype=dtype, revision=revision, max_params=max_params)
