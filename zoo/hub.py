"""The Hugging Face Hub, and only it: download, the cache, fetch, cache verification, upload and tag.

All of the zoo's Hub I/O lives here (as in timm's `_hub.py`); what the files mean
(config.json, sha256, safetensors) is `zoo.weights`'.

Environment (read at each call, so changing it at run time works):
`HF_ENDPOINT` (a self-hosted or mirror Hub), `HF_HUB_OFFLINE=1` (cache and
bundled files only), `HF_TOKEN` (private repos and publishing; never printed or
written anywhere), `HF_HUB_CACHE` / `HF_HOME` (where the cache is),
`HF_HUB_DOWNLOAD_TIMEOUT` (seconds, default 10: how long a download waits for the
server to answer, or to send more of a file, before it gives up).

A server that does not answer within the timeout, or that breaks off a transfer,
raises `WeightsError` naming the repo and file (a cached copy is used when there is one).

A file from the cache or the Hub whose sha256 does not match raises `WeightsError`
and is deleted from the cache, so that the next call downloads a fresh one.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ArgumentError, WeightsError, ZooError
from .registry import WeightsSpec, get_spec, parse_name
from .util import lazy_getattr, sha256_file
from .weights import CONFIG_NAME, LoadedWeights, check_sha256, read_config, release_dir

__all__ = [
    "hub_endpoint",
    "is_offline",
    "hub_cache_dir",
    "download",
    "cached",
    "pinned_weights",
    "hub_files",
    "fetch",
    "CachedFile",
    "verify_cache",
    "upload",
]

_TRUE = {"1", "ON", "YES", "TRUE"}


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


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------
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


def _verify_cached(path: Path, expected: str, where: str) -> str:
    """Check a file of the Hugging Face cache; a bad one is deleted before the error is raised."""
    try:
        return check_sha256(path, expected, where)
    except WeightsError as e:
        _evict(path, hub_cache_dir())
        raise WeightsError(f"{e}, and was deleted from the cache ({path}); the next load downloads it again") from None


def _commit_of(path: Path) -> str:
    """The commit of a file in the cache: `.../snapshots/<commit>/<file>`."""
    parts = path.parts
    if "snapshots" in parts:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return ""


def cached(repo_id: str, filename: str, revision: str) -> Path | None:
    """The cached copy of `filename` of `repo_id@revision`, or None (nothing is downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(hub_cache_dir()), revision=revision)
    return Path(found) if isinstance(found, str) else None


def download(repo_id: str, filename: str, revision: str | None) -> Path:
    """`hf_hub_download` into the cache, honouring the environment, with the zoo's errors."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = _endpoint_name()
    at = f"{repo_id}@{revision or 'main'}"
    timeout = download_timeout()
    unreachable = None if is_offline() else _unreachable(repo_id, filename, revision, timeout)
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=str(hub_cache_dir()),
            endpoint=hub_endpoint(),
            local_files_only=is_offline() or unreachable is not None,
            etag_timeout=timeout,
            library_name="zoo",
            library_version=__version__,
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
        cause = unreachable or e.__cause__ or e
        raise WeightsError(
            f"cannot reach the Hub at {endpoint} to get {filename} of {at} ({type(cause).__name__}: {cause}; "
            f"HF_HUB_DOWNLOAD_TIMEOUT={timeout:g} s), and it is not in the cache; check the connection or HF_ENDPOINT"
        ) from None
    except HfHubHTTPError as e:
        raise WeightsError(f"the Hub at {endpoint} refused {filename} of {at}: {e}") from None
    except (
        _transport_errors()
    ) as e:  # a transfer broken off mid-body, truncated ("Consistency check failed"), disk errors
        raise WeightsError(f"downloading {filename} of {at} from {endpoint} failed: {type(e).__name__}: {e}") from None
    return Path(path)


DEFAULT_DOWNLOAD_TIMEOUT = 10.0  # seconds, huggingface_hub's own default


def download_timeout() -> float:
    """`HF_HUB_DOWNLOAD_TIMEOUT` in seconds (default 10), read at each call and handed to huggingface_hub,
    which otherwise reads it once at import (and waits up to 60 s per retry for a server that does not answer)."""
    from huggingface_hub import constants

    raw = os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", "").strip()
    try:
        timeout = float(raw) if raw else DEFAULT_DOWNLOAD_TIMEOUT
    except ValueError:
        timeout = -1.0
    if not 0 < timeout < float("inf"):
        raise ArgumentError(f"HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, got {raw!r}")
    # read by each body request of hf_hub_download (declared int there; it takes seconds as a float)
    constants.HF_HUB_DOWNLOAD_TIMEOUT = timeout  # type: ignore[assignment]
    return timeout


def _unreachable(repo_id: str, filename: str, revision: str | None, timeout: float) -> Exception | None:
    """Ask the Hub for the file's metadata once, waiting at most `timeout` seconds: None when it answers (even
    with an HTTP error, which hf_hub_download then reports), else the connection error or timeout, and the caller
    falls back to the cache. hf_hub_download alone would retry a server that never answers for minutes."""
    from httpx2 import TransportError
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=hub_endpoint())
    try:
        get_hf_file_metadata(
            url,
            timeout=timeout,
            library_name="zoo",
            library_version=__version__,
            endpoint=hub_endpoint(),
            retry_on_errors=False,
        )
    except HfHubHTTPError:
        return None
    except TransportError as e:
        return e
    return None


# --------------------------------------------------------------------------------------------
# Verified weights from the cache or the Hub
# --------------------------------------------------------------------------------------------
def pinned_weights(name: str, ws: WeightsSpec, *, download_missing: bool = True) -> LoadedWeights:
    """The registry-pinned weights `ws` of `name` (= `arch.tag`): from the cache, else the Hub; verified."""
    path = cached(ws.hub_id, ws.filename, ws.revision)
    source, where = "hf-cache", f"cached weights of {name}"
    if path is None:
        if not download_missing:
            raise WeightsError(f"{name} is neither bundled nor in the cache ({hub_cache_dir()})")
        path = download(ws.hub_id, ws.filename, ws.revision)
        source, where = "hf-hub", f"weights of {name} from {ws.hub_id}@{ws.revision}"
    sha = _verify_cached(path, ws.sha256, where)
    return LoadedWeights(sha, source, str(path), ws.hub_id, _commit_of(path) or ws.revision, ws.filename, ws.tag)


def hub_files(repo_id: str, revision: str | None) -> tuple[dict[str, Any], LoadedWeights]:
    """config.json and the verified weights file of a Hub repo, both from one commit."""
    config_path = download(repo_id, CONFIG_NAME, revision)
    cfg = read_config(config_path)
    commit = _commit_of(config_path) or revision
    filename = cfg["weights"]["file"]
    at = f"hf-hub:{repo_id}@{commit or 'main'}"
    path = download(repo_id, filename, commit)
    sha = _verify_cached(path, cfg["weights"]["sha256"], f"{at}: {filename}")
    return cfg, LoadedWeights(
        sha, "hf-hub", str(path), repo_id, _commit_of(path) or commit or "", filename, cfg.get("tag")
    )


def fetch(name: str, *, revision: str | None = None) -> LoadedWeights:
    """Download `name`'s weights into the Hugging Face cache (whether or not they are bundled) and verify them."""
    parsed = parse_name(name)
    if parsed.kind == "local":
        raise ArgumentError(f"zoo fetch downloads from the Hub; {name!r} is a local folder")
    if parsed.kind == "hub":
        return hub_files(parsed.repo_id, revision or parsed.revision)[1]
    ws = get_spec(parsed.arch).weights_for(parsed.tag)
    if revision is not None and revision != ws.revision:
        return hub_files(ws.hub_id, revision)[1]
    return pinned_weights(f"{parsed.arch}.{ws.tag}", ws)


