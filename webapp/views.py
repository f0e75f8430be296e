"""What the page shows for a result, and the API's legend: all of the app's HTML and CSS lives here.

* ``legend_html`` (styled by ``LEGEND_CSS``): the classes present, with colour and share of pixels.
* ``stats_markdown``: one short paragraph of what a photo or video job did.
* ``legend_json``: the legend as the API returns it.
"""

from __future__ import annotations

import html
from typing import Sequence

from segmentation.draw import LegendItem

from .jobs import PhotoStats, VideoStats

LEGEND_CSS = """
.seg-legend-title { font-weight: 600; margin: 4px 0; }
.seg-legend { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.seg-legend-item { display: flex; align-items: center; gap: 6px; min-width: 160px; }
.seg-swatch { display: inline-block; width: 16px; height: 16px; border: 1px solid #0004; border-radius: 3px; }
.seg-name { flex: 1; }
.seg-share { font-variant-numeric: tabular-nums; opacity: 0.8; }
"""


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
        return text
    text = (f"Photo {stats.width}×{stats.height} · segmented in {stats.seconds * 1000:.0f} ms · "
            f"model `{stats.model}`")
    if stats.downscaled_from:
        w, h = stats.downscaled_from
        text += f" · downscaled from {w}×{h} (pixel limit)"
    return text
