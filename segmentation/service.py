"""The app's service layer: what the web UI and its HTTP API do, without any UI.

``app.py`` only wires Gradio components to the functions here; everything
worth testing lives in this module:

* ``Limits``: upload size, video duration, pixels per frame, queue and
  concurrency, read from ``SEGMENTATION_*`` environment variables and checked
  once at start (a bad value is a clear error, not a silent default).
* ``check_model_id`` and friends: every user-supplied value is validated
  against the catalog and the drawing/speed options before anything runs. A
  model id is only ever looked up in the catalog (TFLite entries only), never
  treated as a path or handle, so ``"../../x.tflite"`` or ``"/etc/passwd"`` is
  refused with a sentence naming the valid ids.
* ``SegmenterCache``: one ``Segmenter`` per model id, loaded once, thread-safe.
* ``run_photo`` / ``run_video``: one job each, on top of
  ``pipeline.segment_image`` / ``pipeline.segment_video``; results carry the
  file to download, the legend and the stats the page shows.
* ``TempStore``: the app's own folder for job outputs, swept by age.
* ``LiveSession``: per-browser-session state of the live webcam mode.
* ``legend_html`` / ``stats_markdown``: what the page shows for a result.
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from . import catalog, draw
from .catalog import HUB, SAVED_MODEL, ModelEntry
from .draw import DrawOptions, LegendItem
from .errors import InputError, ModelError
from .images import as_rgb_array, displayed_size, fit_pixels, load_image
from .pipeline import SPEEDS
from .temporal import check_speed, frame_segmenter
from .segmenter import Segmenter, SegmenterOptions

log = logging.getLogger(__name__)

MODES = draw.MODES
UNSELECTABLE_FORMATS = (HUB, SAVED_MODEL)


# -- limits ---------------------------------------------------------------------------
def _env_number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False,
                minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}.") from None
    if not math.isfinite(value) or value <= minimum or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} must be {kind} above {minimum:g}, got {raw!r}.")
    return int(value) if integer else value


@dataclass(frozen=True)
class Limits:
    """Server-side limits. ``from_env`` reads the ``SEGMENTATION_*`` variables."""

    max_upload_mb: float = 200.0
    max_seconds: float = 120.0
    max_pixels: int = 3840 * 2160
    concurrency: int = 1  # heavy jobs (photo/video) at once
    queue_size: int = 16
    live_concurrency: int = 2  # live webcam streams at once
    live_seconds: int = 120  # each live stream stops after this long
    tmp_max_age: int = 3600  # seconds job outputs are kept

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Limits":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            max_upload_mb=_env_number(env, "SEGMENTATION_MAX_UPLOAD_MB", d.max_upload_mb),
            max_seconds=_env_number(env, "SEGMENTATION_MAX_SECONDS", d.max_seconds),
            max_pixels=_env_number(env, "SEGMENTATION_MAX_PIXELS", d.max_pixels, integer=True),
            concurrency=_env_number(env, "SEGMENTATION_CONCURRENCY", d.concurrency, integer=True),
            queue_size=_env_number(env, "SEGMENTATION_QUEUE_SIZE", d.queue_size, integer=True),
            live_concurrency=_env_number(env, "SEGMENTATION_LIVE_CONCURRENCY", d.live_concurrency, integer=True),
            live_seconds=_env_number(env, "SEGMENTATION_LIVE_SECONDS", d.live_seconds, integer=True),
            tmp_max_age=_env_number(env, "SEGMENTATION_TMP_MAX_AGE", d.tmp_max_age, integer=True),
        )


# -- validation -------------------------------------------------------------------------
def selectable_models() -> list[ModelEntry]:
    """Catalog entries the app offers: TFLite ones (no TF Hub / SavedModel: slow, TensorFlow)."""
    return [e for e in catalog.list_models() if e.format not in UNSELECTABLE_FORMATS]


def model_choices() -> list[tuple[str, str]]:
    """(label, id) pairs for the model dropdown, default model first."""
    entries = selectable_models()
    entries.sort(key=lambda e: e.id != catalog.DEFAULT_MODEL_ID)
    return [(f"{e.id} — {e.name}", e.id) for e in entries]


def check_model_id(model_id: object) -> ModelEntry:
    """The catalog entry for an id the app offers; anything else is refused (never a path)."""
    ids = [e.id for e in selectable_models()]
    if isinstance(model_id, str) and model_id in ids:
        return catalog.CATALOG[model_id]
    shown = repr(model_id) if len(repr(model_id)) <= 80 else repr(model_id)[:77] + "..."
    raise ModelError(f"Unknown model {shown}: choose one of {', '.join(ids)}.")


def class_names(model_id: str) -> list[str]:
    """Label names of a catalog model (for the class filter), without loading it."""
    return list(check_model_id(model_id).labels)


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise InputError(f"Unknown output mode {mode!r}; use one of: {', '.join(MODES)}.")
    return str(mode)


def check_alpha(alpha: object) -> float:
    try:
        a = float(alpha)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"Overlay opacity must be a number between 0 and 1, got {alpha!r}.") from None
    if not 0.0 <= a <= 1.0:
        raise InputError(f"Overlay opacity must be between 0 and 1, got {a:g}.")
    return a


def class_filter(names: Sequence[str] | str | None, labels: Sequence[str]) -> tuple[int, ...] | None:
    """Class names (or ids) -> ids for ``DrawOptions.classes``; empty -> None (all classes)."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n for n in re.split(r"[,;]", names) if n.strip()]
    elif not isinstance(names, (list, tuple)):
        raise InputError(f"Classes must be a list of class names, got {type(names).__name__}.")
    names = [str(n) for n in names if str(n).strip()]
    if not names:
        return None
    try:
        return draw.class_ids(names, labels)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_upload(path: str | os.PathLike | None, limits: Limits) -> Path:
    """An uploaded file that exists and is within the upload limit."""
    if path is None or str(path) == "":
        raise InputError("No file was given: drop a video or a photo first.")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"The uploaded file {p.name!r} was not found on the server; upload it again.")
    size = p.stat().st_size
    if size > limits.max_upload_bytes:
        raise InputError(f"{p.name} is {size / 2**20:.1f} MB; the upload limit is {limits.max_upload_mb:g} MB.")
    if size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    return p


