"""The app's jobs: one photo or one video in, a result file, its legend and typed stats out.

* ``SegmenterCache``: one ``Segmenter`` per model id, loaded once, thread-safe.
* ``TempStore`` (``webapp.store``, re-exported): the app's own folder for job outputs, within a disk
  budget (oldest results go first; a result that cannot fit is refused before it is written) and
  swept by age.
* ``run_photo`` / ``run_video``: one job each, on top of ``pipeline.segment_image`` /
  ``pipeline.segment_video``, within the server's ``Limits``; they return a ``PhotoOutcome`` /
  ``VideoOutcome`` whose ``stats`` (``PhotoStats`` / ``VideoStats``) the page shows and the API
  returns as JSON (``to_json``).
* Labels (the page's runs, ``labels=True``): the class maps as a ``.zip`` (8-bit PNG per frame and
  ``labels.json``) and as COCO ``.json``, beside the result in its job folder. A video's ``.zip`` is
  written by the pipeline as it runs (``labels_out``); the ``.json`` is converted from it afterwards
  (``coco_from_zip``), so the video is segmented once.
* ``FrameRate``: a pipeline progress callback that also reports frames per second.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import cv2
import numpy as np
from PIL import Image

from segmentation import draw, video
from segmentation.draw import DrawOptions, LegendItem, Mode
from segmentation.effects import EffectOptions
from segmentation.errors import InputError
from segmentation.exports import ExportInfo, Timeline, labels_writer, save_labels
from segmentation.images import as_rgb_array, displayed_size, fit_pixels, load_image
from segmentation.pipeline import Cancelled, VideoOptions, export_info, segment_image, segment_video, sniff_kind
from segmentation.segmenter import Segmenter, SegmenterOptions

from .checks import (check_alpha, check_mode, check_model_id, check_speed, check_upload, check_video_budget,
                     class_filter, header_frames, safe_stem)
from .limits import Limits
from .previews import checkerboard_copy, playable_copy, plays_in_browsers
from .store import TempStore, _mb

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


# -- temporary outputs: webapp.store (re-exported here) ------------------------------------------

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
    warning: str = ""  # a video that ended early: "decoded 9 of 35 frames; the file is truncated."


@dataclass
class PhotoOutcome:
    original: np.ndarray
    display: np.ndarray  # right-hand side of the comparison at the photo's size (RGBA for remove-background)
    output: Path  # PNG in the requested mode (side-by-side is twice as wide; RGBA for remove-background)
    legend: list[LegendItem]
    stats: PhotoStats
    labels: list[Path] = dataclasses.field(default_factory=list)  # .zip and COCO .json, when asked for

    @property
    def downloads(self) -> list[Path]:
        return [self.output, *self.labels]


@dataclass
class VideoOutcome:
    source: Path
    output: Path  # H.264 MP4, or VP9 WebM with alpha for remove-background
    legend: list[LegendItem]
    stats: VideoStats
    labels: list[Path] = dataclasses.field(default_factory=list)  # .zip and COCO .json, when asked for
    timeline: Timeline = dataclasses.field(default_factory=Timeline, repr=False)  # class shares per frame
    # What the page's players show (``previews``): a copy browsers play of a source they cannot, and
    # remove-background's WebM over a checkerboard as H.264; None: the file itself.
    source_preview: Path | None = None
    output_preview: Path | None = None

    @property
    def shown_source(self) -> Path:
        return self.source_preview or self.source

    @property
    def shown_output(self) -> Path:
        return self.output_preview or self.output

    @property
    def downloads(self) -> list[Path]:
        return [self.output, *self.labels]


def _fps(x) -> float:
    return round(float(x), 3)


# -- disk estimates ----------------------------------------------------------------------------
# What a result may take on disk, reserved before it is written. Videos are H.264 yuv420p at CRF 23,
# preset superfast (accurate) / ultrafast (realtime). Measured on this machine: camera clips take
# 0.06-0.19 bits per pixel (the shared clips at 640x360-768x432, overlay, mask and side-by-side)
# and a 720p clip 0.07-0.08; tiny frames cost ~380 bytes each whatever they show (slice headers,
# the container's index: 1.0 bit per pixel at 64x48). Pure noise, the worst anyone can send,
# reaches 2.4-3.3 bits per pixel (4.6 at 64x48). The estimate is 0.5 bits per pixel, 2.6x the most
# a camera clip needed, plus 400 bytes per frame and the audio at up to 512 kbit/s (AAC is
# re-encoded at ~128-192; copied tracks are rarely above 320). A result that outgrows it anyway
# (noise) is measured while it is written (``_DiskWatch``) and stopped if the budget cannot hold it.
VIDEO_BITS_PER_PIXEL = 0.5
VIDEO_BYTES_PER_FRAME = 400
AUDIO_BITS_PER_SECOND = 512_000
# A PNG at compress level 1 is at most its raw RGB bytes plus a little (row filters, chunks).
PNG_OVERHEAD_BYTES = 64 * 1024


def estimate_video_bytes(pixels_per_frame: float, frames: int, seconds: float, audio: bool) -> int:
    """Upper estimate of an encoded result's size (see the measurements above)."""
    video_bytes = frames * (pixels_per_frame * VIDEO_BITS_PER_PIXEL / 8 + VIDEO_BYTES_PER_FRAME)
    return int(video_bytes + (seconds * AUDIO_BITS_PER_SECOND / 8 if audio else 0))


