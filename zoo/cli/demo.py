"""`zoo demo`: serve the demo page on this machine."""

from __future__ import annotations

import click


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7860,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--release",
    "releases",
    multiple=True,
    metavar="NAME",
    help="Offer only these releases (repeatable); default: every release (zoo list --pretrained).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
def demo_cmd(host: str, port: int, releases: tuple[str, ...], open_browser: bool) -> None:
    """Serve a page to sample, complete and score drawn digits with the released models.

    Models load on first use from the bundled weights (no network needed; HF_HUB_OFFLINE=1 works).
    """
    from ..demo import Demo, make_server

    demo = Demo(list(releases) or None)
    try:
        server = make_server(demo, host, port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    import threading

    url = f"http://{host}:{server.server_address[1]}/"
    click.echo(f"zoo demo: {len(demo.releases)} releases at {url} (Ctrl-C stops)")
    threading.Thread(target=demo.warm_up, daemon=True).start()  # the page is up while the models load
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


COMMANDS = [demo_cmd]
