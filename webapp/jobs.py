"""The app's jobs: one photo or one video in, a result file, its legend and typed stats out.

* ``SegmenterCache``: one ``Segmenter`` per model id, loaded once, thread-safe.
* ``TempStore``: the app's own folder for job outputs, swept by age in a background thread.
* ``run_photo`` / ``run_video``: one job each, on top of ``pipeline.segment_image`` /
  ``pipeline.segment_video``, within the server's ``Limits``; they return a ``PhotoOutcome`` /
  ``VideoOutcome`` whose ``stats`` (``PhotoStats`` / ``VideoStats``) the page shows and the API
  returns as JSON (``to_json``).
* ``FrameRate``: a pipeline progress callback that also reports frames per second.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
from PIL import Image

from segmentation import draw, video
from segmentation.draw import DrawOptions, LegendItem
from segmentation.errors import InputError
from segmentation.images import as_rgb_array, displayed_size, fit_pixels, load_image
from segmentation.pipeline import VideoOptions, segment_image, segment_video, sniff_kind
from segmentation.segmenter import Segmenter, SegmenterOptions

from .checks import check_alpha, check_mode, check_model_id, check_speed, check_upload, class_filter, safe_stem
from .limits import Limits

log = logging.getLogger(__name__)


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


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobStats:
    """What a job did. ``to_json`` is the API's stats output: ``kind`` and every field by name."""

    KIND: ClassVar[str]

    def to_json(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.KIND, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}


@dataclass(frozen=True)
class PhotoStats(JobStats):
    KIND: ClassVar[str] = "image"
    width: int
    height: int
    output_width: int
    output_height: int
    seconds: float
    model: str
    mode: str
    downscaled_from: tuple[int, int] | None = None  # (w, h) of the input when over the pixel limit


@dataclass(frozen=True)
class VideoStats(JobStats):
    KIND: ClassVar[str] = "video"
    frames: int
    width: int
    height: int
    output_width: int
    output_height: int
    source_fps: float
    output_fps: float
    processing_fps: float
    realtime_factor: float
    seconds: float
    model_runs: int  # keyframes: frames the model itself ran on
    model: str
    speed: str
    temporal: bool
    mode: str
    duration: float
    trimmed_to_seconds: float | None = None  # set when an example longer than the limit was cut


@dataclass
class PhotoOutcome:
    original: np.ndarray
    display: np.ndarray  # right-hand side of the comparison: overlay or mask at the photo's size
    output: Path  # PNG in the requested mode (side-by-side is twice as wide)
    legend: list[LegendItem]
    stats: PhotoStats


@dataclass
class VideoOutcome:
    source: Path
    output: Path
    legend: list[LegendItem]
    stats: VideoStats


def _fps(x) -> float:
    return round(float(x), 3)


# -- jobs ------------------------------------------------------------------------------------
def run_photo(segmenters: SegmenterCache, source: str | os.PathLike | np.ndarray, model_id: str, mode: str,
              alpha: float, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
              name: str | None = None) -> PhotoOutcome:
    """Segment one photo (uploaded file or webcam array) and write the PNG to download."""
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
            downscaled = tuple(size)
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
    stats = PhotoStats(width=w, height=h, output_width=picture.shape[1], output_height=picture.shape[0],
                       seconds=round(res.seconds, 4), model=seg.entry.id, mode=mode, downscaled_from=downscaled)
    return PhotoOutcome(res.original, res.rendered, out, res.legend, stats)


def _refuse_non_photo(path: Path) -> None:
    """The photo endpoint's answer to a file Pillow cannot open: a video, or neither."""
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
    stats = VideoStats(frames=r.frames, width=r.info.width, height=r.info.height, output_width=out_w,
                       output_height=out_h, source_fps=_fps(r.info.fps), output_fps=_fps(r.output_fps),
                       processing_fps=round(r.processing_fps, 2), realtime_factor=round(r.realtime_factor, 3),
                       seconds=round(r.seconds, 3), model_runs=r.keyframes, model=r.model_id, speed=str(speed),
                       temporal=r.temporal, mode=mode, duration=round(r.info.duration, 3),
                       trimmed_to_seconds=trimmed)
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
