"""Weights and the Hugging Face Hub: resolve, download, verify, load, save, publish.

All of the zoo's Hub I/O lives in this module (as in timm's `_hub.py`).

A *release folder* is exactly a Hub model repo:

    README.md           the model card (zoo/cards.py writes it from an EvalResult)
    config.json         architecture, constructor kwargs, data spec, zoo version, weights sha256
    model.safetensors   the state dict
    samples.png         a sample grid (optional)

`zoo.load(name)` resolves weights as follows:

- `arch[.tag]`: the registry pins the tag's `WeightsSpec` (repo id, revision,
  file, sha256). Looked up in order: the release folder bundled with the
  package (`cards/<arch>.<tag>/`, works offline), the local Hugging Face cache,
  then the Hub through `huggingface_hub.hf_hub_download`.
- `hf-hub:org/repo[@rev]`: `config.json` from the repo names the architecture;
  the weights are checked against the sha256 that `config.json` records.
- `local-dir:PATH`: the same, from a folder written by `save_pretrained`.

Every file's sha256 is checked before it is loaded. A file that does not match
raises `WeightsError`; a bad copy in the Hugging Face cache is deleted so that
the next call downloads a fresh one. State dicts load strictly, with a report
of missing and unexpected keys and of shape mismatches.

Environment (read at each call, so changing it at run time works):
`HF_ENDPOINT` (a self-hosted or mirror Hub), `HF_HUB_OFFLINE=1` (cache and
bundled files only), `HF_TOKEN` (private repos and publishing; never printed or
written anywhere), `HF_HUB_CACHE` / `HF_HOME` (where the cache is), and
`ZOO_CARDS_DIR` (use another folder of release folders instead of the bundled one).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from . import __version__
from .errors import UnknownNameError, WeightsError, ZooError
from .protocols import DataSpec
from .registry import ParsedName, WeightsSpec, build, get_spec, parse_name

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "WEIGHTS_NAME", "CONFIG_NAME", "CARD_NAME", "SAMPLES_NAME", "LoadedWeights", "CachedFile", "PublishResult",
    "load_pretrained", "save_pretrained", "render_release_card", "resolve_weights", "fetch", "verify_cache", "publish", "verify_claims",
    "sha256_file", "read_config", "release_dir", "bundled_cards_dirs", "hub_endpoint", "is_offline", "hub_cache_dir",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
CONFIG_FORMAT = 1  # version of the config.json layout written by save_pretrained
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class LoadedWeights:
    """Where a model's weights came from; set as `model.zoo_weights` by `zoo.load`."""

    sha256: str
    source: str  # "bundled", "hf-cache", "hf-hub" or "local-dir"
    path: str  # the file that was loaded
    repo_id: str = ""  # the Hub repo, when there is one
    revision: str = ""  # the commit the file came from, when known (else the pinned revision)
    filename: str = WEIGHTS_NAME
    tag: str | None = None

    def __getitem__(self, key: str) -> Any:  # lets provenance code read it like a dict
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Environment: read at call time (huggingface_hub reads most of these once, at import)
# --------------------------------------------------------------------------------------------
def hub_endpoint() -> str | None:
    """`HF_ENDPOINT` without a trailing slash, or None for huggingface_hub's default."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def _endpoint_name() -> str:
    from huggingface_hub import constants

    return hub_endpoint() or constants.ENDPOINT


def is_offline() -> bool:
    """True when `HF_HUB_OFFLINE` (or huggingface_hub's own offline switch) is on."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """The Hugging Face cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else huggingface_hub's default."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(env["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def bundled_cards_dirs() -> list[Path]:
    """Folders that hold release folders `<arch>.<tag>/`, in lookup order.

    `ZOO_CARDS_DIR` replaces them all. Otherwise: `zoo/cards/` as installed from a
    wheel (or mapped by an editable install), then `cards/` of a source checkout.
    """
    env = os.environ.get("ZOO_CARDS_DIR")
    if env:
        return [Path(env).expanduser()]
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec("zoo.cards")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations]
    package = Path(__file__).resolve().parent
    candidates = [package / "cards"]
    if (package.parent / "pyproject.toml").is_file():  # a source checkout: cards/ beside zoo/
        candidates.append(package.parent / "cards")
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in {d.resolve() for d in dirs}:
            dirs.append(candidate)
    return dirs


