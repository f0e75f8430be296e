"""Background effects, downloads, the timeline and the phone layout, in a real headless Chromium.

Each result is read back from the page's own download links and checked against the source:
foreground pixels unchanged, background blurred or transparent; the label downloads (.zip of PNGs,
COCO .json) decode to exactly the class maps a library run writes to .npz / .png. Screenshots land
in ``artifacts/``. Fixtures (server, browser, page) and helpers come from ``test_browser``.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from browser_checks import check_checkerboard, open_app
from PIL import Image
from test_browser import (RUN_TIMEOUT_MS, _choose_model, _legend, _upload, browser, camera_clip, page,  # noqa: F401
                          server)
from media import decode_rgb, decode_rgba_webm, detail, inside, read_coco, read_zip

from segmentation import DrawOptions, Segmenter, VideoOptions, segment_image, segment_video
from segmentation.images import load_image

pw = pytest.importorskip("playwright.sync_api")

PASCAL_BIRD = 3
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def person_clip(shared_videos, tmp_path_factory) -> Path:
    """Frames 300-330 of one-by-one-person-detection.mp4 (a person walking through a room), 3.1 s."""
    out = tmp_path_factory.mktemp("person") / "person.mp4"
    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as src, av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt, s.options = 768, 432, "yuv420p", {"crf": "18", "preset": "fast"}
        for i, frame in enumerate(src.decode(video=0)):
            if i > 330:
                break
            if i >= 300:
                dst.mux(s.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
        dst.mux(s.encode(None))
    return out


@pytest.fixture(scope="module")
def pascal(shared_models) -> Segmenter:
    return Segmenter.create("deeplabv3-pascal")


@pytest.fixture(scope="module")
def autoseg(shared_models) -> Segmenter:
    return Segmenter.create()


# -- helpers ------------------------------------------------------------------------------------------
def _choose_effect(page, mode: str) -> None:
    """Pick a background effect: its settings appear, the opacity slider goes."""
    page.get_by_label(mode, exact=True).check()
    page.locator("#feather").wait_for()
    page.locator("#alpha").wait_for(state="hidden")


def _bird_with(page, bird: Path, mode: str) -> None:
    """PASCAL's model, ``mode`` with the bird as its foreground, bird.bmp uploaded: ready to run."""
    _choose_model(page, "deeplabv3-pascal")
    _choose_effect(page, mode)
    page.locator("#classes input").click()
    page.get_by_role("option", name="bird", exact=True).click()
    page.keyboard.press("Escape")
    _upload(page, bird)


def _run(page, result_selector: str) -> None:
    page.click("#run")
    page.locator("#download a").first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator(result_selector).first.wait_for(timeout=RUN_TIMEOUT_MS)


def _downloads(page, server, folder: Path) -> dict[str, Path]:
    """The files offered in #download, fetched over HTTP as a visitor would: suffix -> local path."""
    links = page.evaluate("() => [...document.querySelectorAll('#download a')].map(a => [a.href, a.textContent])")
    out = {}
    for href, _ in links:
        r = httpx.get(href, timeout=30)
        assert r.status_code == 200, (href, r.status_code)
        name = Path(href.split("?")[0]).name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(r.content)
        out["".join(Path(name).suffixes[-1:])] = path
    return out


def _check_labels(files: dict[str, Path], expected: np.ndarray) -> None:
    """The .zip and .json downloads decode to ``expected`` ([frames, h, w]), pixel for pixel."""
    maps, meta = read_zip(files[".zip"])
    assert maps.shape == expected.shape, (maps.shape, expected.shape)
    assert np.array_equal(maps, expected), f"{(maps != expected).mean():.4%} of the zip's pixels differ"
    assert np.array_equal(read_coco(files[".json"])[0], expected)
    assert meta["classes"] and meta["width"] == expected.shape[2]


