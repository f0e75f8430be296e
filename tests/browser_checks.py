"""What the browser tests check in every engine: Chromium (Playwright) and WebKit (Selenium).

A *page* here is anything with ``evaluate(js, arg)`` and ``wait_for_function(js, arg=..., timeout=...)``
as Playwright's ``Page`` has them (``test_browser_webkit.WebKitPage`` gives a Selenium driver the
same two); ``js`` is a function expression, ``async`` or not, taking at most one argument. The
helpers below use only these two, so each check is written once and run in both engines:

* ``open_app`` / ``PAGE_READY``: the page loaded and its own script run;
* ``drop`` / ``run_and_wait`` / ``show_example``: a file on the drop zone, Run, an example's row;
* ``check_players`` / ``check_plays_to_end`` / ``check_slider``: both players load (readyState >= 2,
  a finite duration > 0), the result plays to its end, the photo slider shows both sides;
* ``check_checkerboard``: a remove-background video shows the checkerboard where it is transparent;
* ``clips`` / ``person_clip``: generated clips in each container and codec a visitor may drop, and
  a short real clip with a person in it;
* ``downloads`` / ``transparent_spot``: the files the page offers, and a spot of a transparent
  result that is see-through with room around it.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import shutil
import subprocess
import tarfile
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
from media import make_clip

from webapp.examples import EXAMPLES

RUN_TIMEOUT_MS = 150_000
VIDEO_EXAMPLES = [ex for ex in EXAMPLES if not ex.name.endswith((".bmp", ".png", ".jpg"))]
PHOTO_EXAMPLES = [ex for ex in EXAMPLES if ex not in VIDEO_EXAMPLES]

PLAYERS_READY = """async () => {
    const out = [];
    for (const id of ['original-video', 'result-video']) {
        const v = document.querySelector(`#${id} video`);
        if (!v) { out.push(null); continue; }
        v.muted = true;
        for (let i = 0; i < 100 && v.readyState < 2 && !v.error; i++) await new Promise(r => setTimeout(r, 100));
        out.push({src: v.src, ready: v.readyState, duration: v.duration, error: v.error && v.error.code});
    }
    return out;
}"""

# The result from half a second before its end: it must reach the end ('ended'), not stall.
PLAYS_TO_END = """async () => {
    const v = document.querySelector('#result-video video');
    v.muted = true;
    for (let i = 0; i < 100 && v.readyState < 2 && !v.error; i++) await new Promise(r => setTimeout(r, 100));
    const ended = new Promise(r => v.addEventListener('ended', () => r(true), {once: true}));
    v.currentTime = Math.max(0, v.duration - 0.5);
    // play() resolves once playing starts; bounded, so a player that never starts fails the check
    // with its state instead of holding the script (and the WebDriver command) open
    try { if (!await Promise.race([v.play().then(() => true), new Promise(r => setTimeout(() => r(false), 15000))]))
        return {error: 'play() did not start within 15 s', time: v.currentTime, ready: v.readyState}; }
    catch (e) { return {error: String(e)}; }
    const done = await Promise.race([ended, new Promise(r => setTimeout(() => r(false), 15000))]);
    // WebKitGTK's GStreamer player now and then holds the last frame without firing 'ended' (seen
    // once in ~50 runs: 39.82 s of 39.855): having played on to the last frame is the end too
    const last = v.duration - v.currentTime < 0.1;
    return {ended: (done && v.ended) || last, time: v.currentTime, duration: v.duration, error: v.error && v.error.code};
}"""

SLIDER_SIDES = """async () => {
    const imgs = () => [...document.querySelectorAll('#result-photo img')];
    for (let i = 0; i < 100 && !(imgs().length >= 2 && imgs().every(im => im.complete && im.naturalWidth)); i++)
        await new Promise(r => setTimeout(r, 100));
    return imgs().map(im => {
        const b = im.getBoundingClientRect();
        return {w: im.naturalWidth, h: im.naturalHeight, shown: b.width > 0 && b.height > 0, src: im.src};
    });
}"""

# One 32x32 patch of the result video at time t (canvas read of the frame the player shows).
VIDEO_PATCH = """async (p) => {
    const v = document.querySelector('#result-video video');
    v.muted = true;
    for (let i = 0; i < 100 && v.readyState < 2; i++) await new Promise(r => setTimeout(r, 100));
    const seeked = new Promise(r => v.addEventListener('seeked', r, {once: true}));
    v.currentTime = p.t;
    await seeked;
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    return [Array.from(g.getImageData(p.x, p.y, 32, 32).data), v.videoWidth, v.videoHeight];
}"""


# -- acting on the page -----------------------------------------------------------------------------
# The page is usable: Run is there and the page's own script (gradio_compat.PAGE_JS) has run; before
# that a key or a drop meets Gradio's unpatched handlers (a test that raced it failed in CI).
PAGE_READY = ("() => !!document.querySelector('#run')"
              " && document.documentElement.dataset.pageScript === 'ready'")


def open_app(page, url: str) -> None:
    """Open the app at ``url`` in a Playwright page and wait until it is usable (``PAGE_READY``)."""
    page.goto(url)
    page.wait_for_function(PAGE_READY)


def drop(page, path: Path) -> None:
    """Drop ``path`` on the drop zone as a visitor drags a file onto it (filled or not)."""
    page.evaluate("""([name, b64, type]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type}));  // the type a browser gives a dragged file
        const zone = document.querySelector('#upload');
        // the empty zone's drop target, or (filled) its table: the page's script replaces the file
        const target = zone.querySelector('.upload-container') || zone.querySelector('table') || zone;
        for (const type of ['dragenter', 'dragover', 'drop'])
            target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
    }""", [path.name, base64.b64encode(path.read_bytes()).decode("ascii"),
           mimetypes.guess_type(path.name)[0] or "application/octet-stream"])
    page.wait_for_function("n => { const t = document.querySelector('#upload').innerText;"
                           " return t.includes(n) && t.includes('⇣'); }", arg=path.stem)  # uploaded


def press_run(page) -> None:
    """Press Run, and from then on set ``window.__segCleared`` once the result area has been
    cleared (Run clears it first), so a wait can tell this run's result from the one shown before.
    A MutationObserver sees the clearing even when it is shorter than a poll (a small clip in
    WebKit, polled every 0.2 s over WebDriver, can clear and fill again in between)."""
    page.evaluate("""() => {
        const cleared = () => !document.querySelector('#result-video video')
            && !document.querySelector('#legend .seg-legend-item');
        window.__segCleared = cleared();
        if (!window.__segCleared) {
            const seen = new MutationObserver(() => {
                if (cleared()) { window.__segCleared = true; seen.disconnect(); } });
            seen.observe(document.body, {childList: true, subtree: true});
        }
        document.querySelector('#run').click();
    }""")


def run_and_wait(page, stem: str, kind: str = "video") -> None:
    """Press Run and wait for this run's result (a video, or the photo slider's result), not one
    shown before: Run first clears the result area. Fails with the page's message on a failure."""
    press_run(page)
    page.wait_for_function("([stem, kind]) => { const v = document.querySelector('#result-video video');"
                           " const done = kind === 'video' ? !!v && v.src.includes(stem + '_segmented')"
                           " : !!document.querySelector('#legend .seg-legend-item');"
                           " return window.__segCleared && (done"
                           " || !!document.querySelector('#job-status .seg-status-error')); }",
                           arg=[stem, kind], timeout=RUN_TIMEOUT_MS)
    error = page.evaluate("() => (document.querySelector('#job-status .seg-status-error') || {}).innerText")
    assert not error, error


