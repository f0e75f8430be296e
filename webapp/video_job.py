"""A video job: one checked ``VideoRequest`` in, the segmented video, its labels and previews out.

The video is probed once (``VideoRequest.parse``) and segmented in one pass: the pipeline takes the
probed ``info`` and writes the labels ``.zip`` and COCO ``.json`` as it writes the video
(``labels_out`` with both). The job runs within the server's ``Limits``: its disk is reserved in
the store before it starts (``estimates``), watched while it writes (``DiskWatch``), and it is
stopped past ``max_job_seconds`` (``JobStop``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from segmentation import draw
from segmentation.draw import DrawOptions, Mode
from segmentation.effects import EffectOptions
from segmentation.errors import InputError
from segmentation.pipeline import Cancelled, VideoOptions, segment_video
from segmentation.results import VideoResult
from segmentation.video_limits import VideoLimits

from .checks import class_filter, safe_stem
from .estimates import estimate_labels_bytes, estimate_video_bytes
from .limits import Limits
from .previews import checkerboard_copy, playable_copy, plays_in_browsers
from .request import VideoRequest
from .results import VideoOutcome, VideoStats
from .segmenters import SegmenterCache
from .store import TempStore, _mb
from .watch import DiskWatch, JobStop


def run_video(segmenters: SegmenterCache, request: VideoRequest, limits: Limits, store: TempStore,
              progress: Callable[[int, int], None] | None = None,
              cancel: threading.Event | None = None) -> VideoOutcome:
    """Segment one video into an H.264 MP4 (remove-background: a VP9 WebM with alpha, which browsers
    play with its transparency) within the limits (see ``pipeline.segment_video``).

    A video over the duration, frame-rate or frame-count limit was refused from its header
    (``VideoRequest.parse``); the frame and duration limits hold again while decoding. With
    ``request.trim`` (the app's own examples, one of which is longer than the default limit) it is
    cut to its first ``max_seconds`` / ``max_frames`` instead. The result's disk is reserved in
    ``store`` before encoding. Past ``limits.max_job_seconds``, or when its result outgrows the
    store's budget, the job is stopped through ``cancel`` and its files removed (``InputError``
    saying which). ``request.labels``: also the class maps as ``NAME_labels.zip`` and COCO
    ``NAME_labels.json``, written as the video is; ``request.previews`` (the page's runs): what its
    players show (``webapp.previews``), in the same job: ``NAME_original.mp4`` when browsers cannot
    play the source, ``NAME_segmented_preview.mp4`` (over a checkerboard) for remove-background; the
    original's only where the page shows it (not side-by-side).
    """
    stop = JobStop(cancel or threading.Event())
    timer = threading.Timer(limits.max_job_seconds, stop, ("time",))
    timer.daemon = True
    timer.start()
    try:
        return _run_video(segmenters, request, limits, store, progress, stop)
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


@dataclass(frozen=True)
class _Budget:
    """What the job may decode: ``limits`` held while decoding (refused past them), ``max_frames``
    (cut there: a trimmed example), ``trimmed`` (s, for the stats) and ``frames``, the most the
    result may hold (for the disk reservation)."""

    limits: VideoLimits
    max_frames: int | None
    trimmed: float | None
    frames: int

    @classmethod
    def of(cls, request: VideoRequest, limits: Limits) -> "_Budget":
        info, fps = request.info, float(request.info.fps)
        held, max_frames, trimmed = VideoLimits(limits.max_seconds, limits.max_pixels, limits.max_frames), None, None
        if request.trim and (info.duration > limits.max_seconds or info.expected_frames > limits.max_frames):
            held = VideoLimits(max_pixels=limits.max_pixels)
            max_frames = max(1, min(limits.max_frames, int(limits.max_seconds * fps)))
            trimmed = round(min(limits.max_seconds, max_frames / fps), 3)
        # What the result may hold: the frames the header states (or, when it says nothing, as many as
        # the limits allow), at no more than the pixel limit (a larger video is refused on its first frame).
        cap = max_frames or min(limits.max_frames, max(1, round(limits.max_seconds * fps)))
        return cls(held, max_frames, trimmed, min(info.expected_frames or cap, cap))


@dataclass(frozen=True)
class _JobFiles:
    """The files of one video job in its store folder ``job``, named after the upload."""

    job: Path
    stem: str
    request: VideoRequest

    @property
    def output(self) -> Path:
        # remove-background keeps its transparency: VP9 with alpha in WebM (browsers play it as such)
        return self.job / f"{self.stem}_segmented.{'webm' if self.request.mode == Mode.REMOVE_BACKGROUND else 'mp4'}"

    @property
    def labels(self) -> list[Path]:
        if not self.request.labels:
            return []
        return [self.job / f"{self.stem}_labels.zip", self.job / f"{self.stem}_labels.json"]

    @property
    def source_preview(self) -> Path:
        return self.job / f"{self.stem}_original.mp4"

    @property
    def output_preview(self) -> Path:
        return self.job / f"{self.stem}_segmented_preview.mp4"


def _copies_source(request: VideoRequest) -> bool:
    """Whether the page needs a copy of the source its players can play (not beside side-by-side)."""
    return request.previews and request.mode != Mode.SIDE_BY_SIDE and not plays_in_browsers(request.path)


def _on_checkerboard(request: VideoRequest) -> bool:
    """Whether the page needs the result over a checkerboard (remove-background's transparency)."""
    return request.previews and request.mode == Mode.REMOVE_BACKGROUND


def _reservation(request: VideoRequest, frames: int, limits: Limits, copy_source: bool) -> int:
    """The bytes the job may write: its video, the previews it makes, the labels it writes."""
    info = request.info
    seconds = frames / float(info.fps)
    scale = min(1.0, limits.max_pixels / max(1, info.width * info.height))
    out_w, out_h = draw.output_size(info.width, info.height, request.mode)
    videos = [out_w * out_h]
    if copy_source:
        videos.append(info.width * info.height)
    if _on_checkerboard(request):
        videos.append(out_w * out_h)
    reserve = sum(estimate_video_bytes(px * scale, frames, seconds, info.has_audio) for px in videos)
    return reserve + (estimate_labels_bytes(info.width, info.height, frames) if request.labels else 0)


def _run_video(segmenters: SegmenterCache, request: VideoRequest, limits: Limits, store: TempStore,
               progress: Callable[[int, int], None] | None, stop: JobStop) -> VideoOutcome:
    seg = segmenters.get(request.model_id)
    ids = class_filter(request.classes, seg.labels)
    budget = _Budget.of(request, limits)
    copy_source = _copies_source(request)
    job = store.new_job(_reservation(request, budget.frames, limits, copy_source))
    files = _JobFiles(job, safe_stem(request.path.name), request)
    options = VideoOptions(draw=DrawOptions(mode=request.mode, alpha=request.alpha, classes=ids,
                                            effect=request.effect or EffectOptions()),
                           speed=request.speed, temporal=request.temporal, max_frames=budget.max_frames)
    try:
        r = segment_video(seg, request.path, files.output, options, progress=DiskWatch(store, job, stop, progress),
                          cancel=stop.event, labels_out=files.labels, limits=budget.limits, info=request.info)
        previews = _previews(request, r, files, copy_source, DiskWatch(store, job, stop, None, raise_when_stopped=True))
        if not store.grow(job, store.folder_bytes(job)):  # grown past the budget since the watch looked
            stop("disk")
            raise Cancelled("The result does not fit.")
    except BaseException:
        store.discard(job)
        raise
    store.finish(job)
    stats = VideoStats.from_result(r, request.mode, budget.trimmed)
    return VideoOutcome(request.path, r.output, r.legend, stats, files.labels, r.timeline, *previews)


def _previews(request: VideoRequest, r: VideoResult, files: _JobFiles, copy_source: bool,
              watch: DiskWatch) -> tuple[Path | None, Path | None]:
    """What the page's players show instead of the source and the result (None: the file itself)."""
    source_preview = output_preview = None
    if copy_source:
        source_preview = playable_copy(request.path, files.source_preview, max_frames=r.frames, each_frame=watch)
    if _on_checkerboard(request):
        output_preview = checkerboard_copy(r.output, files.output_preview, each_frame=watch)
    return source_preview, output_preview
