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
import signal
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


COMMAND_S = 180  # one WebDriver command (a script waits at most 120 s): past this, WebKit is stuck


class WebKitStuck(AssertionError):
    """WebKit did not answer a WebDriver command within ``COMMAND_S``: the test fails, and the next
    page starts a fresh browser (a CI run once waited an hour for one unanswered command)."""


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display: the process and the display's number."""
    read, write = os.pipe()  # Xvfb writes the display number it took here, then a newline
    xvfb = subprocess.Popen([XVFB, "-displayfd", str(write), "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    # read up to the newline: Xvfb writes the number and the newline in two writes, and if the pipe
    # is closed between them it dies ("Cannot write display number"); the browser then never starts
    # and its session request never gets an answer (1 start in 3 on one machine: a CI run hung on it)
    got = b""
    try:
        while not got.endswith(b"\n"):
            chunk = os.read(read, 16)
            if not chunk:
                break
            got += chunk
    finally:
        os.close(read)
    display = got.decode().strip()
    assert display and xvfb.poll() is None, f"Xvfb did not start (exit status {xvfb.poll()})"
    return xvfb, display


class WebKitPage:
    """A MiniBrowser under WebKitWebDriver, on an Xvfb display of its own, with the two calls
    ``browser_checks`` needs, as Playwright's Page has them. Every command has a deadline
    (``COMMAND_S``); after one is missed, ``goto`` starts the browser afresh."""

    def __init__(self):
        self.driver = None
        self._service = None
        self.stuck = False
        self.command_s = COMMAND_S
        self._xvfb, self._display = start_xvfb()  # for the module: a stuck browser restarts on it
        try:
            self._start()
        except BaseException:
            self.close()  # nothing of a browser that did not start outlives it
            raise

    def _start(self) -> None:
        """The MiniBrowser under a WebKitWebDriver, every command bounded (the session's start too)."""
        import socket

        from selenium.webdriver.webkitgtk.service import Service

        options = webdriver.WebKitGTKOptions()
        options.binary_location = MINIBROWSER
        options.add_argument("--automation")
        # without compositing, WebKitGTK paints a video frame into the page: the screenshots show it
        env = dict(os.environ, DISPLAY=f":{self._display}", WEBKIT_DISABLE_COMPOSITING_MODE="1")
        # a session of its own: the driver, the MiniBrowser and its web processes form one process
        # group, so a stuck browser (whose web process outlives its parent) is killed whole
        self._service = Service(executable_path=DRIVER, env=env, log_output=subprocess.DEVNULL,
                                popen_kw={"start_new_session": True})
        default = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.command_s)  # Selenium's connection takes its deadline from here
        try:
            self.driver = webdriver.WebKitGTK(options=options, service=self._service)
        finally:
            socket.setdefaulttimeout(default)
        self.driver.command_executor.client_config.timeout = self.command_s
        self.driver.set_window_size(*SIZE)
        self.driver.set_script_timeout(120)
        self.stuck = False

    def _stop(self) -> None:
        """The browser and its driver ended: quit, and whatever is left of their group killed."""
        service, self._service = self._service, None
        if self.driver is not None and not self.stuck:
            try:
                self.driver.quit()
            except Exception:  # noqa: BLE001 - it got stuck now: its process group is killed below
                pass
        self.driver = None
        if service is None or service.process is None:
            return
        try:  # the driver leads its own session, so its pid is the group's id, alive or not
            os.killpg(service.process.pid, signal.SIGKILL)  # whatever is left (a stuck web process spins on)
        except ProcessLookupError:
            pass
        service.process.wait()

    def close(self) -> None:
        """The browser, its driver and the display, ended."""
        self._stop()
        self._xvfb.terminate()
        try:
            self._xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._xvfb.kill()
            self._xvfb.wait()

    def _call(self, fn, *args):
        """``fn(*args)`` on the driver; a missed deadline marks the browser stuck and fails the test."""
        import urllib3

        try:
            return fn(*args)
        except (urllib3.exceptions.HTTPError, TimeoutError, ConnectionError) as e:  # no answer, or none in time
            self.stuck = True
            raise WebKitStuck(f"WebKit did not answer within {self.command_s} s ({type(e).__name__}: {e})") from e

    def evaluate(self, js: str, arg=None):
        """Run ``js`` (a function expression, async or not) with ``arg``; return its result."""
        out = self._call(self.driver.execute_async_script,
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
        if self.stuck:  # the last test left it unanswering: a fresh browser
            self._stop()
            self._start()
        self._call(self.driver.get, url)
        self.wait_for_function(PAGE_READY)
        # the app's own CSS (views.PAGE_CSS) comes with Gradio's config, after the first paint
        self.wait_for_function("() => getComputedStyle(document.documentElement)"
                               ".getPropertyValue('--block-info-text-color').trim() === '#5f5f6b'"
                               " && getComputedStyle(document.querySelector('#run')).backgroundColor"
                               " === 'rgb(194, 65, 12)'")  # and Run's colour has finished its transition

    def screenshot(self, path: Path) -> None:
        self._call(self.driver.save_screenshot, str(path))

    def on_screen(self, selector: str) -> tuple[bytes, tuple[float, float]]:
        """A PNG of what the screen shows of the element at ``selector``, and its CSS size."""
        from selenium.webdriver.common.by import By

        element = self._call(self.driver.find_element, By.CSS_SELECTOR, selector)
        return self._call(lambda: element.screenshot_as_png), (element.size["width"], element.size["height"])


@pytest.fixture(scope="module")
def webkit():
    """One WebKit browser for the module (restarted after a stuck test); all closed afterwards."""
    for path, what in ((DRIVER, "WebKitWebDriver (Debian: webkit2gtk-driver)"),
                       (MINIBROWSER, "MiniBrowser (Debian: libwebkit2gtk-4.1-0)"), (XVFB, "Xvfb (Debian: xvfb)")):
        _need(bool(path) and Path(path).exists(), f"{what} is missing")
    page = WebKitPage()
    try:
        yield page
    finally:
        page.close()
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


def test_xvfb_outlives_its_start():
    """Xvfb keeps running once it has told its display (it died in ~1 start of 3 when the pipe it
    writes the number to was closed before its newline, and the browser's start then hung)."""
    _need(Path(XVFB).exists(), "Xvfb (Debian: xvfb) is missing")
    for _ in range(12):
        xvfb, display = start_xvfb()
        try:
            time.sleep(0.2)
            assert display.isdigit() and xvfb.poll() is None, (display, xvfb.poll())
        finally:
            xvfb.terminate()
            xvfb.wait(timeout=10)


def test_a_stuck_browser_fails_one_test_and_the_next_gets_a_fresh_one(page, server):
    """A page that stops answering (its script never yields) fails within the command deadline,
    instead of hanging the run, and the next page opens in a new browser; the stuck one is gone."""
    import psutil

    page.driver.command_executor.client_config.timeout = 10
    old = psutil.Process(page._service.process.pid)
    group = [p for p in psutil.process_iter(["name"]) if _in_group(p, os.getpgid(old.pid))]
    assert any(p.info["name"].startswith("WebKitWebProc") for p in group), [p.info for p in group]
    started = time.monotonic()
    with pytest.raises(WebKitStuck):
        page.evaluate("() => { while (true) {} }")
    assert time.monotonic() - started < 30
    page.goto(server.url)  # a fresh browser, with the full deadline again
    assert page.driver.command_executor.client_config.timeout == COMMAND_S
    assert page.evaluate("() => document.querySelector('#run').innerText").strip()
    time.sleep(0.5)
    assert not [p for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _in_group(p, group: int) -> bool:
    try:
        return os.getpgid(p.pid) == group
    except (ProcessLookupError, PermissionError):
        return False


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
    png, (w, h) = page.on_screen(selector)
    with Image.open(io.BytesIO(png)) as im:
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

