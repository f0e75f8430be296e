"""The web page in a real headless Chromium (Playwright): video, photo and live webcam.

Debian's Chromium is used as it is (never ``playwright install``). The live
test feeds Chromium's fake camera with a clip made from a real shared video.
Screenshots land in ``artifacts/``.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import av
import numpy as np
import pytest
from browser_checks import open_app
from app_server import start_app, stop_app

pw = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUN_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def server(shared_models, shared_videos, shared_images, tmp_path_factory):
    srv = start_app(tmp_path_factory.mktemp("app-browser") / "app.log")
    yield srv
    stop_app(srv.process)


@pytest.fixture(scope="module")
def camera_clip(shared_videos, tmp_path_factory) -> Path:
    """A Y4M clip for Chromium's fake camera: 4 s of people walking by (real footage), 320x180 at 10 fps."""
    out = tmp_path_factory.mktemp("camera") / "camera.y4m"
    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as c, open(out, "wb") as f:
        f.write(b"YUV4MPEG2 W320 H180 F10:1 Ip A1:1 C420jpeg\n")
        for i, frame in enumerate(c.decode(video=0)):
            if i < 100:  # skip the empty start
                continue
            if i >= 140:
                break
            yuv = frame.reformat(width=320, height=180, format="yuv420p").to_ndarray()
            f.write(b"FRAME\n" + np.ascontiguousarray(yuv).tobytes())
    return out


@pytest.fixture(scope="module")
def browser(camera_clip):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--autoplay-policy=no-user-gesture-required",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_clip}",
        ])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    open_app(pg, server.url)
    yield pg
    ctx.close()


def _choose_model(page, model_id: str) -> None:
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile("^" + re.escape(model_id) + " ")).click()
    page.wait_for_function(f"() => document.querySelector('#model input').value.includes('PASCAL')")


def _upload(page, path: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("n => document.querySelector('#upload').innerText.includes(n)", arg=path.stem)


def _open_camera(page, elem_id: str) -> None:
    """Grant the (fake) camera to a webcam component and wait until its preview plays."""
    page.locator(f"#{elem_id}").get_by_text("Click to Access Webcam").click()
    page.wait_for_function("id => { const v = document.querySelector(`#${id} video`);"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }", arg=elem_id)


def _legend(page) -> dict[str, float]:
    rows = page.locator("#legend .seg-legend-item").all_inner_texts()
    out = {}
    for row in rows:
        m = re.match(r"\s*(.+?)\s+(<?[\d.]+)%\s*$", row.replace("\n", " "))
        assert m, f"legend row without a share: {row!r}"
        out[m.group(1)] = float(m.group(2).lstrip("<"))
    return out


def test_video_result_plays_in_the_browser(page, shared_videos, artifacts):
    src = shared_videos / "car-detection.mp4"
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        fps, duration = float(s.average_rate), float(s.duration * s.time_base)
    _upload(page, src)
    page.get_by_label("realtime").check()
    page.get_by_label("side-by-side").check()
    page.click("#run")
    page.wait_for_function(
        "() => { const v = document.querySelector('#result-video video');"
        " return v && v.src.includes('car-detection_segmented'); }", timeout=RUN_TIMEOUT_MS)
    state = page.evaluate("""async () => {
        const v = document.querySelector('#result-video video');
        v.muted = true;
        for (let i = 0; i < 100 && v.readyState < 2; i++) await new Promise(r => setTimeout(r, 200));
        return {ready: v.readyState, duration: v.duration, w: v.videoWidth, h: v.videoHeight};
    }""")
    assert state["ready"] >= 2, state
    assert abs(state["duration"] - duration) <= 1.0 / fps, (state, duration)
    assert (state["w"], state["h"]) == (1536, 432)  # original | result in one video
    moved = page.evaluate("""async () => {
        const v = document.querySelector('#result-video video');
        const t0 = v.currentTime;
        await v.play();
        await new Promise(r => setTimeout(r, 2000));
        const t1 = v.currentTime;
        v.pause();
        v.currentTime = 16.0;  // two cars in view
        await new Promise(r => v.addEventListener('seeked', r, {once: true}));
        return [t0, t1];
    }""")
    assert moved[1] > moved[0] + 0.3, moved
    assert not page.locator("#original-video").is_visible()  # side-by-side: one player
    stats = page.inner_text("#stats")
    assert "377 frames" in stats and "12.5 fps → 12.5 fps" in stats and re.search(r"[\d.]+ frames/s", stats), stats
    assert _legend(page)
    assert "car-detection_segmented" in page.inner_text("#download")
    page.locator("#result-video").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "browser_video.png"), full_page=True)


def test_photo_result_and_legend(page, shared_images, artifacts):
    _choose_model(page, "deeplabv3-pascal")
    page.locator("#classes input").click()  # the class filter now offers the PASCAL VOC labels
    page.get_by_role("option", name="bird", exact=True).wait_for()
    page.keyboard.press("Escape")
    _upload(page, shared_images / "bird.bmp")
    page.click("#run")
    page.locator("#legend .seg-legend-item").first.wait_for(timeout=RUN_TIMEOUT_MS)
    sizes = page.evaluate("""async () => {
        const imgs = [...document.querySelectorAll('#result-photo img')];
        for (let i = 0; i < 50 && !imgs.every(im => im.complete && im.naturalWidth); i++)
            await new Promise(r => setTimeout(r, 100));
        return imgs.map(im => [im.naturalWidth, im.naturalHeight]);
    }""")
    assert len(sizes) >= 2 and all(s == [512, 343] for s in sizes), sizes  # original and result
    legend = _legend(page)
    assert "bird" in legend and legend["bird"] > 10, legend
    assert sum(legend.values()) == pytest.approx(100, abs=1.0)
    assert "deeplabv3-pascal" in page.inner_text("#stats")
    page.screenshot(path=str(artifacts / "browser_photo.png"), full_page=True)


