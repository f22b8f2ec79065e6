"""The demo page in a real browser: headless Chromium, driven through chromedriver by selenium.

On the bundled releases, as a user sees them: the page loads and scores the blank pad under every
release; a sample grid is the exact grid `zoo.sample` draws for the seed; an uploaded test digit
lands on the pad unchanged, is scored by every release (exact NLL to the printed digit, or
"implicit model"), and is completed; mistakes show on the page. Screenshots go to the test's
tmp dir, and to $ZOO_DEMO_SCREENSHOTS when set (docs/demo.png is `demo-completed.png` of
`ZOO_DEMO_SCREENSHOTS=/tmp/shots python -m pytest tests/test_demo_browser.py`).

Needs Debian's `chromium` and `chromium-driver` and the `browser` extra (selenium); skipped with
the reason when one is missing. .ci/run installs all three.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.images import make_grid, to_uint8

pytestmark = pytest.mark.slow

SAMPLER = "pixelrnn-row.binarized-mnist"  # the fastest sampler of the releases
COMPLETER = "pixelrnn-diag.binarized-mnist"
WAIT = 600  # seconds; a loaded 2-core machine can be 20x slower than an idle one


def _browser() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("the browser test needs selenium: pip install -e '.[browser]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "the browser test needs Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def page():
    """(driver, url) of a `zoo demo` server on a free port, the page open in headless Chromium."""
    chromium, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from zoo.demo import Demo, make_server

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers on the network
    server = make_server(Demo(), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,1500",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_script_timeout(WAIT)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        yield driver
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("ZOO_DEMO_SCREENSHOTS"):
        folders.append(Path(os.environ["ZOO_DEMO_SCREENSHOTS"]))

    def shoot(driver, name: str) -> None:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(folder / f"demo-{name}.png"))

    shoot.folder = folders[0]
    return shoot


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(lambda d: condition(d), message=what)


def el(driver, id_: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def set_value(driver, id_: str, value) -> None:
    box = el(driver, id_)
    box.clear()
    box.send_keys(str(value))


def choose(driver, release: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(el(driver, "release")).select_by_value(release)


def shown_image(driver, id_: str) -> np.ndarray:
    from PIL import Image

    src = el(driver, id_).get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def scored(driver) -> int:
    return int(driver.execute_script("return +document.body.dataset.scored || 0"))


def score_table(driver) -> dict[str, str]:
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#scores tbody tr')]"
        ".map(r => [r.dataset.release, r.cells[1].textContent])"
    )
    return dict(rows)


def check_score(release: str, text: str, levels) -> None:
    """The page's score of a 28x28 binary image (`levels`, or the blank pad for None) under `release`:
    the exact NLL to the printed digit, a marked bound, "implicit model", or "n/a" for another size."""
    model = zoo.load(release)
    spec = model.data_spec
    if (spec.height, spec.width) != (28, 28):
        assert text.startswith("n/a"), (release, text)
    elif callable(getattr(model, "log_prob", None)):
        x = torch.zeros(1, *spec.shape, dtype=torch.long) if levels is None else levels.expand(spec.shape)[None]
        with torch.no_grad():
            nll = -float(model.log_prob(x * (spec.levels - 1))[0])
        assert text.startswith(f"{nll:.2f} nats") and text.endswith("bits/dim)"), (release, text)
    elif callable(getattr(model, "log_prob_bound", None)):
        assert text.startswith("≤ "), (release, text)
    else:
        assert text == "implicit model: no likelihood", (release, text)


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """The first binarized-MNIST test digit as levels (1, 28, 28) and as an 8-bit PNG file."""
    from PIL import Image

    from zoo.data import load_split

    x = load_split("binarized-mnist", "test")[0][:1].long()
    path = tmp_path_factory.mktemp("upload") / "digit.png"
    Image.fromarray(to_uint8(x, 2)[0, :, :, 0]).save(path)
    return x[0], path


def test_the_page_loads_and_scores_the_blank_pad_under_every_release(page, shots):
    wait(page, lambda d: scored(d) >= 1, "the first score table")
    table = score_table(page)
    assert list(table) == zoo.list_models(pretrained=True)
    assert table["dcgan.binarized-mnist"] == "implicit model: no likelihood"
    for release, text in table.items():
        check_score(release, text, None)
    assert el(page, "error-global").text == ""
    shots(page, "loaded")


def test_a_sample_grid_is_the_one_zoo_sample_draws(page, shots):
    choose(page, SAMPLER)
    set_value(page, "n", 4)
    set_value(page, "seed", 7)
    set_value(page, "temperature", 1)
    el(page, "sample-btn").click()
    wait(page, lambda d: "samples in" in el(d, "sample-status").text or el(d, "sample-error").text, "samples")
    assert el(page, "sample-error").text == ""
    expected = zoo.sample(zoo.load(SAMPLER), 4, generator=torch.Generator().manual_seed(7))
    assert np.array_equal(shown_image(page, "sample-img"), make_grid(expected, 2, nrow=4)[..., 0])
    shots(page, "sampled")


def test_an_uploaded_digit_is_scored_by_every_release_and_completed(page, shots, digit):
    levels, path = digit
    before = scored(page)
    el(page, "upload").send_keys(str(path))
    wait(page, lambda d: scored(d) > before, "the score of the uploaded digit")
    pad = np.array(page.execute_script("return greyRows()"))
    assert np.array_equal(pad, levels[0].numpy() * 255)  # the file's pixels, unchanged on the pad

    for release, text in score_table(page).items():
        check_score(release, text, levels)

    choose(page, COMPLETER)
    set_value(page, "keep-rows", 14)
    set_value(page, "completions", 3)
    set_value(page, "seed", 0)
    el(page, "complete-btn").click()
    wait(
        page, lambda d: "completions in" in el(d, "complete-status").text or el(d, "complete-error").text, "completions"
    )
    assert el(page, "complete-error").text == ""
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[:14] = True
    expected = zoo.sample(zoo.load(COMPLETER), 3, generator=torch.Generator().manual_seed(0), known=levels, mask=mask)
    shown = shown_image(page, "complete-img")
    assert np.array_equal(shown, make_grid(expected, 2, nrow=3)[..., 0])
    given = make_grid(levels.unsqueeze(0), 2, nrow=1)[..., 0]
    given[2 + 14 : 2 + 28, 2 : 2 + 28] = 128  # the rows not kept, grey
    assert np.array_equal(shown_image(page, "given-img"), given)
    shots(page, "completed")


def test_mistakes_are_shown_on_the_page_not_as_tracebacks(page, shots):
    set_value(page, "n", 1000)
    el(page, "sample-btn").click()
    wait(page, lambda d: el(d, "sample-error").text, "the sample error")
    assert "expected an integer from 1 to 64" in el(page, "sample-error").text

    choose(page, "dcgan.binarized-mnist")
    el(page, "complete-btn").click()
    wait(page, lambda d: el(d, "complete-error").text, "the completion error")
    error = el(page, "complete-error").text
    assert "cannot condition on known pixels" in error and "Traceback" not in page.page_source
    assert el(page, "complete-img").get_dom_attribute("src") is None  # no stale completions under the error
    shots(page, "errors")
    assert (shots.folder / "demo-errors.png").stat().st_size > 0