def safe_stem(name: str, default: str = "result") -> str:
    """A file-name stem safe to put in a download name."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._")[:60]
    return stem or default


# -- segmenters ----------------------------------------------------------------------------
class SegmenterCache:
    """One ``Segmenter`` per model id, built on first use. Thread-safe; a model loads once."""

    def __init__(self, threads: int | None = None, factory: Callable[[str], Segmenter] | None = None):
        self.threads = threads
        self._factory = factory or (lambda mid: Segmenter(SegmenterOptions(model=mid, threads=self.threads)))
        self._items: dict[str, Segmenter] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> Segmenter:
        check_model_id(model_id)
        with self._lock:
            seg = self._items.get(model_id)
            if seg is not None:
                return seg
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:
            with self._lock:
                seg = self._items.get(model_id)
            if seg is None:
                t = time.perf_counter()
                seg = self._factory(model_id)
                log.info("Loaded model %s in %.0f ms", model_id, (time.perf_counter() - t) * 1000)
                with self._lock:
                    self._items[model_id] = seg
        return seg

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._items)


# -- temporary outputs ---------------------------------------------------------------------
class TempStore:
    """The app's own folder for job outputs; job folders older than ``max_age`` s are swept."""

    def __init__(self, root: str | Path | None = None, max_age: float = 3600.0):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="segmentation-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self._stop = threading.Event()

    def new_job(self) -> Path:
        d = self.root / f"{int(time.time())}-{uuid.uuid4().hex[:10]}"
        d.mkdir(parents=True)
        return d

    def sweep(self, now: float | None = None) -> int:
        """Remove job folders last modified more than ``max_age`` seconds ago; return how many."""
        now = time.time() if now is None else now
        removed = 0
        for d in self.root.iterdir():
            try:
                if d.is_dir() and now - d.stat().st_mtime > self.max_age:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
            except OSError:
                continue
        return removed

    def start_sweeper(self, interval: float | None = None) -> threading.Thread:
        interval = interval or max(10.0, min(600.0, self.max_age / 4))

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except OSError:
                    log.exception("Sweeping %s failed", self.root)

        t = threading.Thread(target=loop, name="tempstore-sweeper", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)


# -- results for the page ------------------------------------------------------------------
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


LEGEND_CSS = """
.seg-legend-title { font-weight: 600; margin: 4px 0; }
.seg-legend { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.seg-legend-item { display: flex; align-items: center; gap: 6px; min-width: 160px; }
.seg-swatch { display: inline-block; width: 16px; height: 16px; border: 1px solid #0004; border-radius: 3px; }
.seg-name { flex: 1; }
.seg-share { font-variant-numeric: tabular-nums; opacity: 0.8; }
"""


def _fps(x) -> float:
    return round(float(x), 3)