def show_example(page, title: str, stem: str, photo: bool) -> None:
    """Click an example's row and wait for its result (cached: see conftest's ``example_results``)."""
    # the examples' rows fill in after the page is ready: wait for the row, then click it
    page.wait_for_function("t => { const row = [...document.querySelectorAll('button, [role=button], td, div')]"
                           ".find(e => e.children.length === 0 && e.textContent.trim() === t);"
                           " if (row) row.click(); return !!row; }", arg=title)
    if photo:
        page.wait_for_function("() => document.querySelectorAll('#result-photo img').length >= 2"
                               " && document.querySelectorAll('#legend .seg-legend-item').length",
                               timeout=RUN_TIMEOUT_MS)
    else:
        page.wait_for_function("s => { const v = document.querySelector('#result-video video');"
                               " return v && v.src.includes(s + '_segmented'); }", arg=stem, timeout=RUN_TIMEOUT_MS)


# -- checks ------------------------------------------------------------------------------------------
def check_players(page, stem: str, copied: bool | None = None, original: bool = True) -> None:
    """The players shown load: readyState >= 2, no error, a finite duration > 0. ``original``: the
    original's player is shown too (not in side-by-side); ``copied``: it plays an H.264 copy
    (``NAME_original.mp4``) rather than the file itself (``None``: either)."""
    shown_original, result = page.evaluate(PLAYERS_READY)
    players = [result] + ([shown_original] if original else [])
    for p in players:
        assert p and p["ready"] >= 2 and p["error"] is None, (stem, shown_original, result)
        assert p["duration"] and 0 < p["duration"] < 1e9, (stem, p)
    if original and copied is not None:
        assert (f"{stem}_original.mp4" in shown_original["src"]) == copied, (stem, shown_original["src"])