# -- photos -------------------------------------------------------------------------------------------
def test_blur_background_photo_keeps_the_bird_and_blurs_the_rest(page, server, shared_images, pascal, tmp_path,
                                                                   artifacts):
    bird = shared_images / "bird.bmp"
    _choose_effect(page, "blur-background")
    assert page.locator("#blur").is_visible() and page.locator("#feather").is_visible()
    assert not page.locator("#alpha").is_visible() and not page.locator("#background-colour").is_visible()
    assert "empty = person" in page.inner_text("#classes")
    _bird_with(page, bird, "blur-background")
    _run(page, "#result-photo img")
    files = _downloads(page, server, tmp_path)
    assert set(files) == {".png", ".zip", ".json"}, files
    src = load_image(bird)
    with Image.open(files[".png"]) as im:
        assert im.mode == "RGB" and im.size == (512, 343)
        out = np.asarray(im)
    lib = segment_image(pascal, bird, DrawOptions(mode="blur-background", classes=(PASCAL_BIRD,)),
                        labels_out=tmp_path / "lib.png")
    with Image.open(tmp_path / "lib.png") as im:
        expected = np.asarray(im)[None]
    _check_labels(files, expected)
    assert np.array_equal(out, lib.rendered), "the page's result is the library's"
    fg = expected[0] == PASCAL_BIRD
    assert np.array_equal(out[inside(fg)], src[inside(fg)]), "the bird is not the source's, bit for bit"
    back = inside(~fg)
    assert detail(out, back) < 0.3 * detail(src, back), "the background is not blurred"
    assert [it for it in _legend(page)] == ["bird"]
    page.screenshot(path=str(artifacts / "browser_blur_photo.png"), full_page=True)


def test_remove_background_photo_is_transparent(page, server, shared_images, tmp_path, artifacts):
    bird = shared_images / "bird.bmp"
    _bird_with(page, bird, "remove-background")
    _run(page, "#result-photo img")
    files = _downloads(page, server, tmp_path)
    src = load_image(bird)
    with Image.open(files[".png"]) as im:
        assert im.mode == "RGBA", im.mode  # the download keeps its alpha
        out = np.asarray(im)
    fg = read_zip(files[".zip"])[0][0] == PASCAL_BIRD
    alpha = out[..., 3]
    assert (alpha[inside(fg)] == 255).all() and (alpha[inside(~fg)] == 0).all()
    assert np.array_equal(out[..., :3][inside(fg)], src[inside(fg)])
    assert (out[..., :3][alpha == 0] == 0).all(), "colour left where the picture is transparent"
    # On the page the transparent part shows a checkerboard, not the original under the slider.
    shown = page.evaluate("""async () => {
        const imgs = [...document.querySelectorAll('#result-photo img')];
        const im = imgs[imgs.length - 1];
        await im.decode();
        const c = document.createElement('canvas');
        c.width = im.naturalWidth; c.height = im.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(im, 0, 0);
        return Array.from(g.getImageData(0, 0, c.width, c.height).data);
    }""")
    shown = np.asarray(shown, np.uint8).reshape(343, 512, 4)
    back = inside(~fg)
    assert set(np.unique(shown[..., 0][back])) <= {204, 255}, "no checkerboard where the bird's photo is transparent"
    # the photo's download is the transparent PNG above (bird_segmented.png), not the slider's own
    # button, which would save the picture shown, checkerboard included, as image.png
    labels = page.evaluate("() => [...document.querySelectorAll('#result-photo button, #result-photo a')]"
                           ".map(b => (b.getAttribute('aria-label') || '') + (b.title || ''))")
    assert not [x for x in labels if "download" in x.lower()], labels
    assert "bird_segmented" in page.inner_text("#download")
    page.screenshot(path=str(artifacts / "browser_remove_photo.png"), full_page=True)


