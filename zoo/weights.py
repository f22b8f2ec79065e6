"""Weights on disk: config.json, sha256 checks, safetensors, strict loading, bundled release folders.

A *release folder* is exactly a Hub model repo:

    README.md           the model card (written by zoo.release from an EvalResult)
    config.json         architecture, constructor kwargs, data spec, zoo version, weights sha256
    model.safetensors   the state dict
    samples.png         a sample grid (optional)

This module reads and writes the files of such a folder and checks them; it never
downloads (that is `zoo.hub`) and never builds a model from a name (that is `zoo.factory`).
Every file's sha256 is checked before it is loaded, and state dicts load strictly, with a
report of missing and unexpected keys and of shape mismatches.

Release folders are looked up in `ZOO_CARDS_DIR`'s folders (read at each call), then in the folder
a plugin ships for its own weights (`WeightsSpec.cards`), then in the zoo's bundled `cards/`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import WeightsError, ZooError
from .protocols import DataSpec
from .registry import get_spec
from .util import atomic_write, sha256_file, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "CARD_NAME",
    "SAMPLES_NAME",
    "CONFIG_FORMAT",
    "LoadedWeights",
    "bundled_cards_dirs",
    "plugin_cards_dir",
    "cards_dirs",
    "release_dir",
    "check_sha256",
    "model_config",
    "read_config",
    "local_files",
    "load_state_dict",
    "save_weights",
    "state_sha256",
    "sha256_file",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
CONFIG_FORMAT = 1  # version of the config.json layout written by save_weights


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        """Deprecated: read the attributes (`weights.sha256`); dict access goes away in the next release."""
        import warnings

        warnings.warn(
            "model.zoo_weights[key] is deprecated: use the attribute, e.g. model.zoo_weights.sha256",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, key)


# --------------------------------------------------------------------------------------------
# Bundled release folders
# --------------------------------------------------------------------------------------------
def bundled_cards_dirs() -> list[Path]:
    """The folders of release folders `<arch>.<tag>/` searched for every name, in order.

    First each folder in `ZOO_CARDS_DIR` (several separated by `os.pathsep`): they add to the
    zoo's own, they do not replace it. Then the zoo's own: `zoo/cards/` of an installed wheel
    (pyproject.toml maps `cards/` there), or `cards/` beside `zoo/` in a source checkout or an
    editable install. A plugin's own folder (`WeightsSpec.cards`) is searched between the two,
    for its own weights only (`cards_dirs`).
    """
    return _env_cards_dirs() + _zoo_cards_dir()


def _env_cards_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get("ZOO_CARDS_DIR", "").split(os.pathsep) if p.strip()]


def _zoo_cards_dir() -> list[Path]:
    package = Path(__file__).resolve().parent
    installed, checkout = package / "cards", package.parent / "cards"
    if installed.is_dir():
        return [installed]
    if (package.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return [checkout]
    return []


def plugin_cards_dir(cards: str, where: str = "WeightsSpec.cards") -> Path:
    """The folder that a `WeightsSpec.cards` names: `"package:subfolder"` inside an installed
    package (found without importing it), or a path. `WeightsError` when the package is not there."""
    package, colon, sub = cards.partition(":")
    if not colon or not package.replace(".", "").replace("_", "").isalnum():
        return Path(cards).expanduser()
    import importlib.util

    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    locations = list(getattr(found, "submodule_search_locations", None) or [])
    if not locations:
        raise WeightsError(
            f"{where} = {cards!r} names package {package!r}, which is not an installed package "
            "(expected 'package:subfolder', e.g. 'zoo_made:cards', or a path)"
        )
    return Path(locations[0]) / sub


def cards_dirs(arch: str, tag: str) -> list[Path]:
    """Where the release folder of `arch.tag` is looked for: `ZOO_CARDS_DIR`'s folders, the folder the
    plugin ships for these weights (`WeightsSpec.cards`), the zoo's bundled `cards/`."""
    try:
        ws = get_spec(arch).weights_for(tag)
    except ZooError:  # not registered (yet), or no such tag: only the shared folders
        ws = None
    own = [plugin_cards_dir(ws.cards, f"the WeightsSpec.cards of {arch}.{tag}")] if ws is not None and ws.cards else []
    return _env_cards_dirs() + own + _zoo_cards_dir()


