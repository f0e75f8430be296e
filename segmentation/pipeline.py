"""The streaming pipeline shared by the CLI and the app: files in, results out.

Video: decode -> segment -> draw -> encode, one frame at a time through
bounded queues, each stage in its own thread so the model never waits on I/O
(PyAV, LiteRT and OpenCV release the GIL in their heavy calls). Nothing is
written to disk but the output, which appears under its name only when
complete. Which frames the model sees and how answers are carried from
frame to frame is the frame segmenter's business (see ``temporal``): two
speeds, ``accurate`` (every frame) and ``realtime`` (keyframes + optical
flow), each with temporal fusion on (default) or off.

Images: the same segmenter and drawing, one call.

Both take ``labels_out`` (class maps as .npz/.png, .zip or COCO .json, see
``exports``; a video takes several, written in its one pass); a video's result
carries its per-frame class shares (``VideoResult.timeline``), and the
``VideoLimits`` it must keep hold from its header and again while decoding. The background effects (``draw.Mode``
blur/replace/remove-background) run here like any mode; ``remove-background``
to a container without alpha (MP4) is a key-colour background instead.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import draw, video
from .draw import DrawOptions, Mode
from .errors import SegmentationError, parse_choice
from .exports import ExportInfo, Timeline, save_labels
from .files import refuse_overwriting_input
from .images import load_image
from .label_outputs import LabelOutputs, LabelPaths, label_paths
from .matte import PersonMatte
from .matte import alpha as matte_alpha
from .media import sniff_kind  # noqa: F401 (re-exported: the app imports sniff_kind from here)
from .results import ImageResult, VideoResult
from .segmenter import Segmenter
from .temporal import Fused, Schedule, Speed, TemporalOptions, check_speed, frame_segmenter
from .video_limits import VideoLimits

SPEEDS = tuple(Speed)
# x264 presets by speed: encoding shares the 2 cores with the model, and at 720p
# "veryfast" costs ~23 ms/frame against ~14 for "ultrafast" (benchmarks/results.md).
PRESETS = {"accurate": "superfast", "realtime": "ultrafast"}
QUEUE_SIZE = 8


class Cancelled(SegmentationError):
    """The job was cancelled (``cancel`` event set); no output was kept."""


@dataclass(frozen=True)
class VideoOptions:
    """Everything about how one video is processed (drawing + speed + temporal fusion + limits).

    ``temporal`` (default on) blends each frame's scores with the flow-warped
    history (see ``temporal``); off, accurate output is ``Segmenter.segment``
    of every frame on its own.
    """

    draw: DrawOptions = DrawOptions()
    speed: Speed = Speed.ACCURATE
    temporal: bool = True
    max_frames: int | None = None
    crf: int = 23
    preset: str | None = None  # x264 preset; None: "ultrafast" for realtime, "superfast" for accurate
    fusion: TemporalOptions = TemporalOptions()
    # realtime keyframes by frame index ("frames": the same output on any machine and in any number
    # of processes) or by the clock ("clock": as the live view; differs from run to run)
    schedule: Schedule = Schedule.FRAMES

    def __post_init__(self):
        object.__setattr__(self, "speed", check_speed(self.speed))
        object.__setattr__(self, "schedule", parse_choice(Schedule, self.schedule, "keyframe schedule"))


@dataclass(frozen=True)
class Span:
    """The part of a video one chunk writes (``segmentation.chunks``): frames ``start`` to ``stop``
    (indices in the whole video), after a warm-up from ``first``: frames segmented but not written,
    so the fusion enters ``start`` as a single pass would. Decoding seeks to the source keyframe
    ``seek_index`` (pts ``seek_pts``) at or before ``first``; ``origin_pts`` is the whole video's
    first frame (times in the timeline and labels count from it)."""

    start: int
    stop: int
    first: int
    seek_index: int
    seek_pts: int
    origin_pts: int


Progress = Callable[[int, int], None]


# -- images -------------------------------------------------------------------------
def segment_image(segmenter: Segmenter, image: str | Path | bytes | np.ndarray,
                  options: DrawOptions = DrawOptions(), labels_out: str | Path | None = None) -> ImageResult:
    """Segment one image (path, bytes or RGB array) and draw it (RGBA for ``remove-background``).

    ``labels_out``: the class map at the image's size as .png, .zip or COCO .json.
    """
    t = time.perf_counter()
    if isinstance(image, (str, Path)):
        refuse_overwriting_input(image, {"labels_out": labels_out})
    matte = person_matte(segmenter, options, still=True)
    options = options.resolve(segmenter.labels)
    rgb = image if isinstance(image, np.ndarray) else load_image(image)
    alpha = None
    if matte is None:
        class_map = segmenter.segment(rgb).class_map
    else:
        class_map, scores = segmenter.segment_scores(rgb)
        alpha = matte_alpha(matte.logits(rgb, scores))
    out = draw.render(rgb, class_map, segmenter.palette, options, alpha, options.matte_ids(segmenter.labels))
    items = draw.legend(class_map, segmenter.labels, segmenter.palette, options.classes)
    if labels_out is not None:
        save_labels(class_map, labels_out, export_info(segmenter))
    return ImageResult(rgb, out, class_map, items, segmenter.entry.id, time.perf_counter() - t)


def person_matte(segmenter: Segmenter, options: DrawOptions, still: bool) -> PersonMatte | None:
    """The person matte a job needs: for a background effect whose foreground holds people, from
    ``options.matte``'s sources (``still``: a photo's weights); None otherwise."""
    if not options.matte_ids(segmenter.labels):
        return None
    return PersonMatte(segmenter, options.matte, still=still)


def export_info(segmenter: Segmenter, fps: float | None = None) -> ExportInfo:
    """What the label exports record about the model (names, colours, id) and the frame rate."""
    return ExportInfo(tuple(segmenter.labels), segmenter.palette, segmenter.entry.id, fps)


def video_draw_options(options: DrawOptions, dst: str | Path, labels) -> DrawOptions:
    """``options`` for the model's ``labels`` and the container ``dst`` asks for: a background
    effect gets its default foreground, and ``remove-background`` to a container without alpha
    (MP4) becomes ``replace-background`` with the key colour (``EffectOptions.background``)."""
    options = options.resolve(labels)
    return options if video.container_for(dst).alpha else options.opaque()


# -- video --------------------------------------------------------------------------
class _Stage(threading.Thread):
    """A pipeline thread that records its exception instead of dying silently."""

    def __init__(self, target, name, failed: threading.Event | None = None):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._failed = failed
        self.error: BaseException | None = None

    def run(self):
        try:
            self._target_fn()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc
            if self._failed is not None:
                self._failed.set()  # stop the other stages: one blocked on a full queue would wait forever


_END = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


def segment_video(segmenter: Segmenter, src: str | Path, dst: str | Path,
                  options: VideoOptions = VideoOptions(), progress: Progress | None = None,
                  cancel: threading.Event | None = None, labels_out: LabelPaths = None,
                  limits: VideoLimits | None = None, span: Span | None = None,
                  info: video.VideoInfo | None = None) -> VideoResult:
    """Segment every frame of ``src`` into an H.264 MP4 (a VP9 WebM for a ``.webm`` name) at ``dst``.

    See the module docstring. ``progress(done, total)`` is called from the
    encoder thread after each frame. Setting ``cancel`` stops all stages and
    removes the partial output. ``labels_out``: the class maps as .npz, .zip
    or COCO .json (``exports``), or several such files, all written in this one
    pass and kept only when the video is. ``limits`` (``VideoLimits``) hold from
    the header and again while decoding, whatever the header says: a video past
    one is refused (``InputError``), not cut. ``info``: ``src``'s ``video.probe``
    when the caller has it (else it is probed here). ``span``: one chunk of the
    video (see :class:`Span`), written without audio; ``segmentation.chunks`` stitches them.
    """
    outputs = label_paths(labels_out)
    refuse_overwriting_input(src, {"dst": dst, **{"labels_out" if len(outputs) == 1 else f"labels_out[{i}]": path
                                                  for i, path in enumerate(outputs)}})
    dopts = video_draw_options(options.draw, dst, segmenter.labels)
    info = video.probe(src) if info is None else info
    limits = limits or VideoLimits()
    limits.check_header(info)
    job = _VideoPass(segmenter, src, options, dopts, info, limits, span, cancel or threading.Event(), bool(outputs))
    return job.run(dst, outputs, progress)


class _VideoPass:
    """One ``segment_video`` call: decode and infer in threads, draw, encode and the label files in
    the caller's, through bounded queues; and what the stages share (stop events, class histogram,
    timeline, frames written)."""

    def __init__(self, segmenter: Segmenter, src: str | Path, options: VideoOptions, dopts: DrawOptions,
                 info: video.VideoInfo, limits: VideoLimits, span: Span | None, stop: threading.Event,
                 labels: bool):
        self.segmenter, self.src, self.options, self.dopts = segmenter, src, options, dopts
        self.info, self.limits, self.span, self.stop = info, limits, span, stop
        self.failed = threading.Event()
        self.halt = _Halt(stop, self.failed)
        self.frames_q: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.maps_q: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.hist = np.zeros(256, dtype=np.int64)
        self.timeline = Timeline()
        self.frames = 0
        self.first_pts: int | None = None
        self.reading = video.ReadState()
        self.person = dopts.matte_ids(segmenter.labels)
        self.frame_seg = self._frame_segmenter(labels)

    def _frame_segmenter(self, labels: bool):
        """The frame segmenter for the speed; when only the person matte is drawn and no labels are
        written, the class maps serve the legend and timeline alone, at <= 480x270, and the semantic
        model (half of the matte's evidence) runs on every other frame."""
        seg, o, info = self.segmenter, self.options, self.info
        frame_seg = frame_segmenter(seg, o.speed, float(info.fps), o.temporal, o.fusion,
                                    person_matte(seg, self.dopts, still=False), o.schedule)
        if self.person and set(self.person) == set(self.dopts.classes) and not labels:
            frame_seg.labels_size_wh = stats_size(info.width, info.height)
            if isinstance(frame_seg, Fused):
                frame_seg.model_every = MATTE_MODEL_EVERY
        return frame_seg

    @property
    def total(self) -> int:
        """The frames expected, for ``progress``."""
        if self.span is not None:
            return self.span.stop - self.span.start
        total = max(1, self.info.expected_frames)
        return min(total, self.options.max_frames) if self.options.max_frames else total

    def decode(self) -> None:
        """Stage 1 (thread): the frames into ``frames_q``; the limits hold for the frames themselves
        (the probed duration is only what the header says: nothing, for a raw or live stream)."""
        span, stop_at, seek = self.span, self.options.max_frames, None
        if span is not None:
            stop_at, seek = span.stop, (span.seek_pts, span.seek_index)
        try:
            start = None
            for f in video.read_frames(self.src, stop_at, state=self.reading, seek=seek):
                if span is not None and f.index < span.first:
                    continue  # decoded on the way from the source keyframe to the warm-up
                start = (f.pts if span is None else span.origin_pts) if start is None else start
                self.limits.check_frame(f.index, (f.pts - start) * f.time_base)
                if not _put(self.frames_q, f, self.halt):
                    return
        finally:
            _put(self.frames_q, _END, self.halt)

    def infer(self) -> None:
        """Stage 2 (thread): each frame with the frame segmenter's answer into ``maps_q``."""
        try:
            while True:
                f = _get(self.frames_q, self.halt)
                if f is _END:
                    return
                if not _put(self.maps_q, (f, self.frame_seg(f.rgb, f.index)), self.halt):
                    return
        finally:
            _put(self.maps_q, _END, self.halt)

    def run(self, dst: str | Path, outputs: list[Path], progress: Progress | None) -> VideoResult:
        """All three stages; on any failure nothing is left at ``dst`` or ``outputs``."""
        info = self.info
        labels = (LabelOutputs(outputs, info.width, info.height, export_info(self.segmenter, float(info.fps)))
                  if outputs else None)
        t0 = time.perf_counter()
        stages = [_Stage(self.decode, "decode", self.failed), _Stage(self.infer, "infer", self.failed)]
        for s in stages:
            s.start()
        try:
            ends = self._encode(dst, labels, progress, stages)
        except BaseException:
            self._abandon(labels, stages)
            raise
        return self._result(dst, time.perf_counter() - t0, *ends)

    def _encode(self, dst: str | Path, labels: LabelOutputs | None, progress: Progress | None,
                stages: list[_Stage]) -> tuple[int | None, float, int | None]:
        """Stage 3: draw and encode each answer (and its labels); the labels are finished before
        the video, so a video never stays without them. Returns the sink's first pts, end time and
        end pts."""
        o, info = self.options, self.info
        out_w, out_h = draw.output_size(info.width, info.height, self.dopts.mode)
        with video.VideoSink(dst, out_w, out_h, info.fps, info.time_base, audio_from=None if self.span else self.src,
                             crf=o.crf, preset=o.preset or PRESETS[o.speed],
                             alpha=self.dopts.mode is Mode.REMOVE_BACKGROUND) as sink:
            while True:
                item = _get(self.maps_q, self.halt)
                if item is _END:
                    break
                f, answer = item
                if self.span is not None and f.index < self.span.start:
                    continue  # the warm-up: segmented, not written
                self._write(sink, labels, f, answer)
                if progress is not None:
                    progress(self.frames, max(self.total, self.frames))
            for s in stages:
                s.join()
            _raise_stage_errors(stages)
            if self.stop.is_set():
                raise Cancelled("Cancelled; no output was kept.")
            if labels is not None:  # before the video is finished: if this fails, no video either
                labels.close()
            return sink.first_pts, sink.end_time, sink.end_pts

    def _write(self, sink: video.VideoSink, labels: LabelOutputs | None, f: video.DecodedFrame, answer) -> None:
        """One frame drawn and encoded, counted into the histogram and timeline, and its labels."""
        cm = answer.class_map
        sink.write(draw.render(f.rgb, cm, self.segmenter.palette, self.dopts, answer.matte, self.person),
                   f.pts, f.duration)
        counts = draw.class_histogram(cm)
        self.hist += counts
        self.first_pts = f.pts if self.first_pts is None else self.first_pts
        origin = self.first_pts if self.span is None else self.span.origin_pts
        t = float((f.pts - origin) * f.time_base)  # on the output's clock: its first frame is 0
        self.timeline.add(f.index, t, counts)
        if labels is not None:
            labels.add(cm, t)
        self.frames += 1

    def _abandon(self, labels: LabelOutputs | None, stages: list[_Stage]) -> None:
        """After a failure: stop the stages, take the labels back, and raise a stage's own error
        (the cause) rather than what it caused here; a cancel is left to the caller's ``raise``."""
        self.failed.set()
        if labels is not None:
            labels.discard()
        for s in stages:
            s.join(timeout=10)
        err = next((s.error for s in stages if s.error is not None), None)
        if err is not None and not isinstance(err, Cancelled):
            raise err from None

    def _result(self, dst: str | Path, seconds: float, first_written: int | None, end_time: float,
                end_pts: int | None) -> VideoResult:
        seg, o, info = self.segmenter, self.options, self.info
        legend = draw.legend(self.hist, seg.labels, seg.palette, self.dopts.classes)
        warning = "" if self.span else self.reading.shortfall(info.frames, o.max_frames)
        return VideoResult(Path(dst), self.frames, self.frame_seg.keyframes, info, info.fps, seconds, legend,
                           seg.entry.id, o.speed, o.temporal, self.timeline, warning, self.hist,
                           first_pts=first_written, end_time=end_time, end_pts=end_pts)


STATS_PIXELS = 480 * 270
MATTE_MODEL_EVERY = 2  # accurate jobs that draw only the person matte: the semantic model every 2nd frame


def stats_size(width: int, height: int) -> tuple[int, int]:
    """``size_wh`` of a class map kept for its statistics only: the frame's, or a fraction of it
    with at most ``STATS_PIXELS`` pixels (the shares of the classes barely change)."""
    k = max(1, int(np.ceil(np.sqrt(width * height / STATS_PIXELS))))
    return (max(1, width // k), max(1, height // k))


class _Halt:
    """An Event-like view that is set when the job is cancelled or a stage failed."""

    def __init__(self, *events: threading.Event):
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def _raise_stage_errors(stages: list[_Stage]) -> None:
    for s in stages:
        if s.error is not None:
            raise s.error