def _live_frames(page, n: int = 5, seconds: float = 40) -> list[str]:
    """The live view's pictures as they change, until ``n`` different ones came; meanwhile the
    status never shows Gradio's per-event run time ("0.3s") over the live line."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(set(seen)) < n:
        src, stats = page.evaluate("() => { const i = document.querySelector('#live-output img');"
                                   " return [i ? i.src : null, document.querySelector('#live-stats').innerText]; }")
        assert not re.search(r"(^|\s)\d+(\.\d+)?s(\s|$)", stats), f"a run time over the live status: {stats!r}"
        if src and (not seen or seen[-1] != src):
            seen.append(src)
        time.sleep(0.1)
    assert len(set(seen)) >= n, f"only {len(set(seen))} segmented frames arrived"
    return seen


def test_live_webcam_is_segmented(page, artifacts):
    page.get_by_role("tab", name="Live webcam").click()
    page.get_by_label("mask").check()
    _open_camera(page, "live-input")
    # the stream's button reads Start (Gradio's own word is "Record", and nothing is recorded)
    button = page.locator("#live-input").get_by_role("button", name="capture photo")
    assert button.inner_text().strip() == "Start"
    button.click()
    _live_frames(page)
    stats = page.inner_text("#live-stats")
    assert re.search(r"latency \d+ ms", stats) and re.search(r"[\d.]+ frames/s", stats), stats
    page.screenshot(path=str(artifacts / "browser_live.png"), full_page=True)
    # its Stop ends the stream, and the status says so instead of a frozen "Live ·" line
    assert button.inner_text().strip() == "Stop"
    button.click()
    page.wait_for_function("() => /^Stopped/.test(document.querySelector('#live-stats').innerText.trim())",
                           timeout=10_000)
    assert "Live ·" not in page.inner_text("#live-stats")
    assert button.inner_text().strip() == "Start"


def _box(page, selector: str) -> dict:
    return page.evaluate("s => { const b = document.querySelector(s).getBoundingClientRect();"
                         " return {x: b.x, y: b.y, w: b.width, h: b.height}; }", selector)


def _overlap(a: dict, b: dict) -> float:
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(0.0, w) * max(0.0, h)


def test_live_view_on_a_phone(browser, server, artifacts):
    """On a phone (390x844, touch): the webcam and the segmented picture stack, the picture as wide
    as the screen allows and no taller than it, and Stop covers neither picture."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              device_scale_factor=2, permissions=["camera"])
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        open_app(page, server.url)
        page.get_by_role("tab", name="Live webcam").click()
        _open_camera(page, "live-input")
        button = page.locator("#live-input").get_by_role("button", name="capture photo")
        button.click()
        _live_frames(page, n=3)
        page.wait_for_function("() => document.querySelector('#live-output img').naturalWidth > 0")
        stop, cam, out = _box(page, "#live-input button[aria-label='capture photo']"), _box(page, "#live-input video"), \
            _box(page, "#live-output img")
        row = _box(page, "#live-row")
        page.screenshot(path=str(artifacts / "browser_live_phone.png"))
        assert button.inner_text().strip() == "Stop"
        assert _overlap(stop, cam) == 0 and _overlap(stop, out) == 0, (stop, cam, out)
        assert out["y"] >= cam["y"] + cam["h"], "the segmented picture is not under the webcam"
        assert out["w"] >= 0.9 * row["w"] and out["w"] >= 0.75 * 390, (out, row)
        assert out["h"] <= 844, out
        button.click()
        page.wait_for_function("() => /^Stopped/.test(document.querySelector('#live-stats').innerText.trim())",
                               timeout=10_000)
    finally:
        ctx.close()


def test_webcam_photo_is_segmented(page, artifacts):
    page.get_by_role("tab", name="Webcam photo").click()
    _open_camera(page, "webcam-photo")
    page.locator("#webcam-photo").get_by_role("button", name="capture photo").click()
    page.wait_for_function("() => [...document.querySelectorAll('#webcam-photo img')]"
                           ".some(i => i.src.includes('gradio_api/file=') && i.naturalWidth > 0)")  # uploaded
    page.click("#run")
    page.locator("#legend .seg-legend-item").first.wait_for(timeout=RUN_TIMEOUT_MS)
    assert re.match(r"Photo \d+×\d+ · segmented in \d+ ms", page.inner_text("#stats")), page.inner_text("#stats")
    assert "webcam_segmented" in page.inner_text("#download")
    assert _legend(page)
    page.screenshot(path=str(artifacts / "browser_webcam_photo.png"), full_page=True)


def test_an_example_plays_after_the_app_restarts(browser, tmp_path, shared_models, shared_videos, artifacts):
    """The example results cache (``GRADIO_EXAMPLES_CACHE``) outlives the app; the files its rows
    named were the stopped app's temporary files: after a restart the row is computed again, and plays."""
    from browser_checks import check_players, show_example

    cache = tmp_path / "cached_examples"
    for run in (1, 2):
        srv = start_app(tmp_path / f"app-{run}.log", GRADIO_EXAMPLES_CACHE=str(cache))
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            open_app(page, srv.url)
            page.get_by_text("Classroom (video)").first.wait_for()
            show_example(page, "Classroom (video)", "classroom", photo=False)
            check_players(page, "classroom")
            page.screenshot(path=str(artifacts / f"browser_example_run{run}.png"), full_page=True)
        finally:
            ctx.close()
            stop_app(srv.process)
    assert "computing it again" in (tmp_path / "app-2.log").read_text()