def release_dir(arch: str, tag: str) -> Path | None:
    """The bundled release folder of `arch.tag`, or None."""
    for root in bundled_cards_dirs():
        folder = root / f"{arch}.{tag}"
        if folder.is_dir():
            return folder
    return None


# --------------------------------------------------------------------------------------------
# Hashing and verification
# --------------------------------------------------------------------------------------------
def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path: Path, expected: str, where: str) -> str:
    """Raise `WeightsError` unless `path` hashes to `expected`; returns the hash."""
    if not expected or len(expected) != 64:
        raise WeightsError(f"{where}: no valid sha256 to check {path.name} against (got {expected!r}); refusing to load unverified weights")
    actual = sha256_file(path)
    if actual != expected.lower():
        size = path.stat().st_size
        raise WeightsError(
            f"{where}: sha256 mismatch for {path.name} ({size} bytes): expected {expected.lower()}, got {actual}. "
            "The file is corrupt, truncated or was tampered with; it was not loaded"
        )
    return actual


def _evict(path: Path, cache_dir: Path) -> None:
    """Delete a cached file: its snapshot entry and, when it lives in the cache's blobs, the blob."""
    blob = Path(os.path.realpath(path))
    for p in {path, blob}:
        try:
            inside = Path(os.path.realpath(p.parent)).is_relative_to(Path(os.path.realpath(cache_dir)))
        except OSError:
            inside = False
        if inside and (p.exists() or p.is_symlink()):
            p.unlink()


def _verify_cached(path: Path, expected: str, where: str, cache_dir: Path) -> str:
    """Check a file of the Hugging Face cache; a bad one is deleted before the error is raised."""
    try:
        return _check_sha256(path, expected, where)
    except WeightsError as e:
        _evict(path, cache_dir)
        raise WeightsError(f"{e}, and was deleted from the cache ({path}); the next load downloads it again") from None


# --------------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------------
def _plugin_package(plugin: str) -> str:
    """The distribution that provides entry point `plugin` in group `zoo`, or ""."""
    from importlib import metadata

    for ep in metadata.entry_points(group="zoo"):
        if ep.name == plugin and getattr(ep, "dist", None) is not None:
            return ep.dist.name
    return ""


def model_config(model: Any, *, sha256: str = "", tag: str | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The `config.json` of a model built by `zoo.create` or `zoo.load`."""
    name = getattr(model, "zoo_name", None)
    config = getattr(model, "zoo_config", None)
    if not name or config is None:
        raise ValueError(
            f"save_pretrained needs a model built by zoo.create or zoo.load (it reads model.zoo_name and "
            f"model.zoo_config); got a {type(model).__name__} without them"
        )
    spec = get_spec(name)
    data_spec = getattr(model, "data_spec", None) or spec.data_spec
    n_params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    try:
        json.dumps(dict(config))
    except TypeError as e:
        raise ValueError(f"model.zoo_config of {name!r} must be JSON-serialisable to be saved: {e}") from None
    return {
        "zoo_format": CONFIG_FORMAT,
        "architecture": name,
        "config": dict(config),
        "data_spec": data_spec.to_dict(),
        "zoo_version": __version__,
        "plugin": spec.plugin,
        "plugin_package": _plugin_package(spec.plugin) if spec.plugin else "",
        "tag": tag,
        "dataset": dataset,
        "weights": {"file": WEIGHTS_NAME, "format": "safetensors", "sha256": sha256, "num_parameters": n_params},
    }


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and check a release folder's `config.json` (a file or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"no {CONFIG_NAME} in {path.parent}: expected a folder written by zoo.save_pretrained") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise WeightsError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    missing = [k for k in ("architecture", "config", "data_spec", "weights") if k not in cfg]
    if missing:
        raise WeightsError(f"{path} lacks {', '.join(missing)}: expected a config.json written by zoo.save_pretrained")
    weights = cfg["weights"]
    if not isinstance(weights, dict) or not weights.get("sha256") or not weights.get("file"):
        raise WeightsError(f"{path}: 'weights' must give the file and its sha256, got {weights!r}")
    if not isinstance(cfg["config"], dict):
        raise WeightsError(f"{path}: 'config' must be an object of constructor arguments, got {cfg['config']!r}")
    return cfg


def _build_from_config(cfg: Mapping[str, Any], where: str) -> Any:
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
    model = build(spec, cfg["config"])
    expected = DataSpec.from_dict(cfg["data_spec"])
    if getattr(model, "data_spec", expected) != expected:
        raise WeightsError(f"{where}: config.json says data spec {expected}, but the built {arch!r} has {model.data_spec}")
    return model


# --------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------
def _read_safetensors(path: Path, where: str) -> dict[str, "torch.Tensor"]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{where}: {path.name} is not a readable safetensors file: {e}") from None


def _mismatch_report(model: Any, tensors: Mapping[str, "torch.Tensor"]) -> str:
    """'' when `tensors` fits `model.state_dict()` exactly, else a readable list of the differences."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(tensors[k].shape)}, model {tuple(expected[k].shape)}"
        for k in set(expected) & set(tensors) if tuple(tensors[k].shape) != tuple(expected[k].shape)
    )

    def block(title: str, items: list[str]) -> str:
        shown = "\n".join(f"    {i}" for i in items[:20])
        more = f"\n    ... and {len(items) - 20} more" if len(items) > 20 else ""
        return f"  {title} ({len(items)}):\n{shown}{more}" if items else ""

    parts = [block("missing from the file", missing), block("unexpected in the file", unexpected), block("shape mismatches", shapes)]
    return "\n".join(p for p in parts if p)