def estimate_photo_bytes(width: int, height: int, channels: int = 3) -> int:
    return width * height * channels + PNG_OVERHEAD_BYTES


# Labels: the .zip (8-bit PNG per frame) and the COCO .json together. Both grow with the length of the
# class boundaries, i.e. with the frame's width + height, not its area. Measured per frame and pixel of
# width + height (default model, zip + json): classroom.gif 480x270, a dense indoor scene, 6.4 + 14.0
# bytes, the most seen; the person clip 768x432 3.6 + 5.3, and upscaled to 1280x720 4.3 + 5.0;
# street traffic 768x432 2.2 + 0.6. The estimate is 48 bytes per pixel of width + height, 2.3x the
# most measured, plus 2 KiB per frame (zip entry and PNG headers, one COCO annotation per class
# present). A photo reserves the most any class map can take: every pixel its own run (~2 bytes a
# pixel in the .json, 1 in the PNG).
LABELS_BYTES_PER_SIDE_PIXEL = 48
LABELS_BYTES_PER_FRAME = 2048


def estimate_labels_bytes(width: int, height: int, frames: int | None = None) -> int:
    """Upper estimate of a result's label files (.zip and .json); ``frames`` None: a photo."""
    if frames is None:
        return 3 * width * height + 2 * PNG_OVERHEAD_BYTES
    return frames * (LABELS_BYTES_PER_SIDE_PIXEL * (width + height) + LABELS_BYTES_PER_FRAME)


def coco_from_zip(zip_path: Path, json_path: Path, info: ExportInfo,
                  each_frame: Callable[[int, int], None] | None = None) -> Path:
    """The COCO ``.json`` of a labels ``.zip`` (``exports``), frame by frame: the same class maps, the
    same times. ``each_frame(done, total)`` may raise to stop (nothing is left at ``json_path``)."""
    with zipfile.ZipFile(zip_path) as z:
        meta = json.loads(z.read("labels.json"))
        frames = meta["frames"]
        with labels_writer(json_path, meta["width"], meta["height"], info) as writer:
            for i, f in enumerate(frames):
                cm = cv2.imdecode(np.frombuffer(z.read(f["file"]), np.uint8), cv2.IMREAD_UNCHANGED)
                writer.add(cm, f["time"])
                if each_frame is not None:
                    each_frame(i + 1, len(frames))
    return json_path


