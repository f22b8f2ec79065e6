"""`zoo demo` without a browser: the model logic (zoo.demo.logic) and its HTTP actions (zoo.demo.server).

Tiny random models stand in for the releases (the `loader` of `Demo`), so each test takes well
under a second; tests/test_demo_browser.py drives the page on the real releases.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
import torch

import zoo
from zoo.demo import Demo, make_server
from zoo.demo.logic import MAX_SAMPLES, grey_to_levels

AR, GAN = "pixelcnn", "dcgan"  # 8x8 binary models at their test configs


def tiny(name: str):
    torch.manual_seed(0)
    return zoo.create(name, **zoo.info(name).test_config)


class Bounded(torch.nn.Module):
    """A stand-in for a family with only a bound on the likelihood (a VAE): log_prob_bound(x, k)."""

    data_spec = zoo.DataSpec(1, 8, 8, 2)

    def log_prob_bound(self, x, k):
        self.k = k
        return -(x.float().sum((1, 2, 3)) + 10.0)


@pytest.fixture
def demo():
    bounded = Bounded()
    return Demo([AR, GAN, "bounded"], loader=lambda name: bounded if name == "bounded" else tiny(name))


def drawing(h=8, w=8, ink=((2, 3), (3, 3), (4, 4), (6, 5))):
    grey = [[0] * w for _ in range(h)]
    for i, j in ink:
        grey[i][j] = 255
    return grey


def test_a_grid_is_what_zoo_sample_draws_for_the_seed(demo):
    x, seconds = demo.sample_grid(AR, 5, 3, 0.7)
    expected = zoo.sample(tiny(AR), 5, generator=torch.Generator().manual_seed(3), temperature=0.7)
    assert torch.equal(x, expected) and x.shape == (5, 1, 8, 8) and seconds > 0
    assert not torch.equal(x, demo.sample_grid(AR, 5, 4, 0.7)[0])  # another seed, other images


def test_a_gan_samples_too(demo):
    x, _ = demo.sample_grid(GAN, 3, 0, 1.0)
    assert x.shape == (3, 1, 8, 8) and int(x.max()) <= 1


def test_completions_keep_the_top_rows_of_the_drawing(demo):
    grey = drawing()
    known, x, _ = demo.complete(AR, grey, keep_rows=4, n=3, seed=1, temperature=1.0)
    assert torch.equal(known, grey_to_levels(grey, zoo.DataSpec(1, 8, 8, 2)))
    assert x.shape == (3, 1, 8, 8)
    assert torch.equal(x[:, :, :4], known[:, :4].expand(3, 1, 4, 8))  # kept exactly
    assert len({tuple(xi.flatten().tolist()) for xi in x}) > 1  # drawn, not copied
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True
    same = zoo.sample(tiny(AR), 3, generator=torch.Generator().manual_seed(1), known=known, mask=mask)
    assert torch.equal(x, same)  # what `zoo sample --complete --keep-rows 4 --seed 1` draws


def test_a_gan_cannot_complete_and_says_so(demo):
    with pytest.raises(zoo.ZooError, match="cannot condition on known pixels"):
        demo.complete(GAN, drawing(), keep_rows=4, n=2, seed=0, temperature=1.0)


def test_the_drawing_is_scored_by_what_each_model_offers(demo):
    grey = drawing()
    scores = {s.release: s for s in demo.score(grey)}
    x = grey_to_levels(grey, zoo.DataSpec(1, 8, 8, 2)).unsqueeze(0)
    with torch.no_grad():
        exact = -float(tiny(AR).log_prob(x)[0])
    assert scores[AR].kind == "exact" and scores[AR].nll == pytest.approx(exact)
    assert scores[AR].text.startswith(f"{exact:.2f} nats")
    assert scores["bounded"].kind == "bound" and scores["bounded"].nll == pytest.approx(14.0)  # 4 ink pixels + 10
    assert scores["bounded"].text.startswith("≤ 14.00 nats")
    assert scores[GAN].kind == "implicit" and scores[GAN].text == "implicit model: no likelihood"


def test_a_drawing_of_another_size_is_not_scored_by_a_model_of_this_size(demo):
    scores = demo.score(drawing(h=10, w=10))
    assert {s.kind for s in scores} == {"n/a"} and "takes 8x8 images" in scores[0].text


def test_grey_values_become_levels_as_read_image_maps_an_8_bit_file(tmp_path):
    import numpy as np
    from PIL import Image

    from zoo.images import read_image

    grey = [[0, 127, 128, 255]] * 2
    spec = zoo.DataSpec(1, 2, 4, 2)
    assert grey_to_levels(grey, spec)[0].tolist() == [[0, 0, 1, 1]] * 2
    Image.fromarray(np.array(grey, dtype=np.uint8)).save(tmp_path / "g.png")
    for s in (spec, zoo.DataSpec(3, 2, 4, 256), zoo.DataSpec(1, 2, 4, 5)):
        assert torch.equal(grey_to_levels(grey, s), read_image(tmp_path / "g.png", s))


@pytest.mark.parametrize(
    "grey, message",
    [
        ("ink", "expected a list of rows"),
        ([[0] * 8] * 7, "expected 8 rows of 8 grey values in [0, 255], got 7 rows of 8"),
        ([[0] * 8] * 7 + [[0] * 9], "rows of equal length"),
        ([[0] * 8] * 7 + [[0] * 7 + [256]], "got 256 in row 7"),
        ([[0] * 8] * 7 + [[0] * 7 + [0.5]], "got 0.5 in row 7"),
        ([[0] * 8] * 7 + [[0] * 7 + [True]], "got True in row 7"),
    ],
)
def test_a_bad_drawing_is_a_clear_error(demo, grey, message):
    with pytest.raises(zoo.ArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        demo.complete(AR, grey, keep_rows=4, n=1, seed=0, temperature=1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.sample_grid(AR, MAX_SAMPLES + 1, 0, 1.0), f"from 1 to {MAX_SAMPLES}"),
        (lambda d: d.sample_grid(AR, 2, -1, 1.0), "seed: expected an integer"),
        (lambda d: d.sample_grid(AR, 2, 0, float("nan")), "temperature must be a finite number"),
        (lambda d: d.sample_grid("pixelcn", 2, 0, 1.0), "not offered here; did you mean pixelcnn"),
        (lambda d: d.complete(AR, drawing(), 9, 1, 0, 1.0), "keep rows: expected an integer from 0 to 8, got 9"),
    ],
)
def test_bad_settings_are_clear_errors(demo, call, message):
    with pytest.raises((zoo.ZooError, ValueError), match=message):
        call(demo)


def test_describe_reads_the_registry_and_the_default_claims_a_likelihood():
    demo = Demo(loader=lambda name: pytest.fail(f"{name} loaded"))  # every release; none is loaded
    rows = {r["name"]: r for r in demo.describe()}
    assert set(rows) == set(zoo.list_models(pretrained=True))
    assert rows["pixelrnn-diag.binarized-mnist"]["height"] == 28
    assert "likelihood" in zoo.info(demo.default_release()).capabilities


# --- the HTTP layer -------------------------------------------------------------------------------


@pytest.fixture
def url(demo):
    server = make_server(demo, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(url, path, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_page_and_the_releases(url):
    status, page = call(url, "/")
    assert status == 200 and b'id="sample-btn"' in page and b'id="upload"' in page
    assert b"http://" not in page and b"https://" not in page  # nothing from elsewhere: works offline
    status, body = call(url, "/api/releases")
    data = json.loads(body)
    assert [r["name"] for r in data["releases"]] == [AR, GAN, "bounded"] and data["limits"]["samples"] == MAX_SAMPLES


def test_actions_answer_json_with_png_images(url):
    status, body = call(url, "/api/sample", {"release": AR, "n": 3, "seed": 0, "temperature": 1.0})
    data = json.loads(body)
    assert status == 200 and data["image"].startswith("data:image/png;base64,") and data["n"] == 3
    status, body = call(
        url, "/api/complete", {"release": AR, "image": drawing(), "keep_rows": 4, "n": 2, "seed": 0, "temperature": 1.0}
    )
    assert status == 200 and json.loads(body)["given"].startswith("data:image/png")
    status, body = call(url, "/api/score", {"image": drawing()})
    assert [s["kind"] for s in json.loads(body)["scores"]] == ["exact", "implicit", "bound"]


@pytest.mark.parametrize(
    "path, body, raw, status, message",
    [
        ("/api/sample", {"release": AR, "n": 0, "seed": 0, "temperature": 1}, None, 400, "from 1 to 64"),
        ("/api/sample", {"release": AR, "n": 2}, None, 400, "the request lacks 'seed'"),
        (
            "/api/complete",
            {"release": GAN, "image": drawing(), "keep_rows": 4, "n": 2, "seed": 0, "temperature": 1},
            None,
            400,
            "cannot condition on known pixels",
        ),
        ("/api/score", None, b"{not json", 400, "not JSON"),
        ("/api/score", None, b"[1, 2]", 400, "must be a JSON object"),
        ("/api/nothing", {}, None, 404, "no action"),
    ],
)
def test_errors_come_back_as_one_line_for_the_page(url, path, body, raw, status, message):
    got, answer = call(url, path, body, raw)
    error = json.loads(answer)["error"]
    assert got == status and message in error and "Traceback" not in error


def test_a_bug_is_one_line_on_the_page_and_a_traceback_on_stderr(demo, url, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo, "score", broken)
    status, answer = call(url, "/api/score", {"image": drawing()})
    assert status == 500 and json.loads(answer) == {"error": "internal error (RuntimeError: boom)"}
    assert "Traceback" in capsys.readouterr().err


def test_the_command_is_there():
    from click.testing import CliRunner

    from zoo.cli import build_cli

    result = CliRunner().invoke(build_cli(), ["demo", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "bundled weights" in result.output


def test_a_busy_port_is_one_line_not_a_traceback():
    import socket

    from click.testing import CliRunner

    from zoo.cli import build_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = CliRunner().invoke(build_cli(), ["demo", "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 1 and "cannot listen on 127.0.0.1:" in result.output
    assert "Traceback" not in result.output