def release_dir(arch: str, tag: str) -> Path | None:
    """The bundled release folder of `arch.tag` (the first of `cards_dirs` that has it), or None."""
    for root in cards_dirs(arch, tag):
        folder = root / f"{arch}.{tag}"
        if folder.is_dir():
            return folder
    return None


# --------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------
def check_sha256(path: Path, expected: str, where: str) -> str:
    """Raise `WeightsError` unless `path` hashes to `expected`; returns the hash."""
    if not expected or len(expected) != 64:
        raise WeightsError(
            f"{where}: no valid sha256 to check {path.name} against (got {expected!r}); "
            "refusing to load unverified weights"
        )
    actual = sha256_file(path)
    if actual != expected.lower():
        size = path.stat().st_size
        raise WeightsError(
            f"{where}: sha256 mismatch for {path.name} ({size} bytes): expected {expected.lower()}, got {actual}. "
            "The file is corrupt, truncated or was tampered with; it was not loaded"
        )
    return actual


def state_sha256(model: Any) -> str:
    """sha256 of a model's tensors serialised as safetensors without metadata.

    Names weights that exist only in memory (a model the zoo did not load); `zoo train`'s
    release check compares it with the file it wrote."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return hashlib.sha256(save(state)).hexdigest()


# --------------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------------
def _plugin_package(plugin: str) -> str:
    """The distribution that provides entry point `plugin` in group `zoo`, or ""."""
    from importlib import metadata

    for ep in metadata.entry_points(group="zoo"):
        if ep.name == plugin and ep.dist is not None:
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
    assert data_spec is not None  # a ModelSpec's is set when it is made
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
    """Read and check a release folder's `config.json` (a file or the folder holding it).

    Every field the zoo uses is checked here, once, for every source (bundled, Hub, local
    folder): `architecture` a name, `config` an object, `data_spec` an object of four ints,
    `weights.file` a relative path inside the folder, `weights.sha256` 64 hex digits.
    Anything else raises `WeightsError` naming the file, the field, what was expected and what came.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(
            f"no {CONFIG_NAME} in {path.parent}: expected a folder written by zoo.save_pretrained"
        ) from None
    except IsADirectoryError:
        raise WeightsError(
            f"{path} is a directory; expected the {CONFIG_NAME} file written by zoo.save_pretrained"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path} is not valid JSON: {e}") from None
    except RecursionError:
        raise WeightsError(f"{path} is nested too deeply to be a config.json written by zoo.save_pretrained") from None
    except OSError as e:
        raise WeightsError(f"cannot read {path}: {e}") from None
    if not isinstance(cfg, dict):
        raise WeightsError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    missing = [k for k in ("architecture", "config", "data_spec", "weights") if k not in cfg]
    if missing:
        raise WeightsError(f"{path} lacks {', '.join(missing)}: expected a config.json written by zoo.save_pretrained")
    _check_fields(cfg, path)
    return cfg