# --------------------------------------------------------------------------------------------
# zoo cache verify
# --------------------------------------------------------------------------------------------
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
            path = cached(ws.hub_id, ws.filename, ws.revision)
            if path is not None:
                check(f"{spec.name}.{ws.tag}", path, ws.sha256, True)

    for repo_dir in sorted(cache.glob("models--*")):
        repo_id = repo_dir.name[len("models--") :].replace("--", "/")
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
# Upload and tag
# --------------------------------------------------------------------------------------------
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection errors of huggingface_hub's HTTP client (httpx2 since huggingface_hub 2.4, the oldest we take)."""
    from httpx2 import TransportError

    return (OSError, TransportError)


@dataclass
class Upload:
    """What `upload` made: the repo, the one commit, and the tag when asked for."""

    repo_url: str
    commit: str
    commit_url: str


def upload(
    files: list[tuple[str, Path]],
    repo_id: str,
    *,
    branch: str = "main",
    tag: str | None = None,
    private: bool = False,
    commit_message: str,
) -> Upload:
    """Create `repo_id` if needed (and `branch`), commit `files` (path in repo, local path) in one commit, tag it.

    The token comes from `HF_TOKEN` or the huggingface_hub login; it is never printed."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    endpoint = _endpoint_name()
    api = HfApi(endpoint=hub_endpoint(), library_name="zoo", library_version=__version__)
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files]
        # One commit for the whole folder (upload_folder may split large folders into several commits).
        info = api.create_commit(repo_id, operations, revision=branch, commit_message=commit_message)
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, tag_message=f"zoo release {tag}")
    except RepositoryNotFoundError:
        raise ZooError(
            f"cannot publish to {repo_id!r} at {endpoint}: repository not found or no write access (check HF_TOKEN)"
        ) from None
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
    return Upload(str(repo_url), info.oid, info.commit_url)


# --------------------------------------------------------------------------------------------
# Names that moved out of this module: they keep working for one release, with a DeprecationWarning
# --------------------------------------------------------------------------------------------
__getattr__ = lazy_getattr(
    __name__,
    {},
    moved={
        # (LoadedWeights, CONFIG_NAME, read_config, release_dir, sha256_file: imported above,
        # so still here without a warning)
        **{
            n: f"zoo.weights:{n}"
            for n in ("WEIGHTS_NAME", "CARD_NAME", "SAMPLES_NAME", "model_config", "bundled_cards_dirs")
        },
        **{n: f"zoo.factory:{n}" for n in ("load_pretrained", "resolve_weights")},
        **{
            n: f"zoo.release:{n}"
            for n in ("save_pretrained", "render_release_card", "verify_claims", "publish", "PublishResult")
        },
    },
)