def _load_state_dict(model: Any, path: Path, where: str) -> None:
    """Load `path` into `model` strictly; a mismatch raises `WeightsError` with the full report."""
    tensors = _read_safetensors(path, where)
    report = _mismatch_report(model, tensors)
    if report:
        raise WeightsError(f"{where}: the weights do not fit {type(model).__name__} (strict loading):\n{report}")
    model.load_state_dict(tensors, strict=True)


def _finish(model: Any, weights: LoadedWeights, device: Any, dtype: Any) -> Any:
    model.zoo_weights = weights
    model.to(device=device)
    if dtype is not None:
        import torch

        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch.dtype such as torch.float32, got {dtype!r}")
        model.to(dtype=dtype)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------
def _download(repo_id: str, filename: str, revision: str | None) -> Path:
    """`hf_hub_download` into the cache, honouring the environment, with the zoo's errors."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
        RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    endpoint = _endpoint_name()
    at = f"{repo_id}@{revision or 'main'}"
    try:
        path = hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=str(hub_cache_dir()), endpoint=hub_endpoint(),
            local_files_only=is_offline(), library_name="zoo", library_version=__version__,
        )
    except GatedRepoError:
        raise WeightsError(f"{at} at {endpoint} is gated: accept its terms on the Hub and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise WeightsError(
            f"repository {repo_id!r} not found at {endpoint} (or it is private and HF_TOKEN does not grant access)"
        ) from None
    except RevisionNotFoundError:
        raise WeightsError(f"revision {revision!r} not found in {repo_id!r} at {endpoint}") from None
    except RemoteEntryNotFoundError:
        raise WeightsError(f"file {filename!r} not found in {at} at {endpoint}") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        if is_offline():
            raise WeightsError(
                f"{filename} of {at} is not in the cache ({hub_cache_dir()}) and HF_HUB_OFFLINE is set: "
                f"run `zoo fetch` on a machine with access to {endpoint}, or unset HF_HUB_OFFLINE"
            ) from None
        cause = e.__cause__ or e
        raise WeightsError(
            f"cannot reach the Hub at {endpoint} to get {filename} of {at} ({type(cause).__name__}: {cause}), "
            "and it is not in the cache; check the connection or HF_ENDPOINT"
        ) from None
    except HfHubHTTPError as e:
        raise WeightsError(f"the Hub at {endpoint} refused {filename} of {at}: {e}") from None
    except OSError as e:  # truncated transfers ("Consistency check failed"), disk errors
        raise WeightsError(f"downloading {filename} of {at} from {endpoint} failed: {e}") from None
    return Path(path)


def _commit_of(path: Path) -> str:
    """The commit of a file in the cache: `.../snapshots/<commit>/<file>`."""
    parts = path.parts
    if "snapshots" in parts:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return ""


def _cached(repo_id: str, filename: str, revision: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(hub_cache_dir()), revision=revision)
    return Path(found) if isinstance(found, str) else None


# --------------------------------------------------------------------------------------------
# Resolution and loading
# --------------------------------------------------------------------------------------------
def resolve_weights(arch: str, tag: str | None = None, *, download: bool = True) -> LoadedWeights:
    """Find and verify the pinned weights of a registered `arch[.tag]`: bundled, then cache, then Hub."""
    spec = get_spec(arch)
    ws: WeightsSpec = spec.weights_for(tag)
    name = f"{arch}.{ws.tag}"

    folder = release_dir(arch, ws.tag)
    if folder is not None and (folder / ws.filename).is_file():
        path = folder / ws.filename
        try:
            sha = _check_sha256(path, ws.sha256, f"bundled weights of {name} ({folder})")
        except WeightsError as e:
            raise WeightsError(
                f"{e}. The package's copy is damaged: reinstall the zoo, or move {folder} away to use the Hub copy"
            ) from None
        return LoadedWeights(sha, "bundled", str(path), ws.hub_id, ws.revision, ws.filename, ws.tag)

    cache = hub_cache_dir()
    path = _cached(ws.hub_id, ws.filename, ws.revision)
    if path is not None:
        sha = _verify_cached(path, ws.sha256, f"cached weights of {name}", cache)
        return LoadedWeights(sha, "hf-cache", str(path), ws.hub_id, _commit_of(path) or ws.revision, ws.filename, ws.tag)
    if not download:
        raise WeightsError(f"{name} is neither bundled nor in the cache ({cache})")

    path = _download(ws.hub_id, ws.filename, ws.revision)
    sha = _verify_cached(path, ws.sha256, f"weights of {name} from {ws.hub_id}@{ws.revision}", cache)
    return LoadedWeights(sha, "hf-hub", str(path), ws.hub_id, _commit_of(path) or ws.revision, ws.filename, ws.tag)


def _hub_files(repo_id: str, revision: str | None) -> tuple[dict[str, Any], LoadedWeights]:
    """config.json and the verified weights file of a Hub repo, both from one commit."""
    config_path = _download(repo_id, CONFIG_NAME, revision)
    cfg = read_config(config_path)
    commit = _commit_of(config_path) or revision
    filename = cfg["weights"]["file"]
    at = f"hf-hub:{repo_id}@{commit or 'main'}"
    cache = hub_cache_dir()
    path = _download(repo_id, filename, commit)
    sha = _verify_cached(path, cfg["weights"]["sha256"], f"{at}: {filename}", cache)
    return cfg, LoadedWeights(sha, "hf-hub", str(path), repo_id, _commit_of(path) or commit or "", filename, cfg.get("tag"))


def _local_files(folder: Path) -> tuple[dict[str, Any], LoadedWeights]:
    if not folder.is_dir():
        raise WeightsError(f"local-dir:{folder}: no such folder")
    cfg = read_config(folder)
    path = folder / cfg["weights"]["file"]
    if not path.is_file():
        raise WeightsError(f"local-dir:{folder}: config.json names weights {cfg['weights']['file']!r}, which is not there")
    sha = _check_sha256(path, cfg["weights"]["sha256"], f"local-dir:{folder}")
    return cfg, LoadedWeights(sha, "local-dir", str(path), filename=path.name, tag=cfg.get("tag"))


def load_pretrained(
    parsed: ParsedName | str,
    *,
    device: "str | torch.device" = "cpu",
    dtype: "torch.dtype | None" = None,
    revision: str | None = None,
) -> Any:
    """A pretrained model in eval mode; see the module docstring for how names resolve.

    `revision` overrides the pinned revision of a registered name (the weights are then
    checked against that revision's config.json instead of the registry's pin) or the
    `@rev` of an `hf-hub:` name.
    """
    if isinstance(parsed, str):
        parsed = parse_name(parsed)
    if parsed.kind == "registry":
        spec = get_spec(parsed.arch)
        ws = spec.weights_for(parsed.tag)
        if revision is not None and revision != ws.revision:
            return load_pretrained(ParsedName("hub", repo_id=ws.hub_id, revision=revision), device=device, dtype=dtype)
        weights = resolve_weights(parsed.arch, ws.tag)
        config = {**spec.config, **ws.config}
        model = build(spec, config)
        _load_state_dict(model, Path(weights.path), f"{parsed.arch}.{ws.tag} ({weights.source})")
        return _finish(model, weights, device, dtype)
    if parsed.kind == "hub":
        cfg, weights = _hub_files(parsed.repo_id, revision or parsed.revision)
        where = f"hf-hub:{parsed.repo_id}@{weights.revision}"
    elif parsed.kind == "local":
        folder = Path(parsed.path).expanduser()
        cfg, weights = _local_files(folder)
        where = f"local-dir:{folder}"
    else:  # pragma: no cover - parse_name only makes the three kinds
        raise ValueError(f"cannot load a name of kind {parsed.kind!r}")
    model = _build_from_config(cfg, where)
    _load_state_dict(model, Path(weights.path), where)
    return _finish(model, weights, device, dtype)


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def _write_safetensors(model: Any, path: Path) -> None:
    from safetensors.torch import save_file

    # clone: tensors that share storage (tied weights) are saved as separate copies, so the file loads strictly
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    # One metadata key only: safetensors writes metadata in hash-map order, so a second key would
    # make the same weights hash differently from one process to the next (config.json says the rest).
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)


def save_pretrained(
    model: Any,
    directory: str | Path,
    *,
    results: Any = None,
    samples: Any = None,
    recipe: Mapping[str, Any] | None = None,
    tag: str | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
    hardware: str | None = None,
    limitations: list[str] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write a release folder: `config.json`, `model.safetensors`, and, when given, the card and samples.

    - `results`: an `EvalResult` (or its dict) from `zoo.evaluate`; with it, `README.md`
      (the model card) is generated. Cards are never written by hand.
    - `samples`: integer levels `(n, C, H, W)`, an image file to copy, or an int `n`
      to draw `n` samples from the model with seed 0; written as `samples.png`.
    - `dataset`: the dataset the weights were trained on (recorded in config.json and the card).
    - `recipe`, `hardware`, `limitations`, `license`, `repo_id`: shown in the card; `training`
      (the run's summary: epochs, wall_time_s) sets the published numbers in context.
    """
    from . import cards

    cfg = model_config(model, tag=tag, dataset=dataset)  # checks the model before anything is written
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / WEIGHTS_NAME
    _write_safetensors(model, weights_path)
    cfg["weights"]["sha256"] = sha256_file(weights_path)
    (folder / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=False) + "\n")

    have_samples = _write_samples(model, samples, folder / SAMPLES_NAME) if samples is not None else (folder / SAMPLES_NAME).is_file()
    if results is not None:
        card = cards.render_card(
            cfg, results, repo_id=repo_id, recipe=recipe, samples=SAMPLES_NAME if have_samples else None,
            license=license, hardware=hardware, limitations=limitations, training=training,
        )
        (folder / CARD_NAME).write_text(card)
    return folder


