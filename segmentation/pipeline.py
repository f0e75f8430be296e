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
``exports``); a video's result carries its per-frame class shares
(``VideoResult.timeline``). The background effects (``draw.Mode``
blur/replace/remove-background) run here like any mode; ``remove-background``
to a container without alpha (MP4) is a key-colour background instead.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from . import draw, video
from .draw import DrawOptions, LegendItem, Mode
from .errors import InputError, SegmentationError, parse_choice
from .exports import ExportInfo, Timeline, labels_writer, save_labels
from .files import refuse_overwriting_input
from .images import load_image
from .matte import PersonMatte
from .matte import alpha as matte_alpha
from .media import sniff_kind  # noqa: F401 (re-exported: the app imports sniff_kind from here)
from .segmenter import Segmenter
from .temporal import Fused, Schedule, Speed, TemporalOptions, check_speed, frame_segmenter

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


@dataclass
class VideoResult:
    output: Path
    frames: int
    keyframes: int
    info: video.VideoInfo
    output_fps: Fraction
    seconds: float
    legend: list[LegendItem] = field(default_factory=list)
    model_id: str = ""
    speed: Speed = Speed.ACCURATE
    temporal: bool = True
    timeline: Timeline = field(default_factory=Timeline, repr=False)  # class shares per frame
    # set when the file ended before its own frame count (or broke off): "decoded 9 of 35 frames; ..."
    warning: str = ""
    histogram: np.ndarray | None = field(default=None, repr=False)  # pixels per class id (256), all frames
    first_pts: int | None = None  # the first frame written, source clock (time_base of the source)
    end_time: float = 0.0  # s from the first frame written to the end of the last one (the output's length)
    end_pts: int | None = None  # the end of the last frame written, source clock

    @property
    def processing_fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        return self.processing_fps / float(self.info.fps) if self.info.fps else 0.0


