"""Examples that say what they set, pick by pointing, and a live view that keeps up, in a real
headless Chromium.

* An example row sets its settings and the line under the table says which.
* A click on a person in a photo, and on a car in a video's frame, puts ``person`` / ``car``
  in the class filter; a second click takes it out again. The pixel clicked is found from the
  model's own class map of the same still the page shows (``webapp.pick.still_of``).
* The live view on a model made 4x slower (``SEGMENTATION_LIVE_SLOW_MODEL``, as on a 2-core
  machine without AVX-512) switches itself to realtime and says why, until the user picks a
  speed: then it keeps theirs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from browser_checks import open_app
from app_server import ROOT, start_app, stop_app

from segmentation import Segmenter
from webapp.pick import still_of

pw = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(shared_models, shared_videos, tmp_path_factory):
    srv = start_app(tmp_path_factory.mktemp("app-pick") / "app.log",
                    GRADIO_EXAMPLES_CACHE=str(tmp_path_factory.mktemp("examples-cache")),
                    SEGMENTATION_LIVE_SLOW_MODEL="4")
    yield srv
    stop_app(srv.process)


@pytest.fixture(scope="module")
def camera_clip(shared_videos, tmp_path_factory) -> Path:
    """A Y4M clip for Chromium's fake camera: people walking by, 320x180 at 15 fps."""
    out = tmp_path_factory.mktemp("camera") / "camera.y4m"
    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as c, open(out, "wb") as f:
        f.write(b"YUV4MPEG2 W320 H180 F15:1 Ip A1:1 C420jpeg\n")
        for i, frame in enumerate(c.decode(video=0)):
            if i >= 160:
                break
            if i >= 100:
                yuv = frame.reformat(width=320, height=180, format="yuv420p").to_ndarray()
                f.write(b"FRAME\n" + np.ascontiguousarray(yuv).tobytes())
    return out


@pytest.fixture(scope="module")
def browser(camera_clip):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera_clip}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    open_app(pg, server.url)
    yield pg
    ctx.close()


def _chosen(page) -> list[str]:
    return [t.strip() for t in page.locator("#classes .token").all_inner_texts()]


def _inside(mask: np.ndarray) -> tuple[int, int]:
    """A pixel (x, y) deep inside the largest blob of ``mask``."""
    padded = np.pad(mask.astype(np.uint8), 1)  # the picture's edge counts as outside
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    assert dist[y, x] >= 4, "no region large enough to click on"
    return int(x), int(y)


def _target(still: np.ndarray, model: str, name: str) -> tuple[int, int]:
    seg = Segmenter.create(model)
    cm = seg.segment(still).class_map
    return _inside(cm == seg.labels.index(name))


def _click_still(page, x: int, y: int) -> None:
    """Click pixel (x, y) of the still as the page shows it (scaled to fit its box)."""
    box = page.evaluate("""() => { const i = document.querySelector('#pick-still img');
        const r = i.getBoundingClientRect();
        return {x: r.x, y: r.y, w: r.width, h: r.height, nw: i.naturalWidth, nh: i.naturalHeight}; }""")
    s = min(box["w"] / box["nw"], box["h"] / box["nh"])  # object-fit: contain / scale-down
    ox, oy = (box["w"] - box["nw"] * s) / 2, (box["h"] - box["nh"] * s) / 2
    page.mouse.click(box["x"] + ox + (x + 0.5) * s, box["y"] + oy + (y + 0.5) * s)


def _wait_still(page, width: int) -> None:
    page.wait_for_function("w => { const i = document.querySelector('#pick-still img');"
                           " return i && i.complete && i.naturalWidth === w; }", arg=width)


def _choose_model(page, model_id: str, says: str) -> None:
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile("^" + re.escape(model_id) + " ")).click()
    page.wait_for_function("s => document.querySelector('#model input').value.includes(s)", arg=says)


def test_example_sets_its_settings_and_says_so(page):
    page.locator("#examples").get_by_text("Bird (photo)").click()
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('bird')")
    assert "PASCAL" in page.locator("#model input").input_value()
    assert "model deeplabv3-pascal, output overlay" in page.inner_text("#example-settings")
    assert page.locator("#examples img").count() >= 6  # a thumbnail per example


def test_click_on_a_person_in_a_photo_picks_person(page, tmp_path):
    with av.open(str(ROOT / "examples" / "one-by-one-person-detection.mp4")) as c:
        frame = next(f for f in c.decode(video=0) if f.time >= 30.0).to_ndarray(format="rgb24")
    photo = tmp_path / "walkers.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    still = still_of(photo)
    x, y = _target(still, "autoseg-edgetpu-xs", "person")  # the page's default model
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    _wait_still(page, still.shape[1])
    _click_still(page, x, y)
    page.wait_for_function("() => document.querySelector('#pick-status').innerText.includes('Added person')")
    assert _chosen(page) == ["person"]
    _click_still(page, x, y)  # again: out
    page.wait_for_function("() => document.querySelector('#pick-status').innerText.includes('Removed person')")
    assert _chosen(page) == []


def test_click_on_a_car_in_a_video_frame_picks_car(page, shared_videos):
    video = shared_videos / "car-detection.mp4"
    page.locator("#upload input[type=file]").set_input_files(str(video))
    _wait_still(page, 768)
    _choose_model(page, "deeplab-cityscapes", "Cityscapes")
    first = page.get_attribute("#pick-still img", "src")
    box = page.locator("#pick-at input[type=number]")
    box.fill("16")
    box.press("Enter")
    still = still_of(video, 16.0)
    x, y = _target(still, "deeplab-cityscapes", "car")
    page.wait_for_function("s => { const i = document.querySelector('#pick-still img');"  # the frame at 16 s
                           " return i && i.src !== s && i.complete; }", arg=first)
    _click_still(page, x, y)
    page.wait_for_function("() => /Added|Removed/.test(document.querySelector('#pick-status').innerText)")
    assert "Added car" in page.inner_text("#pick-status"), page.inner_text("#pick-status")
    assert _chosen(page) == ["car"]


def _live_status(page, pattern: str, timeout: float = 60_000) -> str:
    page.wait_for_function("p => new RegExp(p).test(document.querySelector('#live-stats').innerText)",
                           arg=pattern, timeout=timeout)
    return page.inner_text("#live-stats")


def test_live_view_on_a_slow_model_switches_to_realtime_until_the_user_chooses(page):
    page.locator("#examples").get_by_text("Bird (photo)").click()  # an example sets the speed: not the user
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('bird')")
    page.get_by_role("tab", name="Live webcam").click()
    page.locator("#live-input").get_by_text("Click to Access Webcam").click()
    page.wait_for_function("() => { const v = document.querySelector('#live-input video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }")
    page.locator("#live-input").get_by_role("button", name="capture photo").click()  # "Record"
    text = _live_status(page, "realtime( at 50% size)?, chosen to keep up with the camera")
    assert re.search(r"(accurate|realtime) took \d+ ms per frame, over the 50 ms", text), text
    page.get_by_label("realtime", exact=True).check()  # the user's own choice from now on
    text = _live_status(page, "realtime \\(your choice: not adapted\\)")
    assert "chosen to keep up" not in text