def render_release_card(directory: str | Path, *, metrics: str | None = None, limit: int | None = None,
                        progress: bool = False) -> Path:
    """Rewrite a release folder's card (README.md) from its files: config.json, training.json
    (recipe, hardware, wall time) and eval.json (the harness's results).

    With `metrics` (e.g. "fid,precision,recall,parzen"), the harness first scores the folder's
    weights on the test split of the dataset they were trained on, and eval.json is replaced.
    The weights and samples are not touched. Returns the card's path."""
    from . import cards

    folder = Path(directory).expanduser()
    cfg = read_config(folder / CONFIG_NAME)
    if sha256_file(folder / WEIGHTS_NAME) != cfg["weights"]["sha256"]:
        raise ZooError(f"{folder / WEIGHTS_NAME} does not match the sha256 in its config.json; not rendering its card")
    eval_path = folder / "eval.json"
    if metrics:
        from .eval import evaluate

        model = load_pretrained(f"local-dir:{folder}")
        dataset = cfg.get("dataset") or cfg.get("tag")
        result = evaluate(model, dataset=dataset, split="test", metrics=metrics, limit=limit, progress=progress)
        eval_path.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    if not eval_path.is_file():
        raise ZooError(f"{folder} has no eval.json: pass metrics to score the weights first")
    results = _results_of_these_weights(folder, cfg, json.loads(eval_path.read_text()))
    eval_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    training = json.loads((folder / "training.json").read_text()) if (folder / "training.json").is_file() else None
    recipe = hardware = None
    if training:
        recipe = {"name": training.get("recipe_name"), **training.get("recipe", {})}
        epochs = training.get("epochs")
        hardware = (f"{training.get('wall_time_s', 0) / 60:.1f} min, {epochs} epoch{'' if epochs == 1 else 's'}"
                    f" ({_training_commands(training)})")
        if _stage_hardware(training) is None:  # one machine for the whole run; else each command names its own
            hardware = f"{_hardware_text(training.get('hardware'))}, {hardware}"
    limitations = None
    if training and training.get("limit"):
        limitations = [f"trained on the first {training['limit']} images of the "
                       f"{training.get('recipe', {}).get('train_split', 'train')} split only (--limit)"]
    card = cards.render_card(cfg, results, recipe=recipe, hardware=hardware, training=training, limitations=limitations,
                             samples=SAMPLES_NAME if (folder / SAMPLES_NAME).is_file() else None)
    (folder / CARD_NAME).write_text(card)
    return folder / CARD_NAME