def test_replace_background_photo_with_a_colour_then_an_image(page, server, shared_images, tmp_path, artifacts):
    bird = shared_images / "bird.bmp"
    _bird_with(page, bird, "replace-background")
    assert page.locator("#background-image").is_visible() and not page.locator("#blur").is_visible()
    page.locator("#background-colour button.dialog-button").click()
    page.locator("#background-colour input[type=text]").fill("#ff0000")
    page.keyboard.press("Enter")
    page.locator("#settings").get_by_text("Output", exact=True).click()  # closes the picker
    _run(page, "#result-photo img")
    files = _downloads(page, server, tmp_path / "red")
    fg = read_zip(files[".zip"])[0][0] == PASCAL_BIRD
    with Image.open(files[".png"]) as im:
        out = np.asarray(im)
    assert (out[inside(~fg)] == (255, 0, 0)).all(), "the background is not the chosen colour"
    assert np.array_equal(out[inside(fg)], load_image(bird)[inside(fg)])
    # an uploaded background image replaces the colour
    blue = tmp_path / "blue.png"
    Image.new("RGB", (300, 200), (0, 0, 255)).save(blue)
    first = page.locator("#download a").first.get_attribute("href")
    page.locator("#background-image input[type=file]").set_input_files(str(blue))
    page.locator("#background-image img").wait_for()
    page.click("#run")
    page.wait_for_function("h => { const a = document.querySelector('#download a'); return a && a.href != h; }",
                           arg=first, timeout=RUN_TIMEOUT_MS)
    with Image.open(_downloads(page, server, tmp_path / "blue")[".png"]) as im:
        out = np.asarray(im)
    assert (out[inside(~fg)] == (0, 0, 255)).all(), "the background is not the uploaded image"
    page.screenshot(path=str(artifacts / "browser_replace_photo.png"), full_page=True)


# -- videos -------------------------------------------------------------------------------------------
def _progress_displays(page) -> int:
    """Progress bars and texts Gradio shows now (one per output it tracks)."""
    return page.evaluate("() => [...document.querySelectorAll('.progress-text, .meta-text-center, .meta-text')]"
                         ".filter(e => e.offsetParent !== null && e.textContent.trim()).length")


def test_blur_background_video_timeline_and_labels(page, server, person_clip, autoseg, tmp_path, artifacts):
    _choose_effect(page, "blur-background")
    _upload(page, person_clip)
    page.click("#run")
    seen = []
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline and not page.locator("#download a").count():
        seen.append(_progress_displays(page))
        time.sleep(0.2)
    # The first sample can come before Run's first update, which hides the (photo) slider: until
    # then Gradio shows its progress on both outputs it may fill (app.py: show_progress_on).
    assert max(seen[1:]) == 1, f"progress displays during the run: {seen}"
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.src.includes('person_segmented'); }")
    files = _downloads(page, server, tmp_path)
    assert set(files) == {".mp4", ".zip", ".json"}, files
    segment_video(autoseg, person_clip, tmp_path / "lib.mp4",
                  VideoOptions(draw=DrawOptions(mode="blur-background")), labels_out=tmp_path / "lib.npz")
    expected = np.load(tmp_path / "lib.npz")["labels"]
    _check_labels(files, expected)
    src, out = np.stack(decode_rgb(person_clip)), np.stack(decode_rgb(files[".mp4"]))
    assert out.shape == src.shape == (31, 432, 768, 3)
    person = expected == autoseg.labels.index("person")
    assert person.mean(axis=(1, 2)).max() > 0.02, "no person in the clip"
    fg, back = np.stack([inside(m) for m in person]), np.stack([inside(~m) for m in person])
    # H.264 both ways: the person is the source's within the codec's error; the rest lost its texture
    diff = np.abs(out.astype(int) - src.astype(int))
    assert diff[fg].mean() < 3, diff[fg].mean()
    assert np.mean([detail(o, b) for o, b in zip(out, back)]) < 0.5 * np.mean(
        [detail(s, b) for s, b in zip(src, back)])
    # the timeline: one line per class of the legend (an effect's legend: its foreground), in the
    # class's colour, one point per frame
    assert list(_legend(page)) == ["person"]
    page.locator("#timeline").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('#timeline g.mark-line path').length")
    lines = page.evaluate("() => [...document.querySelectorAll('#timeline g.mark-line path')]"
                          ".map(p => [p.getAttribute('stroke'), p.getAttribute('d').split('L').length])")
    colour = "#%02x%02x%02x" % tuple(autoseg.palette[autoseg.labels.index("person")])
    assert lines == [[colour, 31]], lines
    page.screenshot(path=str(artifacts / "browser_blur_video.png"), full_page=True)