# -- jobs ------------------------------------------------------------------------------------
def run_photo(segmenters: SegmenterCache, source: str | os.PathLike | np.ndarray, model_id: str, mode: str,
              alpha: float, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
              name: str | None = None, *, effect: EffectOptions | None = None, labels: bool = False) -> PhotoOutcome:
    """Segment one photo (uploaded file or webcam array) and write the PNG to download (RGBA for
    remove-background); ``effect``: the background effect's settings; ``labels``: also the class map
    as ``NAME_labels.zip`` and COCO ``NAME_labels.json``."""
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
    res = segment_image(seg, rgb, DrawOptions(mode=shown_mode, alpha=alpha, classes=ids,
                                              effect=effect or EffectOptions()))
    picture = draw.side_by_side(res.original, res.rendered) if mode == "side-by-side" else res.rendered
    h, w = res.original.shape[:2]
    reserve = estimate_photo_bytes(picture.shape[1], picture.shape[0], picture.shape[2])
    job = store.new_job(reserve + (estimate_labels_bytes(w, h) if labels else 0))
    out = job / f"{stem}_segmented.png"
    label_files = [job / f"{stem}_labels.zip", job / f"{stem}_labels.json"] if labels else []
    try:
        Image.fromarray(picture).save(out, compress_level=1)
        for path in label_files:
            save_labels(res.class_map, path, export_info(seg))
    except BaseException:  # disk full, ...: no half-written PNG stays behind
        store.discard(job)
        raise
    store.finish(job)
    stats = PhotoStats(width=w, height=h, output_width=picture.shape[1], output_height=picture.shape[0],
                       seconds=round(res.seconds, 4), model=seg.entry.id, mode=mode, downscaled_from=downscaled)
    return PhotoOutcome(res.original, res.rendered, out, res.legend, stats, label_files)


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
              trim: bool = False, temporal: bool = True, *, effect: EffectOptions | None = None,
              labels: bool = False, previews: bool = False) -> VideoOutcome:
    """Segment one video into an H.264 MP4 (remove-background: a VP9 WebM with alpha, which browsers
    play with its transparency) within the limits (see ``pipeline.segment_video``).

    A video over the duration, frame-rate or frame-count limit is refused before anything runs
    (from its header; the frame and duration limits hold again while decoding), or with ``trim``
    (the app's own examples, one of which is longer than the default limit) cut to its first
    ``max_seconds`` / ``max_frames``. The result's disk is reserved in ``store`` before encoding.
    Past ``limits.max_job_seconds``, or when its result outgrows the store's budget, the job is
    stopped through ``cancel`` and its files removed (``InputError`` saying which). ``effect``: the
    background effect's settings; ``labels``: also the class maps as ``NAME_labels.zip`` (written as
    the video is) and COCO ``NAME_labels.json`` (converted from the zip), reserved with the video;
    ``previews`` (the page's runs): what its players show (``webapp.previews``), in the same job:
    ``NAME_original.mp4`` when browsers cannot play the source, ``NAME_segmented_preview.mp4`` (over a
    checkerboard) for remove-background; the original's only where the page shows it (not side-by-side).
    """
    stop = _Stop(cancel or threading.Event())
    timer = threading.Timer(limits.max_job_seconds, stop, ("time",))
    timer.daemon = True
    timer.start()
    try:
        return _run_video(segmenters, source, model_id, mode, alpha, speed, classes, limits, store, progress,
                          stop, trim, temporal, effect, labels, previews)
    except Cancelled:
        if stop.reason == "time":
            raise InputError(f"The job took longer than the limit of {limits.max_job_seconds:g} s and was "
                             "stopped; nothing was kept. Try a shorter or smaller clip, or the realtime speed."
                             ) from None
        if stop.reason == "disk":
            raise InputError(f"The result outgrew the {_mb(store.max_bytes or 0)} MB the server keeps for results "
                             "and was stopped; nothing was kept. Try a shorter or smaller clip.") from None
        raise
    finally:
        timer.cancel()