def check_plays_to_end(page, stem: str) -> None:
    state = page.evaluate(PLAYS_TO_END)
    assert state.get("ended") and state.get("error") is None, (stem, state)


def check_slider(page, size: tuple[int, int] | None = None) -> list[dict]:
    """The photo slider shows both sides (the original and the result, each loaded and laid out)."""
    sides = page.evaluate(SLIDER_SIDES)
    assert len(sides) >= 2 and all(s["w"] and s["h"] and s["shown"] for s in sides), sides
    if size:
        assert all((s["w"], s["h"]) == size for s in sides), sides
    return sides


def check_checkerboard(page, t: float, x: int, y: int, size: tuple[int, int]) -> np.ndarray:
    """The 32x32 patch of the result video at (x, y), time ``t``, is light with light and dark
    squares (the checkerboard), not black; returns it (RGB)."""
    shown = page.evaluate(VIDEO_PATCH, {"t": t, "x": x, "y": y})
    assert tuple(shown[1:]) == size, shown[1:]
    patch = np.asarray(shown[0], np.uint8).reshape(32, 32, 4)[..., :3].astype(int)
    assert patch.min() > 150, f"the transparent area is dark (min {patch.min()}), not a checkerboard"
    grey = patch.mean(axis=2)
    assert grey.max() - grey.min() > 30, "no light and dark squares where the picture is transparent"
    return patch


# -- media ----------------------------------------------------------------------------------------------
def clips(folder: Path) -> list[tuple[Path, bool]]:
    """Small clips in each container and codec a visitor may drop, each with whether the page
    shows an H.264 copy of it as the original (``webapp.previews``) rather than the file itself."""
    small = dict(frames=8, size=(96, 64))
    return [
        (make_clip(folder / "anim.gif", codec="gif", pix_fmt="rgb8", rate=Fraction(10),
                   time_base=Fraction(1, 100), **small), True),
        (make_clip(folder / "mpeg4.avi", codec="mpeg4", options={}, **small), True),  # MPEG-4 Part 2
        (make_clip(folder / "h264.mkv", audio="aac", **small), True),  # Matroska
        (make_clip(folder / "tenbit.mp4", pix_fmt="yuv420p10le", **small), True),  # 10-bit H.264
        (make_clip(folder / "full.mp4", pix_fmt="yuv444p", **small), True),  # 4:4:4 H.264
        (make_clip(folder / "late.mp4", pts=[750 + i for i in range(8)], **small), True),  # starts at 30 s
        (make_clip(folder / "plain.mp4", **small), False),  # H.264 yuv420p MP4: shown as it is
    ]


