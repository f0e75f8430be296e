"""Every example of the page, in both engines (Chromium through Playwright, WebKit through Selenium):
both players load, the result plays to its end, the photo slider shows both sides.

One app serves the module and computes every example's result once, in the background from its
start (``SEGMENTATION_WARM_EXAMPLES=1``, into a cache folder of its own): the example tests wait for
it, then each engine shows the cached results. Browsers: ``test_browser``'s Chromium and
``test_browser_webkit``'s WebKit (each skips, or fails under CI=true, without its pieces).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from app_server import start_app, stop_app, temp_env
from browser_checks import (PHOTO_EXAMPLES, VIDEO_EXAMPLES, check_players, check_plays_to_end, check_slider, open_app,
                            show_example)
from test_browser import browser, camera_clip  # noqa: F401
from test_browser_webkit import webkit  # noqa: F401

WARM_S = 1200  # every example's result, computed on a shared 2-core machine (a few minutes)
ENGINES = ["chromium", "webkit"]


@pytest.fixture(scope="module")
def server(shared_models, shared_videos, shared_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("app-examples")
    srv = start_app(root / "app.log", SEGMENTATION_WARM_EXAMPLES="1",
                    GRADIO_EXAMPLES_CACHE=str(root / "cached_examples"), **temp_env(root / "tmp"))
    yield srv
    stop_app(srv.process)


@pytest.fixture(scope="module")
def warm(server) -> None:
    """The app has computed every example's result (and none failed)."""
    deadline = time.monotonic() + WARM_S
    while "Example results are cached." not in server.log():
        assert server.process.poll() is None and time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(1)
    assert "Could not compute the result of example" not in server.log(), server.log()[-3000:]


@pytest.fixture
def page(request, server, warm):
    if request.param == "chromium":
        browser = request.getfixturevalue("browser")
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        open_app(pg, server.url)
        yield pg
        ctx.close()
    else:
        wk = request.getfixturevalue("webkit")
        wk.goto(server.url)
        yield wk


def _shot(page, path: Path) -> None:
    if hasattr(page, "driver"):
        page.screenshot(path)
    else:
        page.screenshot(path=str(path), full_page=True)


@pytest.mark.parametrize("page", ENGINES, indirect=True)
@pytest.mark.parametrize("example", VIDEO_EXAMPLES, ids=lambda ex: ex.name)
def test_every_video_example_plays(page, example, request, artifacts):
    stem = Path(example.name).stem
    show_example(page, example.title, stem, photo=False)
    check_players(page, stem, original=example.mode != "side-by-side")
    check_plays_to_end(page, stem)
    _shot(page, artifacts / f"example_{request.node.callspec.id}.png")


@pytest.mark.parametrize("page", ENGINES, indirect=True)
@pytest.mark.parametrize("example", PHOTO_EXAMPLES, ids=lambda ex: ex.name)
def test_every_photo_example_shows_both_sides(page, example, request, artifacts):
    show_example(page, example.title, Path(example.name).stem, photo=True)
    check_slider(page)
    _shot(page, artifacts / f"example_{request.node.callspec.id}.png")
