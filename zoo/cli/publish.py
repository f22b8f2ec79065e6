"""`zoo publish`, `zoo fetch`, `zoo cache verify`: weights to and from the Hugging Face Hub.

Thin: parses, calls zoo.release and zoo.hub, prints. The token (HF_TOKEN or the huggingface_hub
login) is used by huggingface_hub and never printed.
"""

from __future__ import annotations

import json

import click


@click.command("publish")
@click.argument("source", metavar="NAME|DIR")
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="The Hub repo to publish to (created if needed).")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch to commit to (created from main if needed).")
@click.option("--tag", default=None, help="Tag the new commit, e.g. v1.0.")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Verify on a seeded subset of N images: exactly against the card's canonical-subset claims "
    "when N is their size (1000), else within 3 standard errors of the subset.",
)
@click.option(
    "--rtol",
    type=click.FloatRange(min=0),
    default=None,
    help="Relative tolerance of an exact verification (default 1e-3; also the least tolerance of a statistical one).",
)
@click.option("--no-verify", is_flag=True, help="Publish without re-running the harness on the card's claims.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def publish_cmd(
    source: str,
    repo_id: str,
    revision: str | None,
    tag: str | None,
    private: bool,
    limit: int | None,
    rtol: float | None,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Publish a release folder (NAME's bundled one, or DIR) to the Hub in one commit.

    Before uploading, the harness re-runs the card's claims and publishing stops when they
    do not reproduce. Set HF_ENDPOINT for a self-hosted Hub and HF_TOKEN for write access.
    """
    from ..release import publish

    echo = (lambda s: None) if as_json else click.echo
    result = publish(
        source,
        repo_id,
        revision=revision,
        tag=tag,
        private=private,
        verify=not no_verify,
        limit=limit,
        rtol=rtol,
        echo=echo,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "repo_url": result.repo_url,
                    "commit": result.commit,
                    "commit_url": result.commit_url,
                    "revision": result.revision,
                    "tag": result.tag,
                    "files": result.files,
                    "checks": [
                        {
                            "key": c.key,
                            "claimed": c.claimed,
                            "measured": c.measured,
                            "tolerance": c.tolerance,
                            "ok": c.ok,
                            "kind": c.kind,
                            "note": c.note,
                        }
                        for c in result.checks
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(f"published {len(result.files)} files to {result.repo_url}")
    click.echo(f"  commit  {result.commit}  ({result.commit_url})")
    if result.tag:
        click.echo(f"  tag     {result.tag}")
    ref = f"@{result.tag}" if result.tag else (f"@{result.revision}" if result.revision != "main" else "")
    click.echo(f'  load    zoo.load("hf-hub:{repo_id}{ref}")')


@click.command("card")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--metrics",
    default=None,
    help="Score the weights with these metrics first (replaces eval.json), e.g. fid,precision,recall,parzen.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="With --metrics: score a seeded random subset of N test images.",
)
@click.option(
    "--iw-samples",
    type=click.IntRange(min=1),
    default=None,
    help="With --metrics nll on a bounded model (a VAE): importance samples k of the bound (default 5000).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def card_cmd(directory: str, metrics: str | None, limit: int | None, iw_samples: int | None, no_progress: bool) -> None:
    """Rewrite the card (README.md) of a release DIRECTORY from its config, training summary and results.

    The claims on the canonical subset (1000 test images) are computed when eval.json lacks them
    or they were measured on other weights or metrics: `zoo card DIR` after new weights.

    \b
    zoo card runs/dcgan/release --metrics fid,precision,recall,parzen
    """
    from ..release import render_release_card

    path = render_release_card(directory, metrics=metrics, limit=limit, iw_samples=iw_samples, progress=not no_progress)
    click.echo(f"wrote {path}")


@click.command("fetch")
@click.argument("name")
@click.option("--revision", default=None, help="Another revision than the pinned one (hf-hub names: same as @REV).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fetch_cmd(name: str, revision: str | None, as_json: bool) -> None:
    """Download NAME's weights into the Hugging Face cache and verify their sha256.

    For preparing machines that will run with HF_HUB_OFFLINE=1.
    """
    from ..hub import fetch

    w = fetch(name, revision=revision)
    if as_json:
        click.echo(json.dumps(w.to_dict(), indent=2))
        return
    click.echo(f"{name}: {w.source} {w.path}")
    click.echo(f"  sha256 {w.sha256} (verified)")


@click.group("cache")
def cache_group() -> None:
    """The local cache of downloaded weights."""


@cache_group.command("verify")
@click.option(
    "--delete", is_flag=True, help="Delete cached files that fail the check (bundled files are never deleted)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_verify_cmd(delete: bool, as_json: bool) -> None:
    """Re-hash the zoo's weights in the bundled folders and the Hugging Face cache."""
    from ..hub import hub_cache_dir, verify_cache

    entries = verify_cache(delete=delete)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2))
    else:
        if not entries:
            click.echo(f"no zoo weights found (bundled folders, or the cache at {hub_cache_dir()})")
        for e in entries:
            click.echo(f"{e.status:<9} {e.name}  {e.path}")
            if not e.ok:
                click.echo(f"{'':<9} expected sha256 {e.expected}, got {e.actual}")
    bad = [e for e in entries if not e.ok]
    if bad:
        hint = "" if delete else "; run `zoo cache verify --delete` to remove them from the cache"
        raise click.ClickException(f"{len(bad)} file(s) failed the sha256 check{hint}")


COMMANDS = [card_cmd, publish_cmd, fetch_cmd, cache_group]