def person_clip(path: Path, start: int, frames: int, shared_videos: Path, size=(160, 120)) -> Path:
    """``frames`` frames of the person video from ``start`` (a person walks through a room from
    frame 300), at ``size`` and 10 fps (H.264 MP4)."""
    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as src, av.open(str(path), "w") as dst:
        s = dst.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt, s.options = *size, "yuv420p", {"preset": "ultrafast"}
        for i, f in enumerate(src.decode(video=0)):
            if i >= start + frames:
                break
            if i >= start:
                dst.mux(s.encode(f.reformat(width=size[0], height=size[1], format="yuv420p")))
        dst.mux(s.encode(None))
    return path


def downloads(page, folder: Path) -> dict[str, Path]:
    """The files offered in #download, fetched over HTTP as a visitor would: suffix -> local path."""
    links = page.evaluate("() => [...document.querySelectorAll('#download a')].map(a => a.href)")
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for href in links:
        r = httpx.get(href, timeout=30)
        assert r.status_code == 200, (href, r.status_code)
        path = folder / Path(href.split("?")[0]).name
        path.write_bytes(r.content)
        out["".join(Path(path.name).suffixes[-1:])] = path
    return out


def transparent_spot(alpha: np.ndarray, clear: int = 16) -> tuple[int, int] | None:
    """(x, y) of the top-left corner of a 32x32 patch of ``alpha`` (one frame's, or a photo's) that
    is see-through with ``clear`` px of see-through around it; None if there is none."""
    free = cv2.erode((alpha < 8).astype(np.uint8), np.ones((2 * clear + 1, 2 * clear + 1), np.uint8)).astype(bool)
    ys, xs = np.nonzero(free)
    if not len(ys):
        return None
    return int(xs[len(xs) // 2]) - 16, int(ys[len(ys) // 2]) - 16


# -- accessibility: axe-core, from the npm registry at test time ----------------------------------------
AXE_VERSION = "4"  # the npm range; the package is cached after the first run (AXE_CACHE)
AXE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "segmentation-tests" / "axe-core"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_source() -> str:
    """axe-core's ``axe.min.js`` (MPL-2.0), fetched with ``npm pack axe-core@4`` into ``AXE_CACHE``
    once; None when npm is missing or the registry cannot be reached (the caller skips, or fails
    under CI=true)."""
    found = sorted(AXE_CACHE.glob("*/axe.min.js"))
    if found:
        return found[-1].read_text()
    npm = shutil.which("npm")
    if not npm:
        return None
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=AXE_CACHE) as tmp:
        r = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--silent"], cwd=tmp, capture_output=True,
                           text=True, timeout=180)
        tgz = sorted(Path(tmp).glob("axe-core-*.tgz"))
        if r.returncode or not tgz:
            return None
        with tarfile.open(tgz[-1]) as t:
            js = t.extractfile("package/axe.min.js").read()
        version = tgz[-1].name[len("axe-core-"):-len(".tgz")]
        (AXE_CACHE / version).mkdir(exist_ok=True)
        (AXE_CACHE / version / "axe.min.js").write_bytes(js)
    return js.decode()


AXE_RUN = """async (tags) => {
    const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return r.violations.map(v => ({id: v.id, impact: v.impact, tags: v.tags, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
}"""


def axe_violations(page, source: str, tags=AXE_TAGS) -> list[dict]:
    """Run axe-core in the page (``source``: ``axe_source()``); its violations of ``tags``."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate("src => { const s = document.createElement('script'); s.textContent = src;"
                      " document.head.appendChild(s); }", source)
    return page.evaluate(AXE_RUN, list(tags))