def _check_fields(cfg: Mapping[str, Any], path: Path) -> None:
    def bad(field: str, expected: str, value: Any) -> WeightsError:
        return WeightsError(f"{path}: {field!r} must be {expected}, got {json.dumps(value)[:80]}")

    arch = cfg["architecture"]
    if not isinstance(arch, str) or not arch or "." in arch or ":" in arch:
        raise bad("architecture", "a registered architecture name (a string such as 'pixelcnn')", arch)
    if not isinstance(cfg["config"], dict):
        raise bad("config", "an object of constructor arguments", cfg["config"])
    ds = cfg["data_spec"]
    keys = ("channels", "height", "width", "levels")
    if not isinstance(ds, dict) or not all(
        isinstance(ds.get(k), int) and not isinstance(ds.get(k), bool) for k in keys
    ):
        raise bad("data_spec", "an object of ints channels, height, width and levels", ds)
    try:
        DataSpec(*(ds[k] for k in keys))
    except ValueError as e:
        raise WeightsError(f"{path}: 'data_spec': {e}") from None
    weights = cfg["weights"]
    if not isinstance(weights, dict):
        raise bad("weights", "an object giving the weights' file and sha256", weights)
    file = weights.get("file")
    if not isinstance(file, str) or not file or "\\" in file or Path(file).is_absolute() or ".." in Path(file).parts:
        raise bad("weights.file", "a file name inside the release folder (no absolute path, no '..')", file)
    sha = weights.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
        raise bad("weights.sha256", "64 hex digits", sha)


def local_files(folder: Path) -> tuple[dict[str, Any], LoadedWeights]:
    """config.json and the verified weights file of a release folder on disk."""
    if not folder.is_dir():
        raise WeightsError(f"local-dir:{folder}: no such folder")
    cfg = read_config(folder)
    path = folder / cfg["weights"]["file"]
    if not path.is_file():
        raise WeightsError(
            f"local-dir:{folder}: config.json names weights {cfg['weights']['file']!r}, which is not there"
        )
    sha = check_sha256(path, cfg["weights"]["sha256"], f"local-dir:{folder}")
    return cfg, LoadedWeights(sha, "local-dir", str(path), filename=path.name, tag=cfg.get("tag"))


# --------------------------------------------------------------------------------------------
# State dicts
# --------------------------------------------------------------------------------------------
def _read_safetensors(path: Path, where: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{where}: {path.name} is not a readable safetensors file: {e}") from None


def _mismatch_report(model: Any, tensors: Mapping[str, torch.Tensor]) -> str:
    """'' when `tensors` fits `model.state_dict()` exactly, else a readable list of the differences."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = sorted(
        f"{k}: file {tuple(tensors[k].shape)}, model {tuple(expected[k].shape)}"
        for k in set(expected) & set(tensors)
        if tuple(tensors[k].shape) != tuple(expected[k].shape)
    )

    def block(title: str, items: list[str]) -> str:
        shown = "\n".join(f"    {i}" for i in items[:20])
        more = f"\n    ... and {len(items) - 20} more" if len(items) > 20 else ""
        return f"  {title} ({len(items)}):\n{shown}{more}" if items else ""

    parts = [
        block("missing from the file", missing),
        block("unexpected in the file", unexpected),
        block("shape mismatches", shapes),
    ]
    return "\n".join(p for p in parts if p)


def load_state_dict(model: Any, path: Path, where: str) -> None:
    """Load `path` into `model` strictly; a mismatch raises `WeightsError` with the full report."""
    tensors = _read_safetensors(path, where)
    report = _mismatch_report(model, tensors)
    if report:
        raise WeightsError(f"{where}: the weights do not fit {type(model).__name__} (strict loading):\n{report}")
    model.load_state_dict(tensors, strict=True)


def save_weights(model: Any, folder: Path, *, tag: str | None = None, dataset: str | None = None) -> dict[str, Any]:
    """Write `model.safetensors` and `config.json` (naming the file's sha256) into `folder`; returns the config."""
    from safetensors.torch import save_file

    cfg = model_config(model, tag=tag, dataset=dataset)  # checks the model before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    # clone: tensors that share storage (tied weights) are saved as separate copies, so the file loads strictly
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    weights_path = folder / WEIGHTS_NAME
    with atomic_write(weights_path) as tmp:
        # One metadata key only: safetensors writes metadata in hash-map order, so a second key would
        # make the same weights hash differently from one process to the next (config.json says the rest).
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    cfg["weights"]["sha256"] = sha256_file(weights_path)
    write_atomic(folder / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=False) + "\n")
    return cfg