@dataclass
class ImageResult:
    original: np.ndarray
    rendered: np.ndarray
    class_map: np.ndarray
    legend: list[LegendItem]
    model_id: str = ""
    seconds: float = 0.0


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
                  cancel: threading.Event | None = None, labels_out: str | Path | None = None,
                  max_duration: float | None = None, max_pixels: int | None = None,
                  frame_limit: int | None = None, span: Span | None = None) -> VideoResult:
    """Segment every frame of ``src`` into an H.264 MP4 (a VP9 WebM for a ``.webm`` name) at ``dst``.

    See the module docstring. ``progress(done, total)`` is called from the
    encoder thread after each frame. Setting ``cancel`` stops all stages and
    removes the partial output. ``labels_out``: the class maps as .npz, .zip
    or COCO .json (``exports``), kept only when the video is. ``max_duration``
    and ``frame_limit`` hold while decoding, whatever the header says:
    a video past either is refused (``InputError``), not cut. ``span``: one chunk of the
    video (see :class:`Span`), written without audio; ``segmentation.chunks`` stitches them.
    """
    refuse_overwriting_input(src, {"dst": dst, "labels_out": labels_out})
    dopts = video_draw_options(options.draw, dst, segmenter.labels)
    info = video.probe(src)
    if max_duration is not None and info.duration > max_duration:
        raise InputError(f"The video is {info.duration:.1f} s long; the limit is {max_duration:.0f} s.")
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise InputError(f"The video is {info.width}x{info.height}; the limit is {max_pixels:,} pixels per frame.")
    total = info.frames or max(1, round(info.duration * float(info.fps)))
    if options.max_frames:
        total = min(total, options.max_frames)
    if span is not None:
        total = span.stop - span.start
    out_w, out_h = draw.output_size(info.width, info.height, dopts.mode)
    stop = cancel or threading.Event()
    failed = threading.Event()
    frames_q: queue.Queue = queue.Queue(QUEUE_SIZE)
    maps_q: queue.Queue = queue.Queue(QUEUE_SIZE)
    hist = np.zeros(256, dtype=np.int64)
    timeline = Timeline()
    frames = 0
    frame_seg = frame_segmenter(segmenter, options.speed, float(info.fps), options.temporal, options.fusion,
                                person_matte(segmenter, dopts, still=False), options.schedule)
    person = dopts.matte_ids(segmenter.labels)
    if person and set(person) == set(dopts.classes) and not labels_out:
        # Only the matte is drawn: the class maps serve the legend and timeline, at <= 480x270,
        # and the semantic model (half of the matte's evidence) runs on every other frame.
        frame_seg.labels_size_wh = stats_size(info.width, info.height)
        if isinstance(frame_seg, Fused):
            frame_seg.model_every = MATTE_MODEL_EVERY
    halt = _Halt(stop, failed)

    reading = video.ReadState()

    def decode():
        try:
            start = None
            stop, seek = options.max_frames, None
            if span is not None:
                stop, seek = span.stop, (span.seek_pts, span.seek_index)
            for f in video.read_frames(src, stop, state=reading, seek=seek):
                if span is not None and f.index < span.first:
                    continue  # decoded on the way from the source keyframe to the warm-up
                # The probed duration is only what the header says (nothing, for a raw or live
                # stream): the limit holds for the frames themselves.
                start = (f.pts if span is None else span.origin_pts) if start is None else start
                if max_duration is not None and (f.pts - start) * f.time_base >= max_duration:
                    raise InputError(f"The video is longer than the limit of {max_duration:g} s.")
                if frame_limit is not None and f.index >= frame_limit:
                    raise InputError(f"The video has more than {frame_limit:,} frames; the limit is {frame_limit:,}.")
                if not _put(frames_q, f, halt):
                    return
        finally:
            _put(frames_q, _END, halt)

    def infer():
        try:
            while True:
                f = _get(frames_q, halt)
                if f is _END:
                    return
                if not _put(maps_q, (f, frame_seg(f.rgb, f.index)), halt):
                    return
        finally:
            _put(maps_q, _END, halt)

    labels = (labels_writer(labels_out, info.width, info.height, export_info(segmenter, float(info.fps)))
              if labels_out else None)
    t0 = time.perf_counter()
    stages = [_Stage(decode, "decode", failed), _Stage(infer, "infer", failed)]
    for s in stages:
        s.start()
    labels_written = False
    first_pts = None
    try:
        with video.VideoSink(dst, out_w, out_h, info.fps, info.time_base, audio_from=None if span else src,
                             crf=options.crf, preset=options.preset or PRESETS[options.speed],
                             alpha=dopts.mode is Mode.REMOVE_BACKGROUND) as sink:
            while True:
                item = _get(maps_q, halt)
                if item is _END:
                    break
                f, answer = item
                if span is not None and f.index < span.start:
                    continue  # the warm-up: segmented, not written
                cm = answer.class_map
                sink.write(draw.render(f.rgb, cm, segmenter.palette, dopts, answer.matte, person), f.pts, f.duration)
                counts = draw.class_histogram(cm)
                hist += counts
                first_pts = f.pts if first_pts is None else first_pts
                origin = first_pts if span is None else span.origin_pts
                t = float((f.pts - origin) * f.time_base)  # on the output's clock: its first frame is 0
                timeline.add(f.index, t, counts)
                if labels is not None:
                    labels.add(cm, t)
                frames += 1
                if progress is not None:
                    progress(frames, max(total, frames))
            for s in stages:
                s.join()
            _raise_stage_errors(stages)
            if stop.is_set():
                raise Cancelled("Cancelled; no output was kept.")
            if labels is not None:  # before the video is finished: if this fails, no video either
                labels.close()
                labels_written = True
            end_time, end_pts = sink.end_time, sink.end_pts
            first_written = sink.first_pts
    except BaseException:
        failed.set()
        if labels_written:  # the video could not be finished: take its labels back
            Path(labels_out).unlink(missing_ok=True)
        elif labels is not None:
            labels.abort()
        for s in stages:
            s.join(timeout=10)
        err = next((s.error for s in stages if s.error is not None), None)
        if err is not None and not isinstance(err, Cancelled):
            raise err from None
        raise
    seconds = time.perf_counter() - t0
    legend = draw.legend(hist, segmenter.labels, segmenter.palette, dopts.classes)
    return VideoResult(Path(dst), frames, frame_seg.keyframes, info, info.fps, seconds, legend,
                       segmenter.entry.id, options.speed, options.temporal, timeline,
                       "" if span else reading.shortfall(info.frames, options.max_frames), hist, first_written, end_time,
                       end_pts)


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
