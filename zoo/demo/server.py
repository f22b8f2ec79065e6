"""The demo page over HTTP: the standard library's server, one static page and three JSON actions.

    GET  /                the page (page.html, no assets from elsewhere: it works offline)
    GET  /api/releases    the releases, their data and the demo's limits
    POST /api/sample      {release, n, seed, temperature}                       -> a PNG grid
    POST /api/complete    {release, image, keep_rows, n, seed, temperature}     -> the kept rows, completions
    POST /api/score       {image}                                               -> one row per release

`image` is the drawing as 8-bit grey rows (see `zoo.demo.logic`). A mistake of the caller (a zoo
error, `ValueError`, `TypeError`) answers 400 with `{"error": message}`, which the page shows; any
other exception answers 500 with a one-line message, its traceback going to the server's stderr.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ..errors import ZooError
from .logic import BOUND_SAMPLES, MAX_COMPLETIONS, MAX_SAMPLES, Demo

__all__ = ["make_server", "png_data_url"]

MAX_BODY = 1 << 20  # a 28x28 drawing as JSON is about 3 kB


def png_data_url(x: Any, levels: int, nrow: int, *, grey_from_row: int | None = None) -> str:
    """Images `(B, C, H, W)` of levels as one PNG row-major grid, as a `data:` URL for an <img>;
    `grey_from_row`: paint the rows from there on mid-grey (the part of a drawing not given)."""
    from PIL import Image

    from ..images import make_grid

    pad = 2  # make_grid's border
    grid = make_grid(x, levels, nrow=nrow, pad=pad)
    if grey_from_row is not None:
        grid[pad + grey_from_row : pad + x.shape[2], pad : pad + x.shape[3]] = 128
    buf = io.BytesIO()
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _field(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise ValueError(f"the request lacks {key!r}")
    return body[key]


def _actions(demo: Demo) -> dict[str, Any]:
    """path -> function of the JSON body returning the JSON answer."""

    def sample(body: dict[str, Any]) -> dict[str, Any]:
        release, n = _field(body, "release"), _field(body, "n")
        x, seconds = demo.sample_grid(release, n, _field(body, "seed"), _field(body, "temperature"))
        levels = demo.model(release).data_spec.levels
        return {"image": png_data_url(x, levels, nrow=min(n, 8)), "seconds": seconds, "n": n}

    def complete(body: dict[str, Any]) -> dict[str, Any]:
        release, n = _field(body, "release"), _field(body, "n")
        known, x, seconds = demo.complete(
            release,
            _field(body, "image"),
            _field(body, "keep_rows"),
            n,
            _field(body, "seed"),
            _field(body, "temperature"),
        )
        levels = demo.model(release).data_spec.levels
        return {
            "given": png_data_url(known.unsqueeze(0), levels, nrow=1, grey_from_row=body["keep_rows"]),
            "image": png_data_url(x, levels, nrow=n),
            "seconds": seconds,
            "n": n,
        }

    def score(body: dict[str, Any]) -> dict[str, Any]:
        return {"scores": [s.to_dict() for s in demo.score(_field(body, "image"))]}

    return {"/api/sample": sample, "/api/complete": complete, "/api/score": score}


def make_server(demo: Demo, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """A server for `demo` (port 0: a free one, `server.server_address[1]`); call `serve_forever()`."""
    page = resources.files(__package__).joinpath("page.html").read_bytes()
    actions = _actions(demo)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints what matters
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/api/releases":
                self._answer(
                    lambda: {
                        "releases": demo.describe(),
                        "default": demo.default_release(),
                        "limits": {
                            "samples": MAX_SAMPLES,
                            "completions": MAX_COMPLETIONS,
                            "bound_samples": BOUND_SAMPLES,
                        },
                    }
                )
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path!r}"})

        def do_POST(self) -> None:
            action = actions.get(self.path)
            if action is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no action {self.path!r}"})
                return
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY:
                self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"a request of {size} bytes; at most {MAX_BODY}"}
                )
                return
            try:
                body = json.loads(self.rfile.read(size) or b"null")
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"the request is not JSON: {e}"})
                return
            if not isinstance(body, dict):
                self._json(HTTPStatus.BAD_REQUEST, {"error": "the request must be a JSON object"})
                return
            self._answer(lambda: action(body))

        def _answer(self, compute: Any) -> None:
            try:
                self._json(HTTPStatus.OK, compute())
            except (ZooError, ValueError, TypeError) as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            except Exception as e:  # a bug: one line on the page, the traceback on the server's stderr
                traceback.print_exc(file=sys.stderr)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error ({type(e).__name__}: {e})"})

    return ThreadingHTTPServer((host, port), Handler)
