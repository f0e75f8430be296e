"""The page's jobs in a real headless Chromium: every result is the job's own, a failure stays on the
page in plain words, Stop says so, the original always plays, and a transparent result shows its
checkerboard in every engine (an H.264 preview). Fixtures (server, browser, page) come from
``test_browser``; screenshots land in ``artifacts/``.
"""

from __future__ import annotations

import re

import httpx
import pytest
from browser_checks import check_players, check_plays_to_end, clips, drop, person_clip, run_and_wait
from test_browser import RUN_TIMEOUT_MS, _legend, _upload, browser, camera_clip, page, server  # noqa: F401

pw = pytest.importorskip("playwright.sync_api")


def _visible_texts(page, text: str) -> int:
    """Visible elements whose own text is exactly ``text`` (e.g. Gradio's "Error" badge)."""
    return page.evaluate("t => [...document.querySelectorAll('body *')].filter(e => e.offsetParent !== null"
                         " && e.children.length === 0 && e.textContent.trim() === t).length", text)


def _chart(page) -> dict:
    page.locator("#timeline").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('#timeline g.mark-line path').length")
    return page.evaluate("""() => ({
        lines: [...document.querySelectorAll('#timeline g.mark-line path')]
            .map(p => [p.getAttribute('stroke'), p.getAttribute('d').split('L').length]),
        x: [...document.querySelectorAll('#timeline g.role-axis')]
            .filter(g => (g.getAttribute('aria-label') || '').startsWith('X-axis'))
            .flatMap(g => [...g.querySelectorAll('g.role-axis-label text')].map(t => t.textContent)),
        swatches: [...document.querySelectorAll('#legend .seg-swatch')].map(s => s.style.background),
    })""")


def _hex(css: str) -> str:
    m = re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", css.strip())
    return "#%02x%02x%02x" % tuple(int(x) for x in m.groups()) if m else css


def test_second_video_shows_its_own_chart_legend_and_downloads(page, shared_videos, tmp_path, artifacts):
    first = person_clip(tmp_path / "first.mp4", 300, 20, shared_videos)  # 2 s, a person in the room
    second = person_clip(tmp_path / "second.mp4", 0, 50, shared_videos)  # 5 s, the empty room
    assert page.locator("#stop").is_disabled()  # no job of this page runs
    _upload(page, first)
    run_and_wait(page, "first")
    chart = _chart(page)
    assert {n for _, n in chart["lines"]} == {20}, chart
    drop(page, second)  # on the filled drop zone: it replaces the first file
    run_and_wait(page, "second")
    chart = _chart(page)
    # the chart's data and axis are the second video's: 50 points per line, time up to 5 s, in the
    # colours of its own legend
    assert chart["lines"] and {n for _, n in chart["lines"]} == {50}, chart
    assert max(float(t) for t in chart["x"]) >= 4.8, chart["x"]
    assert {c for c, _ in chart["lines"]} <= {_hex(s) for s in chart["swatches"]}, chart
    assert "first" not in page.inner_text("#download") and "second_segmented" in page.inner_text("#download")
    assert "50 frames" in page.inner_text("#stats")
    assert page.locator("#stop").is_disabled()
    page.screenshot(path=str(artifacts / "browser_second_video.png"), full_page=True)


def test_failure_stays_on_the_page_in_plain_words(page, shared_videos, tmp_path, artifacts):
    good = person_clip(tmp_path / "good.mp4", 300, 10, shared_videos)
    bad = tmp_path / "notes.mp4"
    bad.write_text("a text file renamed .mp4\n" * 40)
    _upload(page, good)
    run_and_wait(page, "good")
    assert _legend(page)
    drop(page, bad)
    page.click("#run")
    status = page.locator("#job-status .seg-status-error")
    status.wait_for(timeout=RUN_TIMEOUT_MS)
    assert status.locator("strong").inner_text() == "This file is not a video we can read: it may be damaged."
    details = status.locator("details")
    assert not details.evaluate("d => d.open")  # the technical cause is there, folded away
    assert "FFmpeg" in details.inner_text() or "FFmpeg" in details.evaluate("d => d.textContent")
    # nothing of the previous job under it
    assert not page.locator("#legend .seg-legend-item").count()
    assert not page.locator("#download").is_visible() and not page.locator("#result-video").is_visible()
    assert not page.locator("#timeline").is_visible() and not page.inner_text("#stats").strip()
    page.wait_for_timeout(11_000)  # longer than a toast stays
    assert status.is_visible() and not _visible_texts(page, "Error")
    page.screenshot(path=str(artifacts / "browser_error.png"), full_page=True)
    drop(page, good)  # the next action: the message goes
    page.wait_for_function("() => !document.querySelector('#job-status .seg-status')")


def test_stop_says_stopped(page, shared_videos, artifacts):
    _upload(page, shared_videos / "car-detection.mp4")  # 377 frames: long enough to stop
    assert page.locator("#stop").is_disabled()
    page.click("#run")
    page.wait_for_function("() => !document.querySelector('#stop').disabled")
    page.wait_for_function("() => /Segmenting/.test(document.body.innerText)", timeout=RUN_TIMEOUT_MS)
    page.click("#stop")
    page.locator("#job-status .seg-status-stopped").wait_for()
    assert page.inner_text("#job-status").startswith("Stopped")
    assert page.locator("#stop").is_disabled()
    assert not page.locator("#download").is_visible() and not page.locator("#legend .seg-legend-item").count()
    page.wait_for_timeout(1000)  # the cancelled job's last status has arrived
    assert not _visible_texts(page, "Error"), "a bare Error badge after Stop"
    page.screenshot(path=str(artifacts / "browser_stopped.png"), full_page=True)


def test_the_original_always_plays(page, tmp_path, artifacts):
    page.get_by_label("mask").check()
    page.get_by_text("Classroom (video)").first.click()
    # the example's own (cached) result first, then a run of this page
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.src.includes('classroom_segmented'); }", timeout=RUN_TIMEOUT_MS)
    check_players(page, "classroom", copied=True)
    run_and_wait(page, "classroom")
    check_players(page, "classroom", copied=True)  # a GIF: the browser gets an H.264 copy
    page.screenshot(path=str(artifacts / "browser_gif_original.png"), full_page=True)
    for clip, copied in clips(tmp_path):  # the same clips as tests/browser/test_browser_webkit.py
        drop(page, clip)
        run_and_wait(page, clip.stem)
        check_players(page, clip.stem, copied=copied)
        check_plays_to_end(page, clip.stem)


def test_api_refuses_a_server_file_with_a_sentence(server):
    r = httpx.post(server.url + "gradio_api/call/segment_video", timeout=30,
                   json={"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                                  "autoseg-edgetpu-xs", "overlay", 0.5, "accurate", []]})
    event = r.json()["event_id"]
    text = httpx.get(f"{server.url}gradio_api/call/segment_video/{event}", timeout=60).text
    assert "event: error" in text and '"error": null' not in text, text
    assert "was not uploaded to this app" in text and "root:" not in text, text