def _results_of_these_weights(folder: Path, cfg: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """eval.json's results, checked to be of the folder's weights and naming them by the file's sha256.

    `zoo train` scores the model in memory before writing model.safetensors, so the harness records the
    sha256 of the tensors (serialised without metadata), not of the file. When the file holds exactly
    those tensors the provenance is rewritten to the file's sha256; results of other weights are refused."""
    prov = results.get("provenance") or {}
    file_sha = cfg["weights"]["sha256"]
    if prov.get("weights") in (None, file_sha):
        return results
    if prov.get("weights_source") != "in-memory state_dict":
        raise ZooError(f"{folder}/eval.json was measured on weights {prov.get('weights')}, "
                       f"not on this folder's model.safetensors ({file_sha})")
    from .eval.harness import _state_sha256

    if _state_sha256(load_pretrained(f"local-dir:{folder}")) != prov["weights"]:
        raise ZooError(f"{folder}/eval.json was measured on other tensors than this folder's model.safetensors; "
                       "re-score them (zoo card DIR --metrics ...)")
    note = "scored in memory before being written; model.safetensors holds the same tensors"
    prov = {**prov, "weights": file_sha, "weights_source": "model.safetensors", "note": "; ".join(x for x in (prov.get("note"), note) if x)}
    return {**results, "provenance": prov}


def _hardware_text(hardware: Any) -> str:
    return str(hardware).replace(" 1 threads)", " 1 thread)")  # runs recorded before the singular was fixed


def _stage_hardware(training: dict[str, Any]) -> list[str] | None:
    """Each stage's hardware when the stages of a run recorded different ones, else None (one machine)."""
    stages = training.get("stages") or []
    hardware = [_hardware_text(s["hardware"]) for s in stages if s.get("hardware")]
    if len(hardware) != len(stages) or len(set(hardware)) < 2:
        return None
    return hardware


def _training_commands(training: dict[str, Any]) -> str:
    """The `zoo train` command(s) that produced a run, from its training.json: one command, or the
    first one and each `--resume` that changed the number of epochs (the cosine schedule follows them)."""
    base = ["zoo", "train", str(training.get("model")), "--dataset", str(training.get("dataset"))]
    if training.get("recipe_name") not in (None, "default"):
        base += ["--recipe", str(training["recipe_name"])]
    limit = ["--limit", str(training["limit"])] if training.get("limit") else []
    stages = training.get("stages") or [{"epochs": training.get("epochs"), "from_epoch": 0}]
    hardware = _stage_hardware(training)
    parts = []
    for i, stage in enumerate(stages):
        if i and stages[i - 1]["epochs"] != stage["from_epoch"]:  # the previous stage was stopped early
            done = stage["from_epoch"]
            parts[-1] += f" stopped after {stage.get('from_step')} steps ({done} epoch{'' if done == 1 else 's'} done)"
        parts.append("`" + " ".join(base + ["--epochs", str(stage["epochs"])] + limit + (["--resume"] if i else [])) + "`")
        if hardware is not None:
            parts[-1] += f" on {hardware[i]}"
    if len(parts) == 1:
        return parts[0]
    return ", then ".join(parts) + " in the same --out folder"


def _write_samples(model: Any, samples: Any, path: Path) -> bool:
    import torch

    from .images import save_grid

    if isinstance(samples, (str, Path)):
        shutil.copyfile(samples, path)
        return True
    if isinstance(samples, int) and not isinstance(samples, bool):
        g = torch.Generator().manual_seed(0)
        samples = model.sample(samples, generator=g)
    if not isinstance(samples, torch.Tensor):
        raise ValueError(f"samples must be a tensor of levels (n, C, H, W), an image path or an int, got {type(samples).__name__}")
    spec = model.data_spec
    save_grid(spec.validate(samples, name="samples"), path, spec.levels, scale=2)
    return True


# --------------------------------------------------------------------------------------------
# zoo fetch, zoo cache verify
# --------------------------------------------------------------------------------------------
def fetch(name: str, *, revision: str | None = None) -> LoadedWeights:
    """Download `name`'s weights into the Hugging Face cache (whether or not they are bundled) and verify them."""
    parsed = parse_name(name)
    if parsed.kind == "local":
        raise ValueError(f"zoo fetch downloads from the Hub; {name!r} is a local folder")
    if parsed.kind == "hub":
        _, weights = _hub_files(parsed.repo_id, revision or parsed.revision)
        return weights
    spec = get_spec(parsed.arch)
    ws = spec.weights_for(parsed.tag)
    if revision is not None and revision != ws.revision:
        _, weights = _hub_files(ws.hub_id, revision)
        return weights
    cache = hub_cache_dir()
    path = _cached(ws.hub_id, ws.filename, ws.revision)
    source = "hf-cache"
    if path is None:
        path, source = _download(ws.hub_id, ws.filename, ws.revision), "hf-hub"
    sha = _verify_cached(path, ws.sha256, f"weights of {parsed.arch}.{ws.tag}", cache)
    return LoadedWeights(sha, source, str(path), ws.hub_id, _commit_of(path) or ws.revision, ws.filename, ws.tag)


@dataclass
class CachedFile:
    """One weights file checked by `verify_cache`."""

    name: str  # arch.tag or hf-hub:repo@commit
    path: str
    expected: str
    actual: str
    status: str = ""  # "ok", "mismatch", "deleted"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_cache(*, delete: bool = False) -> list[CachedFile]:
    """Re-hash every zoo weights file in the bundled folders and the Hugging Face cache.

    Registered tags are checked against the registry's pinned sha256; other zoo repos
    in the cache (those with a zoo config.json) against the sha256 their config.json
    records. With `delete=True`, bad files in the cache are deleted (bundled files never are).
    """
    from .plugins import get_registry

    cache = hub_cache_dir()
    out: list[CachedFile] = []
    seen: set[str] = set()

    def check(name: str, path: Path, expected: str, deletable: bool) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        actual = sha256_file(path)
        entry = CachedFile(name, str(path), expected, actual, "ok" if actual == expected.lower() else "mismatch")
        if not entry.ok and delete and deletable:
            _evict(path, cache)
            entry.status = "deleted"
        out.append(entry)

    for spec in sorted(get_registry().models.values(), key=lambda s: s.name):
        for ws in spec.weights:
            folder = release_dir(spec.name, ws.tag)
            if folder is not None and (folder / ws.filename).is_file():
                check(f"{spec.name}.{ws.tag} (bundled)", folder / ws.filename, ws.sha256, False)
            path = _cached(ws.hub_id, ws.filename, ws.revision)
            if path is not None:
                check(f"{spec.name}.{ws.tag}", path, ws.sha256, True)

    for repo_dir in sorted(cache.glob("models--*")):
        repo_id = repo_dir.name[len("models--"):].replace("--", "/")
        for snapshot in sorted((repo_dir / "snapshots").glob("*")):
            config = snapshot / CONFIG_NAME
            if not config.is_file():
                continue
            try:
                cfg = read_config(config)
            except WeightsError:
                continue  # not a zoo repo
            path = snapshot / cfg["weights"]["file"]
            if path.is_file():
                check(f"hf-hub:{repo_id}@{snapshot.name}", path, cfg["weights"]["sha256"], True)
    return out


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection errors of whichever HTTP library this huggingface_hub uses."""
    import importlib

    errors: list[type[BaseException]] = [OSError]
    for module, attr in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            errors.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


@dataclass
class PublishResult:
    repo_url: str
    commit: str
    commit_url: str
    tag: str | None
    revision: str
    files: list[str] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)  # cards.ClaimCheck, empty with verify=False


def _publish_folder(source: str | Path) -> Path:
    """A release folder from a registered `arch[.tag]` (its bundled folder) or a path."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if text.startswith("local-dir:"):
        return _publish_folder(text[len("local-dir:"):])
    try:
        parsed = parse_name(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.kind != "registry" or "/" in text:
        raise ValueError(f"expected a registered ARCH[.TAG] or a release folder, got {text!r} (no such folder)")
    spec = get_spec(parsed.arch)
    ws = spec.weights_for(parsed.tag)
    folder = release_dir(parsed.arch, ws.tag)
    if folder is None:
        roots = ", ".join(str(r) for r in bundled_cards_dirs()) or "none"
        raise ZooError(f"no release folder {parsed.arch}.{ws.tag}/ among the bundled cards ({roots})")
    return folder


def verify_claims(folder: Path, *, limit: int | None = None, rtol: float | None = None,
                  evaluate: Callable[..., Any] | None = None) -> list[Any]:
    """Re-run the harness on the claims of `folder`'s card and compare; returns the `ClaimCheck`s."""
    from . import cards

    card = folder / CARD_NAME
    if not card.is_file():
        raise ZooError(f"{folder} has no {CARD_NAME}: write the folder with zoo.save_pretrained(model, DIR, results=zoo.evaluate(...))")
    claims = cards.read_claims(card.read_text())
    if not claims.metrics:
        return []
    if evaluate is None:
        import zoo

        evaluate = zoo.evaluate
    model = load_pretrained(ParsedName("local", path=str(folder)))
    kwargs: dict[str, Any] = {"dataset": claims.dataset, "split": claims.split, "metrics": claims.metric_names}
    if claims.seed is not None:
        kwargs["seed"] = claims.seed
    if limit is not None:
        kwargs["limit"] = limit
    elif claims.limit is not None:
        kwargs["limit"] = claims.limit
    try:
        accepted = inspect.signature(evaluate).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            dropped = [k for k in kwargs if k not in accepted and k != "limit"]
            if "limit" in kwargs and "limit" not in accepted:
                raise ZooError("zoo.evaluate does not take limit=, so --limit cannot be honoured")
            for k in dropped:
                kwargs.pop(k)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        pass
    result = evaluate(model, **kwargs)
    subset = limit is not None and (claims.n is None or limit < claims.n)
    return cards.compare_claims(claims, cards.summarize(result), subset=subset, rtol=rtol)


def _iter_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts) and not rel.endswith(".tmp"):
            yield rel, path


def publish(
    source: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    tag: str | None = None,
    private: bool = False,
    verify: bool = True,
    limit: int | None = None,
    rtol: float | None = None,
    commit_message: str | None = None,
    evaluate: Callable[..., Any] | None = None,
    echo: Callable[[str], None] = lambda s: None,
) -> PublishResult:
    """Publish a release folder to the Hub: verify, create the repo, one commit, tag.

    `source` is a registered `arch[.tag]` (its bundled release folder) or a folder written
    by `save_pretrained`. Before anything is uploaded, the folder's weights are checked
    against its config.json and, unless `verify=False`, the harness re-runs the card's
    claims (on `limit` images when given) and publishing stops if they do not reproduce.
    The token comes from `HF_TOKEN` or the huggingface_hub login; it is never printed.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"--repo-id must be ORG/NAME, got {repo_id!r}")
    folder = _publish_folder(source)
    _local_files(folder)  # config.json readable, weights present and matching their sha256
    checks: list[Any] = []
    if verify:
        echo(f"verifying the card's claims of {folder} with the harness{f' (limit {limit})' if limit else ''} ...")
        checks = verify_claims(folder, limit=limit, rtol=rtol, evaluate=evaluate)
        for c in checks:
            echo(f"  {c}")
        bad = [c for c in checks if not c.ok]
        if bad:
            raise ZooError(
                "refusing to publish: the card's numbers do not reproduce within tolerance:\n"
                + "\n".join(f"  {c}" for c in bad)
                + "\nre-evaluate and regenerate the card, or pass --no-verify to publish anyway"
            )
        if not checks:
            echo("  the card makes no metric claims")

    endpoint = _endpoint_name()
    api = HfApi(endpoint=hub_endpoint(), library_name="zoo", library_version=__version__)
    branch = revision or "main"
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        files = list(_iter_files(folder))
        operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files]
        # One commit for the whole folder (upload_folder may split large folders into several commits).
        info = api.create_commit(
            repo_id, operations, revision=branch,
            commit_message=commit_message or f"Upload {folder.name} with zoo {__version__}",
        )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=f"zoo release {tag}")
    except RepositoryNotFoundError:
        raise ZooError(f"cannot publish to {repo_id!r} at {endpoint}: repository not found or no write access (check HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise ZooError(f"cannot publish to {repo_id!r} at {endpoint}: branch {branch!r} does not exist") from None
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        hint = "; set HF_TOKEN to a token with write access" if status in (401, 403) else ""
        if status == 409 and tag:
            hint = f"; tag {tag!r} already exists in {repo_id}"
        raise ZooError(f"publishing to {repo_id!r} at {endpoint} failed (HTTP {status}){hint}") from None
    except _transport_errors() as e:
        raise ZooError(f"cannot reach the Hub at {endpoint} to publish {repo_id!r}: {type(e).__name__}: {e}") from None
    return PublishResult(str(repo_url), info.oid, info.commit_url, tag, branch, [rel for rel, _ in files], checks)