def stats_markdown(stats: Mapping) -> str:
    """One short paragraph of what happened, for the page."""
    if stats.get("kind") == "video":
        text = (f"**{stats['frames']} frames** ({stats['width']}×{stats['height']}) · "
                f"{stats['source_fps']:g} fps → {stats['output_fps']:g} fps · "
                f"**{stats['processing_fps']:.1f} frames/s** processing "
                f"({stats['realtime_factor']:.2f}× real time, {stats['seconds']:.1f} s) · "
                f"{stats['model_runs']} model runs · model `{stats['model']}` · speed **{stats['speed']}**")
        if stats.get("trimmed_to_seconds"):
            text += f" · first {stats['trimmed_to_seconds']:g} s only (duration limit)"
        return text
    text = (f"Photo {stats['width']}×{stats['height']} · segmented in {stats['seconds'] * 1000:.0f} ms · "
            f"model `{stats['model']}`")
    if stats.get("downscaled_from"):
        w, h = stats["downscaled_from"]
        text += f" · downscaled from {w}×{h} (pixel limit)"
    return text


@dataclass
class PhotoOutcome:
    original: np.ndarray
    display: np.ndarray  # right-hand side of the comparison: overlay or mask at the photo's size
    output: Path  # PNG in the requested mode (side-by-side is twice as wide)
    legend: list[LegendItem]
    stats: dict


@dataclass
class VideoOutcome:
    source: Path
    output: Path
    legend: list[LegendItem]
    stats: dict


def run_photo(segmenters: SegmenterCache, source: str | os.PathLike | np.ndarray, model_id: str, mode: str,
              alpha: float, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
              name: str | None = None) -> PhotoOutcome:
    """Segment one photo (uploaded file or webcam array) and write the PNG to download."""
    from PIL import Image

    from .pipeline import segment_image, sniff_kind

    mode, alpha = check_mode(mode), check_alpha(alpha)
    check_model_id(model_id)
    downscaled = None
    if isinstance(source, np.ndarray):
        rgb = as_rgb_array(source)
        h, w = rgb.shape[:2]
        if h * w > limits.max_pixels:
            rgb = fit_pixels(rgb, limits.max_pixels)
            downscaled = (w, h)
        stem = safe_stem(name or "webcam")
    else:
        path = check_upload(source, limits)
        if sniff_kind(path) != "image":
            _refuse_non_photo(path)
        size = displayed_size(path)
        rgb = load_image(path, max_pixels=limits.max_pixels)
        if size is not None and size != (rgb.shape[1], rgb.shape[0]) and size[0] * size[1] > limits.max_pixels:
            downscaled = size
        stem = safe_stem(name or path.name)
    seg = segmenters.get(model_id)
    ids = class_filter(classes, seg.labels)
    shown_mode = "overlay" if mode == "side-by-side" else mode
    res = segment_image(seg, rgb, DrawOptions(mode=shown_mode, alpha=alpha, classes=ids))
    picture = draw.side_by_side(res.original, res.rendered) if mode == "side-by-side" else res.rendered
    job = store.new_job()
    out = job / f"{stem}_segmented.png"
    try:
        Image.fromarray(picture).save(out, compress_level=1)
    except BaseException:  # disk full, ...: no half-written PNG stays behind
        shutil.rmtree(job, ignore_errors=True)
        raise
    h, w = res.original.shape[:2]
    stats = {"kind": "image", "width": w, "height": h, "output_width": picture.shape[1],
             "output_height": picture.shape[0], "seconds": round(res.seconds, 4), "model": seg.entry.id,
             "mode": mode, "downscaled_from": list(downscaled) if downscaled else None}
    return PhotoOutcome(res.original, res.rendered, out, res.legend, stats)


def _refuse_non_photo(path: Path) -> None:
    """The photo endpoint's answer to a file Pillow cannot open: a video, or neither."""
    from . import video

    try:
        video.probe(path)
    except InputError:
        raise InputError(f"{path.name} is neither a photo nor a video that can be read.") from None
    raise InputError(f"{path.name} is a video, not a photo: use the video endpoint (segment_video).")


