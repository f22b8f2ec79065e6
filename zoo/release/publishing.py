"""`zoo publish`: check a release folder, re-measure its card's claims, then upload it in one commit and tag it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, hub
from ..errors import ArgumentError, ZooError
from ..registry import get_spec, parse_name
from ..weights import cards_dirs, local_files, release_dir
from .claims import ClaimCheck, verify_claims

__all__ = ["PublishResult", "publish"]


@dataclass
class PublishResult:
    repo_url: str
    commit: str
    commit_url: str
    tag: str | None
    revision: str
    files: list[str] = field(default_factory=list)
    checks: list[ClaimCheck] = field(default_factory=list)  # empty with verify=False


def _publish_folder(source: str | Path) -> Path:
    """A release folder from a registered `arch[.tag]` (its bundled folder) or a path."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    text = str(source)
    if text.startswith("local-dir:"):
        return _publish_folder(text[len("local-dir:") :])
    try:
        parsed = parse_name(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.kind != "registry" or "/" in text:
        raise ArgumentError(f"expected a registered ARCH[.TAG] or a release folder, got {text!r} (no such folder)")
    ws = get_spec(parsed.arch).weights_for(parsed.tag)
    folder = release_dir(parsed.arch, ws.tag)
    if folder is None:
        roots = ", ".join(str(r) for r in cards_dirs(parsed.arch, ws.tag)) or "none"
        raise ZooError(f"no release folder {parsed.arch}.{ws.tag}/ among the bundled cards ({roots})")
    return folder


def _iter_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """The folder's files as (path in the repo, local path): no hidden files, no leftovers of atomic writes."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if (
            path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and not rel.endswith(".tmp")
        ):
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
    claims (on the seeded subset of `limit` images when given: exactly against the card's
    canonical-subset claims when `limit` is their size) and publishing stops if they do not reproduce.
    The token comes from `HF_TOKEN` or the huggingface_hub login; it is never printed.
    """
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ArgumentError(f"--repo-id must be ORG/NAME, got {repo_id!r}")
    folder = _publish_folder(source)
    local_files(folder)  # config.json readable, weights present and matching their sha256
    checks: list[ClaimCheck] = []
    if verify:
        echo(f"verifying the card's claims of {folder} with the harness{f' (limit {limit})' if limit else ''} ...")
        checks = verify_claims(folder, limit=limit, rtol=rtol, evaluate=evaluate)
        for c in checks:
            echo(f"  {c}")
        bad = [c for c in checks if not c.ok]
        if bad:
            what = (
                "contradict each other (nothing was run)"
                if all(c.kind != "measured" for c in checks)
                else "do not reproduce within tolerance"
            )
            raise ZooError(
                f"refusing to publish: the card's numbers {what}:\n"
                + "\n".join(f"  {c}" for c in bad)
                + "\nre-evaluate and regenerate the card, or pass --no-verify to publish anyway"
            )
        if not checks:
            echo("  the card makes no metric claims")
    branch = revision or "main"
    files = list(_iter_files(folder))
    done = hub.upload(
        files,
        repo_id,
        branch=branch,
        tag=tag,
        private=private,
        commit_message=commit_message or f"Upload {folder.name} with zoo {__version__}",
    )
    return PublishResult(done.repo_url, done.commit, done.commit_url, tag, branch, [rel for rel, _ in files], checks)
