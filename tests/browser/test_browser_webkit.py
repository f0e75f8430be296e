"""The page in a second engine, WebKit (Safari's engine), as the Chromium tests see it.

Debian's ``webkit2gtk-driver`` (``WebKitWebDriver``) drives the ``MiniBrowser`` that Debian's
WebKitGTK 4.1 package installs (started with ``--automation``), through Selenium, on an Xvfb
display this module starts itself. Its media stack is GStreamer (``gstreamer1.0-libav`` for H.264,
``gstreamer1.0-plugins-good`` for MP4/Matroska), not Safari's. One app server and one browser
serve the whole module; the checks are ``browser_checks``'s, the same the Chromium tests run
(the examples, in both engines: ``test_browser_examples``).

Missing pieces skip these tests on a developer machine and fail them under CI=true (``.ci/run``
installs them). Screenshots land in ``artifacts/webkit_*.png``.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from app_server import start_app, stop_app
from browser_checks import (PAGE_READY, axe_source, axe_violations, check_checkerboard, check_players,
                            check_plays_to_end, check_slider, clips, downloads, drop, person_clip, run_and_wait,
                            transparent_spot)
from PIL import Image

webdriver = pytest.importorskip("selenium.webdriver")

DRIVER = shutil.which("WebKitWebDriver") or "/usr/bin/WebKitWebDriver"
MINIBROWSER = next(iter(sorted(glob.glob("/usr/lib/*/webkit2gtk-4.1/MiniBrowser"))), "")
XVFB = shutil.which("Xvfb") or "/usr/bin/Xvfb"
SIZE = (1400, 1000)


def _need(ok: bool, msg: str) -> None:
    if not ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)


class WebKitPage:
    """A Selenium driver with the two calls ``browser_checks`` needs, as Playwright's Page has them."""

    def __init__(self, driver):
        self.driver = driver

    def evaluate(self, js: str, arg=None):
        """Run ``js`` (a function expression, async or not) with ``arg``; return its result."""
        out = self.driver.execute_async_script(
            "const arg = arguments[0], done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({js})(arg)).then(v => done({{ok: v === undefined ? null : v}}),"
            " e => done({err: String(e && e.stack || e)}));", arg)
        if "err" in out:
            raise AssertionError(f"script failed in WebKit: {out['err']}")
        return out["ok"]

    def wait_for_function(self, js: str, arg=None, timeout: float = 30_000):
        deadline = time.monotonic() + timeout / 1000
        while True:
            value = self.evaluate(js, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout / 1000:.0f} s: {js}")
            time.sleep(0.2)

    def goto(self, url: str) -> None:
        self.driver.get(url)
        self.wait_for_function(PAGE_READY)
        # the app's own CSS (views.PAGE_CSS) comes with Gradio's config, after the first paint
        self.wait_for_function("() => getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--block-info-text-color').trim() === '#5f5f6b'"
                               " && getComputedStyle(document.querySelector('#run')).backgroundColor"
                               " === 'rgb(194, 65, 12)'")  # and Run's colour has finished its transition

    def screenshot(self, path: Path) -> None:
        self.driver.save_screenshot(str(path))


