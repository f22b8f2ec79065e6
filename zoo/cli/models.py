"""`zoo list`, `zoo info`, `zoo check`, `zoo sample`."""

from __future__ import annotations

import json
from typing import Any

import click


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set key=value` pairs; values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config entry (repeatable), e.g. --set height=8.",
)
tiny_option = click.option("--tiny", is_flag=True, help="Use the model's tiny test config.")


def _set_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    if value is not None:
        import torch

        torch.set_num_threads(value)


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    expose_value=False,
    callback=_set_threads,
    is_eager=True,
    help="CPU threads for torch (default: torch's choice, or OMP_NUM_THREADS).",
)


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--pretrained", is_flag=True, help="List released weights as ARCH.TAG.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(pattern: str, pretrained: bool, as_json: bool) -> None:
    """List models matching PATTERN (fnmatch, e.g. 'pixelrnn*')."""
    from ..registry import get_spec, list_models, parse_name

    names = list_models(pattern, pretrained=pretrained)
    if not names and not as_json:
        from ..errors import UnknownNameError
        from ..util import did_you_mean

        known = list_models("*", pretrained=pretrained)
        raise UnknownNameError(
            f"no model matches {pattern!r}{did_you_mean(pattern, known)} (fnmatch patterns, "
            f"e.g. 'pixel*'; `zoo list` shows all {len(known)}, `zoo plugins` what loaded)"
        )
    if as_json:
        rows = []
        for n in names:
            spec = get_spec(parse_name(n).arch)
            rows.append(
                {
                    "name": n,
                    "family": spec.family,
                    "summary": spec.summary,
                    "capabilities": sorted(spec.capabilities),
                    "tags": spec.tags,
                    "plugin": spec.plugin,
                }
            )
        click.echo(json.dumps(rows, indent=2))
        return
    for n in names:
        spec = get_spec(parse_name(n).arch)
        tags = f"[{', '.join(spec.tags)}]" if spec.tags and not pretrained else ""
        click.echo(f"{n:<34} {spec.summary} {tags}".rstrip())


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(name: str, as_json: bool) -> None:
    """Show a model's family, paper, data spec, capabilities and weights."""
    from ..registry import info

    spec = info(name)
    d = spec.to_dict()
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{spec.name}: {spec.summary}")
    click.echo(f"  family        {spec.family}")
    click.echo(f"  paper         {spec.paper}")
    click.echo(f"  data          {spec.data_spec}")
    click.echo(f"  capabilities  {', '.join(sorted(spec.capabilities)) or '-'}")
    click.echo(f"  config        {json.dumps(d['config'])}")
    click.echo(f"  plugin        {spec.plugin}")
    if not spec.weights:
        click.echo("  weights       none released yet")
    for w in spec.weights:
        metrics = ", ".join(f"{k} {v}" for k, v in w.metrics.items())
        click.echo(
            f"  weights       {spec.name}.{w.tag}  ({w.hub_id}@{w.revision}, sha256 {w.sha256[:12]}…)"
            f"{'  ' + metrics if metrics else ''}"
        )


@click.command("check")
@click.argument("name")
@tiny_option
@set_option
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Random perturbation trials for causality.",
)
@click.option("--seed", default=0, show_default=True, help="Seeds the model's random weights and the perturbations.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@threads_option
def check_cmd(name: str, tiny: bool, overrides: tuple[str, ...], trials: int, seed: int, as_json: bool) -> None:
    """Check a model's spec against its code, that an autoregressive model never sees the future, and
    measure its receptive field. SEED seeds the random weights and the perturbations."""
    import torch

    from ..checks import check
    from ..factory import create
    from ..registry import get_spec, parse_name
    from ..specs import check_spec

    spec = get_spec(parse_name(name).arch)
    problems = check_spec(spec)
    if "likelihood" not in spec.capabilities:  # no logits(): no causality to check, and not a failure
        kind = (
            "a bounded-likelihood model (a latent variable)"
            if "likelihood_bound" in spec.capabilities
            else "an implicit model (a sampler with no logits())"
        )
        why = (
            f"zoo check does not apply to {spec.name}: it is {kind}, and the check is of autoregressive "
            f"models' causality. Its spec (builder, config keys, data_spec): "
            + ("FAIL: " + "; ".join(problems) if problems else "ok")
        )
        click.echo(
            json.dumps({"model": name, "applies": False, "reason": why, "spec_problems": problems}) if as_json else why
        )
        if problems:
            raise SystemExit(1)
        return
    config = {**(spec.test_config if tiny else {}), **parse_overrides(overrides)}
    try:
        torch.manual_seed(seed)
        model = create(name, **config)
    except Exception as e:
        if not problems:
            raise
        lines = [f"zoo check {name}", "  spec (builder, config keys, data_spec): FAIL"] + [f"    {p}" for p in problems]
        raise click.ClickException(
            "\n".join(lines + [f"  the model does not build: {type(e).__name__}: {e}", "  FAILED"])
        ) from e
    report = check(model, name=name, trials=trials, seed=seed)
    report.spec_problems = problems
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else str(report))
    if not report.passed:
        raise SystemExit(1)


def _model_for_sampling(name: str, config: dict[str, Any], random_init: bool) -> Any:
    """The released model of `name`, or a random initialisation: asked for, or said on stderr."""
    from ..factory import create, load
    from ..registry import get_spec, parse_name

    parsed = parse_name(name)
    if parsed.kind != "registry":
        if config or random_init:
            raise click.UsageError(
                f"--set, --tiny and --random-init build a registered architecture; {name!r} is "
                "a release folder or Hub repo, sampled as saved"
            )
        return load(name)
    spec = get_spec(parsed.arch)
    if spec.weights and not random_init and not config:
        return load(name)
    if not random_init:  # say so: these are not the released model's samples
        why = (
            "has no released weights yet"
            if not spec.weights
            else "'s released weights do not fit a changed config (--set/--tiny)"
        )
        click.echo(
            f"note: {spec.name} {why}; sampling from a random initialisation (--random-init hides this note)", err=True
        )
    return create(name, **config)


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """--temperature: nan and inf pass FloatRange(min=0) but draw nothing sensible."""
    if value != value or value == float("inf"):
        raise click.BadParameter(f"must be a finite number >= 0, got {value}")
    return value


@click.command("sample")
@click.argument("name")
@click.option("-n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Number of images.")
@click.option(
    "--out", type=click.Path(dir_okay=False), default="samples.png", show_default=True, help="PNG grid to write."
)
@click.option("--seed", default=0, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True, callback=_finite)
@click.option("--method", type=click.Choice(["auto", "naive", "fast"]), default="auto", show_default=True)
@click.option(
    "--complete",
    "complete",
    type=click.Path(exists=True, dir_okay=False),
    help="An image to complete: its top half is kept, the rest sampled.",
)
@click.option("--keep-rows", type=int, default=None, help="With --complete: rows kept from the top (default: half).")
@click.option("--random-init", is_flag=True, help="Use random weights even if released weights exist.")
@click.option("--scale", type=click.IntRange(min=1), default=4, show_default=True, help="Pixel scale of the PNG.")
@tiny_option
@set_option
@threads_option
def sample_cmd(
    name: str,
    n: int,
    out: str,
    seed: int,
    temperature: float,
    method: str,
    complete: str | None,
    keep_rows: int | None,
    random_init: bool,
    scale: int,
    tiny: bool,
    overrides: tuple[str, ...],
) -> None:
    """Sample N images (or complete an image) and write a PNG grid."""
    import time

    import torch

    from ..images import check_image_path, read_image, save_grid
    from ..registry import get_spec, parse_name
    from ..sampling import sample

    check_image_path(out, "--out")  # before the model loads and samples
    config = parse_overrides(overrides)
    if tiny:
        config = {**get_spec(parse_name(name).arch).test_config, **config}
    model = _model_for_sampling(name, config, random_init)
    spec = model.data_spec
    known = mask = None
    if complete:
        known = read_image(complete, spec)
        rows = spec.height // 2 if keep_rows is None else keep_rows
        if not 0 <= rows <= spec.height:
            raise click.BadParameter(f"must be within [0, {spec.height}]", param_hint="--keep-rows")
        mask = torch.zeros(spec.height, spec.width, dtype=torch.bool)
        mask[:rows] = True
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    x = sample(model, n, method=method, generator=g, temperature=temperature, known=known, mask=mask, progress=True)
    dt = time.perf_counter() - t0
    save_grid(x, out, spec.levels, scale=scale)
    click.echo(f"wrote {n} samples to {out} ({dt:.1f} s, {n / dt:.2f} samples/s)")


COMMANDS = [list_cmd, info_cmd, check_cmd, sample_cmd]
