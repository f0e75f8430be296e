"""What the page shows for a result, and the API's legend: all of the app's HTML and CSS lives here.

* ``PAGE_CSS``: the page's own styles (legend, the checkerboard behind transparent results).
* ``legend_html``: the classes present, with colour and share of pixels.
* ``timeline_plot``: each class's share of the frame over a video's time, for the page's line chart.
* ``on_checkerboard``: a transparent picture over a checkerboard, as the page shows it.
* ``stats_markdown``: one short paragraph of what a photo or video job did.
* ``legend_json``: the legend as the API returns it.
* ``no_result`` / ``status_html`` / ``error_html``: the empty result area of a new job, and the
  page's message under Run (nothing, "Stopped", or a failure in plain words with its technical
  cause folded away in a ``<details>``).
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from segmentation.draw import LegendItem
from segmentation.exports import Timeline

from .jobs import PhotoStats, VideoStats
from .messages import plain
from .previews import CHECKER_SQUARE, over_checkerboard

# A transparent result (remove-background) shows the usual grey checkerboard where it is see-through.
_CHECKER = ("background-color: #fff; background-image: linear-gradient(45deg, #ccc 25%, transparent 25%), "
            "linear-gradient(-45deg, #ccc 25%, transparent 25%), linear-gradient(45deg, transparent 75%, #ccc 75%), "
            "linear-gradient(-45deg, transparent 75%, #ccc 75%); background-size: 16px 16px; "
            "background-position: 0 0, 0 8px, 8px -8px, -8px 0;")

# WCAG AA contrast (4.5:1 for text) on the light theme, over Gradio's defaults: help texts, "- or -"
# and the footer were #bbbbc2 on white (1.9:1), the selected tab and Run orange #f97316 (2.8:1).
# ``html:root`` outranks the theme's ``:root`` (Gradio scopes other selectors to its container); of
# the dark theme (``:root .dark``, the body) only Run needs it (white on #ea580c: 3.6:1).
_CONTRAST = """
html:root {
  --body-text-color-subdued: #5f5f6b;      /* 6.3:1 on white */
  --block-info-text-color: #5f5f6b;
  --color-accent: #c2410c;                 /* orange-700: 5.2:1 with white */
  --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412;
  --button-primary-border-color: #c2410c;
  --button-primary-text-color: #ffffff;
}
html:root .dark {
  --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412;
}
"""

PAGE_CSS = _CONTRAST + f"""
.seg-legend-title {{ font-weight: 600; margin: 4px 0; }}
.seg-legend {{ list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }}
.seg-legend-item {{ display: flex; align-items: center; gap: 6px; min-width: 160px; }}
.seg-swatch {{ display: inline-block; width: 16px; height: 16px; border: 1px solid #0004; border-radius: 3px; }}
.seg-name {{ flex: 1; }}
.seg-share {{ font-variant-numeric: tabular-nums; opacity: 0.8; }}
#result-video video {{ {_CHECKER} }}
.seg-status {{ border-radius: 6px; padding: 8px 12px; margin: 4px 0; }}
.seg-status-error {{ background: #fde8e8; color: #8a1c1c; border: 1px solid #f5b5b5; }}
.seg-status-stopped {{ background: #eef0f3; color: #333; border: 1px solid #ccd; }}
.seg-status details {{ margin-top: 4px; font-size: 0.85em; opacity: 0.85; }}
""" + """
/* A dropdown's text stops short of its arrow (Gradio 6.31 lets a long model name run under it) */
.secondary-wrap:has(> .icon-wrap) > input[role="combobox"] { padding-right: 24px; text-overflow: ellipsis; }
/* The live tab. The webcam's Start/Stop button goes under the picture, not over it; the segmented
   picture is as large as the screen allows (the whole width on a phone, where the webcam and it
   stack, and never taller than the screen); no per-event run time ("0.3s") over the status. */
#live-input .button-wrap { position: static; transform: none; margin: 8px auto 0; width: fit-content; }
#live-input .wrap:has(> video), #live-input .wrap:has(> .button-wrap) { height: auto; }
#live-output img.seg-live { display: block; max-height: 85vh; object-fit: contain; }
#live-stats .progress-text, #live-stats .meta-text, #live-stats .meta-text-center, #live-stats .eta-bar,
#live-output .progress-text, #live-output .meta-text, #live-output .meta-text-center, #live-output .eta-bar
  { display: none !important; }
@media (max-width: 640px) {
  #live-row { flex-direction: column; }
  #live-row > * { width: 100%; min-width: 0; flex: none; }
}
"""


def on_checkerboard(rgba: np.ndarray, square: int = CHECKER_SQUARE) -> np.ndarray:
    """An RGBA picture over a white and light-grey checkerboard (RGB), to show where it is transparent.
    An RGB picture is returned as it is."""
    from .previews import checkerboard

    if rgba.ndim != 3 or rgba.shape[2] != 4:
        return rgba
    return over_checkerboard(rgba, checkerboard(rgba.shape[0], rgba.shape[1], square))


def timeline_plot(timeline: Timeline, legend: Sequence[LegendItem], max_classes: int = 8,
                  max_points: int = 500, min_share: float = 0.001) -> dict:
    """The page's line chart of a video (``gr.LinePlot`` properties): the share of the frame (%) of
    the legend's largest classes over the video's time, in the classes' own colours.

    ``value`` is a long table (``time`` in s, ``share`` in %, ``class``) of at most ``max_classes``
    classes (those over ``min_share`` of all pixels, largest first) and ``max_points`` times: a
    longer video is averaged over equal runs of frames. The y axis starts at 0."""
    import pandas as pd

    items = [it for it in legend if it.share >= min_share][:max_classes]
    n = len(timeline)
    if not items or not n:
        return {"value": pd.DataFrame({"time": [], "share": [], "class": []}), "visible": False}
    shares = timeline.shares([it.id for it in items]).astype(np.float64) * 100
    times = np.asarray(timeline.times, dtype=np.float64)
    if n > max_points:
        starts = (np.arange(max_points) * n) // max_points
        counts = np.diff(np.append(starts, n))[:, None]
        shares = np.add.reduceat(shares, starts, axis=0) / counts
        times = np.add.reduceat(times, starts) / counts[:, 0]
    frame = pd.DataFrame({
        "time": np.tile(np.round(times, 3), len(items)),
        "share": np.round(shares.T.ravel(), 2),
        "class": np.repeat([it.name for it in items], len(times)),
    })
    top = min(100, 5 * int(np.ceil(max(1.0, shares.max() * 1.1) / 5)))  # a round top above the largest share
    return {"value": frame, "color_map": {it.name: it.hex for it in items}, "y_lim": [0, top], "visible": True}


def legend_json(items: Sequence[LegendItem]) -> list[dict]:
    return [{"id": it.id, "name": it.name, "color": it.hex, "share": round(it.share, 6)} for it in items]


def format_share(share: float) -> str:
    """A pixel share as a percentage for people: one decimal, tiny shares as "<0.1%"."""
    pct = share * 100
    return "<0.1%" if 0 < pct < 0.05 else f"{pct:.1f}%"


def legend_html(items: Sequence[LegendItem], min_share: float = 0.0005,
                title: str = "Classes present") -> str:
    """Classes present as HTML rows: colour swatch, name, share of pixels (largest first)."""
    rows = []
    hidden = 0.0
    for it in items:
        if it.share < min_share:
            hidden += it.share
            continue
        rows.append(
            f'<li class="seg-legend-item" data-class="{html.escape(it.name)}">'
            f'<span class="seg-swatch" style="background:{it.hex}"></span>'
            f'<span class="seg-name">{html.escape(it.name)}</span>'
            f'<span class="seg-share">{html.escape(format_share(it.share))}</span></li>'
        )
    if not rows:
        return '<div class="seg-legend-empty">No pixels of the chosen classes.</div>'
    if hidden > 0:
        rows.append(f'<li class="seg-legend-item seg-legend-rest"><span class="seg-swatch"></span>'
                    f'<span class="seg-name">others (&lt;0.05% each)</span>'
                    f'<span class="seg-share">{html.escape(format_share(hidden))}</span></li>')
    head = f'<div class="seg-legend-title">{html.escape(title)}</div>' if title else ""
    return head + '<ul class="seg-legend">' + "".join(rows) + "</ul>"


def stats_markdown(stats: PhotoStats | VideoStats) -> str:
    """One short paragraph of what happened, for the page."""
    if isinstance(stats, VideoStats):
        text = (f"**{stats.frames} frames** ({stats.width}×{stats.height}) · "
                f"{stats.source_fps:g} fps → {stats.output_fps:g} fps · "
                f"**{stats.processing_fps:.1f} frames/s** processing "
                f"({stats.realtime_factor:.2f}× real time, {stats.seconds:.1f} s) · "
                f"{stats.model_runs} model runs · model `{stats.model}` · speed **{stats.speed}**")
        if stats.trimmed_to_seconds:
            text += f" · first {stats.trimmed_to_seconds:g} s only (duration limit)"
        if stats.warning:
            text += f" · **{stats.warning[0].upper()}{stats.warning[1:]}**"
        return text
    text = (f"Photo {stats.width}×{stats.height} · segmented in {stats.seconds * 1000:.0f} ms · "
            f"model `{stats.model}`")
    if stats.downscaled_from:
        w, h = stats.downscaled_from
        text += f" · downscaled from {w}×{h} (pixel limit)"
    return text


def live_image_html(rgb: np.ndarray, quality: int = 80) -> str:
    """One live frame as an <img> with the JPEG inline: it arrives with the event, no second request.

    A gr.Image output is saved to a file and fetched by the browser afterwards,
    one more round trip per frame; inline, a 640x480 frame is ~50 kB of base64.
    """
    import base64

    import cv2

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    src = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")
    return f'<img class="seg-live" src="{src}" alt="Segmented live" style="width:100%;height:auto">'


def no_result() -> tuple:
    """The result area of a job that has just started, or failed: the (empty) photo slider, which
    carries the progress display, and nothing else; one value per output of the page's Run."""
    import gradio as gr

    hidden = gr.update(value=None, visible=False)
    return (gr.update(value=None, visible=True), hidden, hidden, "", hidden, "", hidden)


def status_html(text: str = "", kind: str = "stopped") -> str:
    """The page's message under Run: empty, or one line (``kind``: stopped, error)."""
    if not text:
        return ""
    return f'<div class="seg-status seg-status-{kind}" role="status">{html.escape(text)}</div>'


def error_html(message: str) -> str:
    """A failed job on the page: the reason in plain words (``messages.plain``), the technical
    sentence behind it folded away; it stays until the next action."""
    text, detail = plain(message)
    more = (f"<details><summary>Technical details</summary>{html.escape(detail)}</details>"
            if detail else "")
    return (f'<div class="seg-status seg-status-error" role="alert"><strong>{html.escape(text)}</strong>'
            f"{more}</div>")