@pytest.fixture(scope="module")
def webkit():
    """One MiniBrowser under WebKitWebDriver, on an Xvfb display of its own; all closed afterwards."""
    for path, what in ((DRIVER, "WebKitWebDriver (Debian: webkit2gtk-driver)"),
                       (MINIBROWSER, "MiniBrowser (Debian: libwebkit2gtk-4.1-0)"), (XVFB, "Xvfb (Debian: xvfb)")):
        _need(bool(path) and Path(path).exists(), f"{what} is missing")
    from selenium.webdriver.webkitgtk.service import Service

    read, write = os.pipe()  # Xvfb writes the display number it took (a free one) here
    xvfb = subprocess.Popen([XVFB, "-displayfd", str(write), "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    driver = None
    try:
        display = os.read(read, 16).decode().strip()
        assert display, "Xvfb did not start"
        options = webdriver.WebKitGTKOptions()
        options.binary_location = MINIBROWSER
        options.add_argument("--automation")
        # without compositing, WebKitGTK paints a video frame into the page: the screenshots show it
        env = dict(os.environ, DISPLAY=f":{display}", WEBKIT_DISABLE_COMPOSITING_MODE="1")
        service = Service(executable_path=DRIVER, env=env,
                          log_output=subprocess.DEVNULL)
        driver = webdriver.WebKitGTK(options=options, service=service)
        driver.set_window_size(*SIZE)
        driver.set_script_timeout(120)
        yield WebKitPage(driver)
    finally:
        os.close(read)
        if driver is not None:
            driver.quit()  # the MiniBrowser and the driver
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()
        _no_leftovers()


def _no_leftovers(names=("WebKitWebDriver", "MiniBrowser", "WebKitWebProcess", "WebKitNetworkProcess",
                         "WebKitGPUProcess", "Xvfb")) -> None:
    """Nothing this test process started for WebKit outlives the module (any left is killed)."""
    import psutil

    time.sleep(1)
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.name() in names]
    for p in left:
        p.kill()
    assert not left, f"processes left after the WebKit module: {[(p.pid, p.name()) for p in left]}"


@pytest.fixture(scope="module")
def server(shared_models, shared_videos, shared_images, tmp_path_factory):
    srv = start_app(tmp_path_factory.mktemp("app-webkit") / "app.log")
    yield srv
    stop_app(srv.process)


@pytest.fixture
def page(webkit, server):
    webkit.goto(server.url)
    return webkit


def test_no_axe_violations_in_webkit(page):
    """The accessibility audit of tests/browser/test_browser_a11y.py, in WebKit's rendering (desktop size)."""
    source = axe_source()
    _need(source is not None, "axe-core is unavailable (npm missing or the registry unreachable)")
    found = axe_violations(page, source)
    assert not found, [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]


def test_it_is_webkit_with_h264(page):
    ua = page.evaluate("() => navigator.userAgent")
    assert "AppleWebKit" in ua and "Chrome" not in ua, ua
    assert page.evaluate("() => document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")


def test_every_kind_of_clip_plays(page, tmp_path, artifacts):
    for clip, copied in clips(tmp_path):
        drop(page, clip)
        run_and_wait(page, clip.stem)
        check_players(page, clip.stem, copied=copied)
        check_plays_to_end(page, clip.stem)
    page.screenshot(artifacts / "webkit_clips.png")


def _choose_output(page, mode: str) -> None:
    page.evaluate("m => document.querySelector(`#mode input[value='${m}']`).click()", mode)
    page.wait_for_function("() => !!document.querySelector('#feather')")


def _on_screen(page, selector: str) -> np.ndarray:
    """What the screen shows of an element (RGB), at the element's CSS size."""
    from selenium.webdriver.common.by import By

    element = page.driver.find_element(By.CSS_SELECTOR, selector)
    with Image.open(io.BytesIO(element.screenshot_as_png)) as im:
        w, h = element.size["width"], element.size["height"]
        return np.asarray(im.convert("RGB").resize((round(w), round(h))))


def test_remove_background_video_shows_the_checkerboard(page, shared_videos, tmp_path, artifacts):
    from media import decode_rgba_webm

    clip = person_clip(tmp_path / "walker.mp4", 300, 20, shared_videos, size=(320, 240))
    _choose_output(page, "remove-background")
    drop(page, clip)
    run_and_wait(page, "walker")
    page.wait_for_function("() => document.querySelector('#result-video video').src"
                           ".includes('walker_segmented_preview.mp4')")
    check_players(page, "walker")
    files = downloads(page, tmp_path / "downloads")
    assert ".webm" in files, files  # the download keeps the alpha; the page shows its preview
    alpha = np.stack(decode_rgba_webm(files[".webm"]))[..., 3]
    f = int(np.argmax((alpha > 128).mean(axis=(1, 2))))  # the frame with the most person
    spot = transparent_spot(alpha[f])
    assert spot, "no transparent area in the result"
    check_checkerboard(page, (f + 0.5) / 10, *spot, size=(320, 240))  # the frame, read back in a canvas
    # ...and the player paused on that frame shows light and dark squares on the screen, not black
    page.evaluate("""async (t) => { const v = document.querySelector('#result-video video'); v.pause();
        const seeked = new Promise(r => v.addEventListener('seeked', r, {once: true}));
        v.currentTime = t; await seeked; v.scrollIntoView({block: 'center'}); }""", (f + 0.5) / 10)
    shown = page.evaluate("() => { const v = document.querySelector('#result-video video');"
                          " const b = v.getBoundingClientRect(); return [b.width, b.height]; }")
    scale = min(shown[0] / 320, shown[1] / 240)  # object-fit: contain
    ox, oy = (shown[0] - 320 * scale) / 2, (shown[1] - 240 * scale) / 2
    x0, y0 = round(ox + spot[0] * scale), round(oy + spot[1] * scale)
    for _ in range(20):  # until the paused frame is painted (the screenshot is blank before)
        time.sleep(0.5)
        screen = _on_screen(page, "#result-video video")
        patch = screen[y0:y0 + round(32 * scale), x0:x0 + round(32 * scale)].astype(int)
        if patch.size and np.ptp(patch.mean(axis=2)) > 30:
            break
    Image.fromarray(screen).save(artifacts / "webkit_remove_video_player.png")
    page.screenshot(artifacts / "webkit_remove_video.png")
    assert patch.size and patch.min() > 150, f"the player shows the transparent area dark (min {patch.min()})"
    assert np.ptp(patch.mean(axis=2)) > 30, "no checkerboard squares on the screen where the result is transparent"


def test_remove_background_photo_shows_the_checkerboard(page, shared_videos, tmp_path, artifacts):
    import av

    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 320:
                frame.to_image().resize((384, 216)).save(tmp_path / "walker.png")
                break
    _choose_output(page, "remove-background")
    drop(page, tmp_path / "walker.png")
    run_and_wait(page, "walker", kind="photo")
    sides = check_slider(page, size=(384, 216))
    files = downloads(page, tmp_path / "downloads")
    with Image.open(files[".png"]) as im:
        assert im.mode == "RGBA", im.mode
        alpha = np.asarray(im)[..., 3]
    spot = transparent_spot(alpha)
    assert spot, "no transparent area in the result"
    shown = page.evaluate("""async (p) => {
        const imgs = [...document.querySelectorAll('#result-photo img')];
        const im = imgs[imgs.length - 1];
        await im.decode();
        const c = document.createElement('canvas');
        c.width = im.naturalWidth; c.height = im.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(im, 0, 0);
        return Array.from(g.getImageData(p[0], p[1], 32, 32).data);
    }""", list(spot))
    patch = np.asarray(shown, np.uint8).reshape(32, 32, 4)[..., :3]
    assert set(np.unique(patch)) <= {204, 255} and len(np.unique(patch)) == 2, (sides, np.unique(patch))
    page.screenshot(artifacts / "webkit_remove_photo.png")