def run_video(segmenters: SegmenterCache, source: str | os.PathLike, model_id: str, mode: str, alpha: float,
              speed: str, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
              progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
              trim: bool = False, temporal: bool = True) -> VideoOutcome:
    """Segment one video into an H.264 MP4 within the limits (see ``pipeline.segment_video``).

    A video longer than ``limits.max_seconds`` is refused, or with ``trim``
    (the app's own examples, one of which is longer than the default limit)
    cut to its first ``max_seconds``.
    """
    from . import video
    from .pipeline import VideoOptions, segment_video, sniff_kind

    mode, alpha, speed = check_mode(mode), check_alpha(alpha), check_speed(speed)
    check_model_id(model_id)
    path = check_upload(source, limits)
    if sniff_kind(path) != "video":
        raise InputError(f"{path.name} is a photo, not a video: use the photo endpoint (segment_image).")
    seg = segmenters.get(model_id)
    ids = class_filter(classes, seg.labels)
    max_duration: float | None = limits.max_seconds
    max_frames = None
    trimmed = None
    if trim:
        info = video.probe(path)
        if info.duration > limits.max_seconds:
            max_duration = None
            max_frames = max(1, int(limits.max_seconds * float(info.fps)))
            trimmed = limits.max_seconds
    job = store.new_job()
    out = job / f"{safe_stem(path.name)}_segmented.mp4"
    options = VideoOptions(draw=DrawOptions(mode=mode, alpha=alpha, classes=ids), speed=speed,
                           temporal=bool(temporal), max_frames=max_frames)
    try:
        r = segment_video(seg, path, out, options, progress=progress, cancel=cancel,
                          max_duration=max_duration, max_pixels=limits.max_pixels)
    except BaseException:
        shutil.rmtree(job, ignore_errors=True)
        raise
    out_w, out_h = draw.output_size(r.info.width, r.info.height, mode)
    stats = {"kind": "video", "frames": r.frames, "width": r.info.width, "height": r.info.height,
             "output_width": out_w, "output_height": out_h, "source_fps": _fps(r.info.fps),
             "output_fps": _fps(r.output_fps), "processing_fps": round(r.processing_fps, 2),
             "realtime_factor": round(r.realtime_factor, 3), "seconds": round(r.seconds, 3),
             "model_runs": r.keyframes, "model": r.model_id, "speed": str(speed), "temporal": r.temporal,
             "mode": mode,
             "duration": round(r.info.duration, 3), "trimmed_to_seconds": trimmed}
    return VideoOutcome(path, r.output, r.legend, stats)


class FrameRate:
    """Wraps a ``progress(done, total, frames_per_second)`` reporter as a pipeline callback."""

    def __init__(self, report: Callable[[int, int, float], None], min_interval: float = 0.0):
        self.report = report
        self.min_interval = min_interval
        self._t0: float | None = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        rate = (done - 1) / (now - self._t0) if done > 1 and now > self._t0 else 0.0
        if done >= total or now - self._last >= self.min_interval:
            self._last = now
            self.report(done, total, rate)


# -- live webcam ---------------------------------------------------------------------------
class LiveSession:
    """State of one browser's live stream: its frame segmenter, latency and rate."""

    RESTART_GAP = 2.0  # seconds without frames after which the stream counts as restarted

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self._key: tuple | None = None
        self._frame_seg = None
        self._last: float | None = None
        self.fps = 0.0
        self.latency_ms = 0.0
        self.frames = 0
        self.keyframes = 0

    def process(self, segmenter: Segmenter, frame: np.ndarray, mode: str, alpha: float,
                classes: tuple[int, ...] | None, speed: str, temporal: bool = True) -> tuple[np.ndarray, str]:
        """Segment and draw one webcam frame; return the picture and a status line."""
        t0 = time.perf_counter()
        rgb = as_rgb_array(frame)
        key = (segmenter.entry.id, speed, temporal)
        if key != self._key or (self._last is not None and t0 - self._last > self.RESTART_GAP):
            # new model/speed/fusion, or a new stream: start afresh
            self._key = key
            self._frame_seg = frame_segmenter(segmenter, speed, 1.0 / self.interval, temporal)
            self.fps, self._last = 0.0, None
        labels = self._frame_seg(rgb)
        out = draw.render(rgb, labels.class_map, segmenter.palette, DrawOptions(mode=mode, alpha=alpha, classes=classes))
        now = time.perf_counter()
        latency = (now - t0) * 1000
        self.latency_ms = latency if self.frames == 0 else 0.8 * self.latency_ms + 0.2 * latency
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0 else 0.8 * self.fps + 0.2 * inst
        self._last = now
        self.frames += 1
        self.keyframes += int(labels.keyframe)
        text = (f"Live · latency {self.latency_ms:.0f} ms per frame · {self.fps:.1f} frames/s · "
                f"{self.frames} frames ({self.keyframes} model runs) · model {segmenter.entry.id} · {speed}"
                f"{' · temporal fusion' if temporal else ''}")
        return out, text
