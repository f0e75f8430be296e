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
"""

from __future__ import annotations

import io
import queue
import threading
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from . import draw, video
from .draw import DrawOptions, LegendItem
from .errors import InputError, SegmentationError
from .files import atomic_path
from .images import load_image
from .segmenter import Segmenter, upscale_nearest
from .temporal import Speed, TemporalOptions, check_speed, frame_segmenter

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

    def __post_init__(self):
        object.__setattr__(self, "speed", check_speed(self.speed))


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


def sniff_kind(path: str | Path) -> str:
    """"image" or "video", decided from the file's content, not its name."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"File not found: {path}")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    with open(p, "rb") as f:
        head = f.read(64)
    if head.startswith(b"GIF8"):
        return "video"  # animated or not, a GIF is decoded frame by frame
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # load_image applies the limits
            with Image.open(p) as im:
                if getattr(im, "n_frames", 1) > 1 and im.format in ("WEBP", "PNG"):
                    return "video"
                return "image"
    except Image.DecompressionBombError:
        return "image"  # far too many pixels: load_image refuses it with the numbers
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "video"


# -- images -------------------------------------------------------------------------
def segment_image(segmenter: Segmenter, image: str | Path | bytes | np.ndarray,
                  options: DrawOptions = DrawOptions()) -> ImageResult:
    """Segment one image (path, bytes or RGB array) and draw it."""
    t = time.perf_counter()
    rgb = image if isinstance(image, np.ndarray) else load_image(image)
    res = segmenter.segment(rgb)
    out = draw.render(rgb, res.class_map, res.palette, options)
    items = draw.legend(res.class_map, res.labels, res.palette, options.classes)
    return ImageResult(rgb, out, res.class_map, items, segmenter.entry.id, time.perf_counter() - t)


def save_labels_png(class_map: np.ndarray, path: str | Path) -> None:
    """Class ids as a single-channel 8-bit PNG of the class map's size."""
    from PIL import Image

    Image.fromarray(class_map.astype(np.uint8), mode="L").save(path)


# -- labels .npz, streamed --------------------------------------------------------------
class LabelsNpzWriter:
    """Writes ``labels`` (uint8 [frames, h, w]) into a compressed .npz without holding it all.

    Frames are kept zlib-compressed in memory (class maps compress ~100x) and
    streamed into the zip entry on close, once the frame count is known.
    """

    def __init__(self, path: str | Path, width: int, height: int):
        self.path, self.w, self.h = Path(path), width, height
        self._chunks: list[bytes] = []

    def add(self, class_map: np.ndarray) -> None:
        cm = upscale_nearest(class_map, (self.w, self.h))
        self._chunks.append(zlib.compress(np.ascontiguousarray(cm, dtype=np.uint8).tobytes(), 1))

    def close(self) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": (len(self._chunks), self.h, self.w)})
        with atomic_path(self.path) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
                with z.open("labels.npy", "w", force_zip64=True) as f:
                    f.write(header.getvalue())
                    for c in self._chunks:
                        f.write(zlib.decompress(c))


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
                  max_duration: float | None = None, max_pixels: int | None = None) -> VideoResult:
    """Segment every frame of ``src`` into an H.264 MP4 at ``dst`` (see module docstring).

    ``progress(done, total)`` is called from the encoder thread after each
    frame. Setting ``cancel`` stops all stages and removes the partial output.
    """
    info = video.probe(src)
    if max_duration is not None and info.duration > max_duration:
        raise InputError(f"The video is {info.duration:.1f} s long; the limit is {max_duration:.0f} s.")
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise InputError(f"The video is {info.width}x{info.height}; the limit is {max_pixels:,} pixels per frame.")
    total = info.frames or max(1, round(info.duration * float(info.fps)))
    if options.max_frames:
        total = min(total, options.max_frames)
    out_w, out_h = draw.output_size(info.width, info.height, options.draw.mode)
    stop = cancel or threading.Event()
    failed = threading.Event()
    frames_q: queue.Queue = queue.Queue(QUEUE_SIZE)
    maps_q: queue.Queue = queue.Queue(QUEUE_SIZE)
    hist = np.zeros(256, dtype=np.int64)
    frames = 0
    labels = LabelsNpzWriter(labels_out, info.width, info.height) if labels_out else None
    frame_seg = frame_segmenter(segmenter, options.speed, float(info.fps), options.temporal, options.fusion)
    halt = _Halt(stop, failed)

    def decode():
        try:
            start = None
            for f in video.read_frames(src, options.max_frames):
                # The probed duration is only what the header says (nothing, for a raw or live
                # stream): the limit holds for the frames themselves.
                start = f.pts if start is None else start
                if max_duration is not None and (f.pts - start) * f.time_base >= max_duration:
                    raise InputError(f"The video is longer than the limit of {max_duration:g} s.")
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
                if not _put(maps_q, (f, frame_seg(f.rgb).class_map), halt):
                    return
        finally:
            _put(maps_q, _END, halt)

    t0 = time.perf_counter()
    stages = [_Stage(decode, "decode", failed), _Stage(infer, "infer", failed)]
    for s in stages:
        s.start()
    labels_written = False
    try:
        with video.VideoSink(dst, out_w, out_h, info.fps, info.time_base, audio_from=src,
                             crf=options.crf, preset=options.preset or PRESETS[options.speed]) as sink:
            while True:
                item = _get(maps_q, halt)
                if item is _END:
                    break
                f, cm = item
                sink.write(draw.render(f.rgb, cm, segmenter.palette, options.draw), f.pts, f.duration)
                hist += draw.class_histogram(cm)
                if labels is not None:
                    labels.add(cm)
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
    except BaseException:
        failed.set()
        if labels_written:  # the video could not be finished: take its labels back
            Path(labels_out).unlink(missing_ok=True)
        for s in stages:
            s.join(timeout=10)
        err = next((s.error for s in stages if s.error is not None), None)
        if err is not None and not isinstance(err, Cancelled):
            raise err from None
        raise
    seconds = time.perf_counter() - t0
    legend = draw.legend(hist, segmenter.labels, segmenter.palette, options.draw.classes)
    return VideoResult(Path(dst), frames, frame_seg.keyframes, info, info.fps, seconds, legend,
                       segmenter.entry.id, options.speed, options.temporal)


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