def test_remove_background_video_is_a_transparent_webm(page, server, person_clip, autoseg, tmp_path, artifacts):
    _choose_effect(page, "remove-background")
    _upload(page, person_clip)
    _run(page, "#result-video video")
    # the page shows an H.264 preview over a checkerboard (every engine plays it); the download is the WebM
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.src.includes('person_segmented_preview.mp4'); }")
    files = _downloads(page, server, tmp_path)
    assert set(files) == {".webm", ".zip", ".json"}, files
    maps, _ = read_zip(files[".zip"])
    out = np.stack(decode_rgba_webm(files[".webm"]))
    src = np.stack(decode_rgb(person_clip))
    assert out.shape[:3] == src.shape[:3]
    person = maps == autoseg.labels.index("person")
    fg, back = np.stack([inside(m) for m in person]), np.stack([inside(~m) for m in person])
    # the cut-out is the person matte (selfie models + Autoseg's score), not Autoseg's class map:
    # opaque inside the map's person, transparent far from it
    assert (out[..., 3][back] < 8).mean() > 0.99 and (out[..., 3][fg] > 247).mean() > 0.95
    assert np.abs(out[..., :3].astype(int) - src.astype(int))[out[..., 3] > 247].mean() < 4
    # Where the room was, the player shows the checkerboard (light and dark squares), not black.
    f = int(np.argmax(person.mean(axis=(1, 2))))
    free = cv2.erode(back[f].astype(np.uint8), np.ones((33, 33), np.uint8)).astype(bool)  # 16 px clear around
    ys, xs = np.nonzero(free)
    assert len(ys), "no background area in the frame"
    check_checkerboard(page, (f + 0.5) / 10, int(xs[len(xs) // 2]) - 16, int(ys[len(ys) // 2]) - 16, (768, 432))
    page.locator("#result-video").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "browser_remove_video.png"), full_page=True)


# -- layout ---------------------------------------------------------------------------------------------
def test_phone_layout_puts_the_drop_zone_first(browser, server, artifacts):  # noqa: F811
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    open_app(pg, server.url)
    boxes = pg.evaluate("() => Object.fromEntries(['upload', 'run', 'settings', 'model'].map(id => "
                        "[id, document.querySelector('#' + id).getBoundingClientRect().toJSON()]))")
    pg.screenshot(path=str(artifacts / "browser_phone.png"))
    pg.screenshot(path=str(artifacts / "browser_phone_full.png"), full_page=True)
    ctx.close()
    assert boxes["upload"]["top"] < PHONE["height"] and boxes["upload"]["bottom"] <= PHONE["height"], boxes
    assert boxes["run"]["bottom"] <= PHONE["height"], boxes  # drop, then Run, without scrolling
    assert boxes["upload"]["top"] < boxes["settings"]["top"], boxes
    assert boxes["upload"]["width"] <= PHONE["width"], boxes


def test_desktop_layout_has_the_settings_on_the_right(page, artifacts):
    up = page.locator("#upload").bounding_box()
    settings = page.locator("#settings").bounding_box()
    assert settings["x"] > up["x"] + up["width"] - 1 and settings["y"] < up["y"] + up["height"], (up, settings)
    page.screenshot(path=str(artifacts / "browser_desktop.png"))
