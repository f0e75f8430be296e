"""Accessibility of the page in a real headless Chromium: an axe-core audit (WCAG 2 A/AA: contrast,
names, keyboard) at desktop and phone size, and keyboard use without traps.

axe-core comes from the npm registry at test time (``browser_checks.axe_source``, cached); without
npm the audit skips on a developer machine and fails under CI=true. Fixtures (server, browser, page)
come from ``test_browser``.
"""

from __future__ import annotations

import json
import os

import pytest
from browser_checks import axe_source, axe_violations, open_app, run_and_wait
from media import make_clip
from test_browser import browser, camera_clip, page, server  # noqa: F401

pw = pytest.importorskip("playwright.sync_api")

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def axe() -> str:
    source = axe_source()
    if source is None:
        msg = "axe-core is unavailable (npm missing or the registry unreachable)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return source


def _report(violations: list[dict]) -> str:
    return json.dumps([{k: v[k] for k in ("id", "help", "nodes")} for v in violations], indent=1)[:6000]


@pytest.mark.parametrize("size,scheme", [(DESKTOP, "light"), (PHONE, "light"), (DESKTOP, "dark")],
                         ids=["desktop", "phone", "desktop-dark"])
def test_no_axe_violations(browser, server, axe, size, scheme, artifacts):  # noqa: F811
    ctx = browser.new_context(viewport=size, is_mobile=size is PHONE, has_touch=size is PHONE, color_scheme=scheme)
    pg = ctx.new_page()
    open_app(pg, server.url)
    pg.wait_for_timeout(500)
    found = axe_violations(pg, axe)
    # ...and with an effect's settings shown (help texts under the sliders)
    pg.get_by_label("blur-background", exact=True).check()
    pg.locator("#feather").wait_for()
    found += [v for v in axe_violations(pg, axe) if v["id"] not in {f["id"] for f in found}]
    name = f"{'phone' if size is PHONE else 'desktop'}{'-dark' if scheme == 'dark' else ''}"
    (artifacts / f"axe_{name}.json").write_text(json.dumps(found, indent=1))
    ctx.close()
    assert not found, _report(found)


@pytest.mark.parametrize("elem_id", ["model", "classes"])
def test_tab_through_a_dropdown_leaves_it_closed(page, elem_id):
    """Tab out of the open model list (or the class filter's) moves on and closes it (it stayed
    open in Gradio 6.31: gradio_compat.KEYBOARD_JS)."""
    value = page.locator(f"#{elem_id} input").input_value()
    page.locator(f"#{elem_id} input").focus()
    page.keyboard.press("ArrowDown")  # opens the list
    page.get_by_role("option").first.wait_for()
    page.keyboard.press("Tab")
    page.wait_for_timeout(300)
    assert not page.get_by_role("option").count(), "the list stays open after Tab"
    assert not page.evaluate("id => document.getElementById(id).contains(document.activeElement)", elem_id)
    assert page.locator(f"#{elem_id} input").input_value() == value  # Tab chose nothing


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_dropdowns_text_stops_short_of_its_arrow(browser, server, size, artifacts):  # noqa: F811
    """The model's long name ends (with an ellipsis) before the dropdown's arrow, not under it."""
    ctx = browser.new_context(viewport=size)
    pg = ctx.new_page()
    open_app(pg, server.url)
    boxes = pg.evaluate("""() => [...document.querySelectorAll('.secondary-wrap')].filter(w =>
        w.querySelector(':scope > input[role=combobox]') && w.querySelector(':scope > .icon-wrap')).map(w => {
        const input = w.querySelector(':scope > input'), s = getComputedStyle(input);
        const text_right = input.getBoundingClientRect().right - parseFloat(s.paddingRight) - parseFloat(s.borderRightWidth);
        return {id: w.closest('[id]').id, text_right, arrow_left: w.querySelector(':scope > .icon-wrap').getBoundingClientRect().left,
                overflow: s.textOverflow}; })""")
    pg.locator("#model").screenshot(path=str(artifacts / f"model_dropdown_{size['width']}.png"))
    ctx.close()
    assert "model" in [b["id"] for b in boxes], boxes
    assert all(b["text_right"] <= b["arrow_left"] and b["overflow"] == "ellipsis" for b in boxes), boxes


def test_arrows_move_within_the_output_choices(page):
    page.get_by_label("overlay", exact=True).focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("() => [document.activeElement.type, document.activeElement.value,"
                            " document.querySelector('#mode').contains(document.activeElement)]")
    assert focused == ["radio", "mask", True], focused
    assert page.get_by_label("mask", exact=True).is_checked()
    page.keyboard.press("ArrowUp")
    assert page.get_by_label("overlay", exact=True).is_checked()


def test_focus_stays_on_the_drop_zone_after_choosing_a_file(page, tmp_path):
    clip = make_clip(tmp_path / "focus.mp4", frames=5, size=(96, 64))
    page.locator("#upload button, #upload .upload-container").first.focus()
    page.locator("#upload input[type=file]").set_input_files(str(clip))
    page.wait_for_function("() => document.querySelector('#upload').innerText.includes('focus')")
    page.wait_for_timeout(300)
    where = page.evaluate("() => [document.activeElement.tagName, document.activeElement.id,"
                          " document.querySelector('#upload').contains(document.activeElement)]")
    assert where[2], f"focus left the drop zone for {where}"


def test_a_video_result_is_labelled_and_passes_the_audit(page, axe, tmp_path):
    """With a video's result shown (players, legend, chart, downloads): no violations, and the chart
    is named by what it shows (Gradio 6.31 names it "Vega visualization")."""
    clip = make_clip(tmp_path / "chart.mp4", frames=10, size=(96, 64))
    page.locator("#upload input[type=file]").set_input_files(str(clip))
    run_and_wait(page, "chart")
    page.wait_for_function("() => document.querySelectorAll('#timeline g.mark-line path').length")
    name = page.locator("#timeline [role=graphics-document]").get_attribute("aria-label")
    assert name.startswith("Classes over time") and "share of the frame (%) against time (s)" in name, name
    found = axe_violations(page, axe)
    assert not found, _report(found)