def _run_video(segmenters: SegmenterCache, source: str | os.PathLike, model_id: str, mode: str, alpha: float,
               speed: str, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
               progress: Callable[[int, int], None] | None, stop: "_Stop", trim: bool,
               temporal: bool, effect: EffectOptions | None, labels: bool, previews: bool) -> VideoOutcome:
    mode, alpha, speed = check_mode(mode), check_alpha(alpha), check_speed(speed)
    check_model_id(model_id)
    path = check_upload(source, limits)
    if sniff_kind(path) != "video":
        raise InputError(f"{path.name} is a photo, not a video: use the photo endpoint (segment_image).")
    info = video.probe(path)
    fps = float(info.fps)
    max_duration: float | None = limits.max_seconds
    frame_limit: int | None = limits.max_frames
    max_frames = None
    trimmed = None
    if not trim:
        check_video_budget(info, limits)
    elif info.duration > limits.max_seconds or header_frames(info) > limits.max_frames:
        max_duration, frame_limit = None, None
        max_frames = max(1, min(limits.max_frames, int(limits.max_seconds * fps)))
        trimmed = round(min(limits.max_seconds, max_frames / fps), 3)
    seg = segmenters.get(model_id)
    ids = class_filter(classes, seg.labels)
    # What the result may hold: the frames the header states (or, when it says nothing, as many as
    # the limits allow), at no more than the pixel limit (a larger video is refused on its first frame).
    cap = max_frames or min(limits.max_frames, max(1, round(limits.max_seconds * fps)))
    frames = min(header_frames(info) or cap, cap)
    scale = min(1.0, limits.max_pixels / max(1, info.width * info.height))
    out_w, out_h = draw.output_size(info.width, info.height, mode)
    reserve = estimate_video_bytes(out_w * out_h * scale, frames, frames / fps, info.has_audio)
    copy_source = previews and mode != Mode.SIDE_BY_SIDE and not plays_in_browsers(path)
    on_board = previews and mode == Mode.REMOVE_BACKGROUND
    reserve += sum(estimate_video_bytes(px * scale, frames, frames / fps, info.has_audio) for px, wanted in
                   ((info.width * info.height, copy_source), (out_w * out_h, on_board)) if wanted)
    job = store.new_job(reserve + (estimate_labels_bytes(info.width, info.height, frames) if labels else 0))
    stem = safe_stem(path.name)
    # remove-background keeps its transparency: VP9 with alpha in WebM (browsers play it as such)
    out = job / f"{stem}_segmented.{'webm' if mode == Mode.REMOVE_BACKGROUND else 'mp4'}"
    label_files = [job / f"{stem}_labels.zip", job / f"{stem}_labels.json"] if labels else []
    options = VideoOptions(draw=DrawOptions(mode=mode, alpha=alpha, classes=ids, effect=effect or EffectOptions()),
                           speed=speed, temporal=bool(temporal), max_frames=max_frames)
    try:
        r = segment_video(seg, path, out, options, progress=_DiskWatch(store, job, stop, progress), cancel=stop.event,
                          max_duration=max_duration, max_pixels=limits.max_pixels, frame_limit=frame_limit,
                          labels_out=label_files[0] if labels else None)
        if labels:
            t = time.perf_counter()
            coco_from_zip(label_files[0], label_files[1], export_info(seg, float(r.info.fps)),
                          _DiskWatch(store, job, stop, None, raise_when_stopped=True))
            log.info("%s: COCO labels of %d frames converted from the zip in %.0f ms", stem, r.frames,
                     (time.perf_counter() - t) * 1000)
        watch = _DiskWatch(store, job, stop, None, raise_when_stopped=True)
        source_preview = output_preview = None
        if copy_source:
            source_preview = playable_copy(path, job / f"{stem}_original.mp4", max_frames=r.frames, each_frame=watch)
        if on_board:
            output_preview = checkerboard_copy(r.output, job / f"{stem}_segmented_preview.mp4", each_frame=watch)
        if not store.grow(job, store.folder_bytes(job)):  # grown past the budget since the watch looked
            stop("disk")
            raise Cancelled("The result does not fit.")
    except BaseException:
        store.discard(job)
        raise
    store.finish(job)
    stats = VideoStats(frames=r.frames, width=r.info.width, height=r.info.height, output_width=out_w,
                       output_height=out_h, source_fps=_fps(r.info.fps), output_fps=_fps(r.output_fps),
                       processing_fps=round(r.processing_fps, 2), realtime_factor=round(r.realtime_factor, 3),
                       seconds=round(r.seconds, 3), model_runs=r.keyframes, model=r.model_id, speed=str(speed),
                       temporal=r.temporal, mode=mode, duration=round(r.info.duration, 3),
                       trimmed_to_seconds=trimmed, warning=r.warning)
    return VideoOutcome(path, r.output, r.legend, stats, label_files, r.timeline, source_preview, output_preview)


class _Stop:
    """A job's cancel event, and why the job itself set it ("time", "disk"); None when someone
    else did (Stop, a client gone)."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.reason: str | None = None
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            if not self.event.is_set():
                self.reason = reason
                self.event.set()


class _DiskWatch:
    """A pipeline progress callback that keeps the job's result within its disk reservation:
    every ``interval`` s it measures the job folder and, past the reservation, grows it by a
    quarter (oldest results go) or stops the job ("disk") when the budget cannot hold it.
    ``raise_when_stopped``: also raise ``Cancelled`` once the job is stopped (for work outside the
    pipeline, which watches the event itself)."""

    def __init__(self, store: TempStore, job: Path, stop: _Stop, progress: Callable[[int, int], None] | None,
                 interval: float = 0.5, raise_when_stopped: bool = False):
        self.store, self.job, self.stop, self.progress, self.interval = store, job, stop, progress, interval
        self.raise_when_stopped = raise_when_stopped
        self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            if not self.store.grow(self.job, self.store.folder_bytes(self.job)):
                self.stop("disk")
        if self.raise_when_stopped and self.stop.event.is_set():
            raise Cancelled("Cancelled; no output was kept.")
        if self.progress is not None:
            self.progress(done, total)


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
