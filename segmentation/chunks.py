"""One long video on several processes or Ray nodes: cut into chunks, segmented apart, stitched.

``segment_video_chunks`` gives the same result as ``pipeline.segment_video``
(frame count, every frame's timestamp, the audio, the labels), with the
video cut into chunks at frame boundaries:

* **Plan** (:func:`plan_spans`): the source's packets are read once, without
  decoding, for every frame's timestamp and the frames a decoder can start
  at (its keyframes). Each chunk but the first starts near an even split,
  ``warm-up`` frames after a frame it may start on (accurate: any; realtime:
  a restart), which it reaches by seeking to the source keyframe before it:
  decoding a chunk costs its frames, its warm-up and less than one source
  keyframe interval (GOP) more, decoded but not segmented.
* **Warm-up** (accurate): a chunk first segments the ``WARMUP_ACCURATE`` = 90
  frames before it without writing them, so the fusion enters the chunk in
  the state a single pass has there. The fused scores keep
  ``(1 - new_weight)`` = 0.65 of the history per frame (less where the warp
  fails): what the chunk did not see weighs 0.65**90 ~ 1e-17, far below
  float32's resolution. The class that holds a cell gets a small bonus
  (``stickiness``), so a cell whose evidence stays within that bonus of a
  tie for the whole warm-up can keep a different class for a while: rare,
  and measured (the tests and ``benchmarks/chunks.py``).
* **Realtime** (frame-index keyframes) starts afresh every
  ``TemporalOptions.restart_interval`` frames (as on a scene cut), and its
  keyframe schedule depends only on the frames since then: a realtime chunk
  starts at such a frame, needs no warm-up, and equals the single pass bit
  for bit. With fusion off there is no history either: no warm-up.
* **Chunks** run ``segment_video`` with a ``pipeline.Span`` (same encoder
  settings, no audio), each in its own process (``workers``) or Ray task
  (``ray``), writing its video and labels into a hidden folder beside the
  output; a chunk whose worker dies is run again.
* **Stitch** (``stitch``): the chunks' H.264 packets are copied into one MP4,
  each keeping its timestamps (moved by the chunk's start); the audio is
  taken once from the source by the code ``VideoSink`` uses; the labels are
  read back frame by frame into the ``labels_out`` format; the timeline and
  legend are merged.

A chunk can start anywhere, so a video split in N chunks and the same video
in one pass are compared frame by frame in ``tests/system/test_chunks.py``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import InputError
from .exports import PART_SUFFIX
from .pipeline import Progress, Span, VideoOptions, VideoResult, segment_video, video_draw_options
from .segmenter import Segmenter, SegmenterOptions
from .temporal import Schedule, Speed

WARMUP_ACCURATE = 90  # frames: 0.65**90 ~ 1e-17 of the unseen history left (see the module docstring)
WARMUP_ANCHORS = 32  # realtime without restarts: keyframe anchors (0.5**32 ~ 2e-10)
MIN_CHUNK_FRAMES = 300  # never cut a video into chunks shorter than this (10 s at 30 fps) by default
RAY_MAX_RETRIES = 3
NOT_EXACT = "the video cannot be split exactly"  # a damaged file: it then runs in one pass


@dataclass(frozen=True)
class SourceIndex:
    """Every frame's pts in presentation order, and the indices of the frames a decoder can start at."""

    pts: np.ndarray  # int64, strictly increasing
    keyframes: np.ndarray  # int64 indices into pts, increasing
    time_base: Fraction


def source_index(path: str | Path) -> SourceIndex | None:
    """Read the video's packets (not decoding them); None when they cannot be told apart exactly
    (a packet without a timestamp, two with the same one): such a video runs in one pass."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts, keys = [], []
        for p in c.demux(v):
            if p.pts is None:
                if p.dts is None and p.size == 0:
                    continue  # the demuxer's flush marker
                return None
            pts.append(p.pts)
            if p.is_keyframe:
                keys.append(p.pts)
        tb = Fraction(v.time_base)
    arr = np.sort(np.asarray(pts, dtype=np.int64))
    if not len(arr) or np.any(np.diff(arr) <= 0) or not keys:
        return None
    return SourceIndex(arr, np.searchsorted(arr, np.sort(np.asarray(keys, dtype=np.int64))), tb)


def warmup(options: VideoOptions) -> tuple[int, int]:
    """(frames of warm-up, spacing of the frames a warm-up may start on) for ``options``: realtime
    starts chunks where it restarts anyway (``TemporalOptions.restart_interval``), without warm-up."""
    if options.speed is Speed.REALTIME:
        r = options.fusion.restart_interval
        return (0, r) if r > 0 else (WARMUP_ANCHORS * max(1, options.fusion.interval), options.fusion.interval)
    return (WARMUP_ACCURATE if options.temporal else 0), 1


def plan_spans(index: SourceIndex, frames: int, chunks: int, warm: int, anchor: int,
               min_frames: int = MIN_CHUNK_FRAMES) -> list[Span]:
    """Up to ``chunks`` spans covering frames 0..``frames``, each (but the first) starting ``warm``
    frames after an anchor at or after a source keyframe; none shorter than ``min_frames``. The
    cuts even out each chunk's frames *plus its warm-up* (a warm-up frame is segmented too): with
    2 chunks, 1,500 frames and 90 of warm-up, 795 + (705 + 90), not 750 + (750 + 90)."""
    pts, keys = index.pts, index.keyframes
    origin = int(pts[0])
    starts = [(0, 0, 0)]  # (start, first, seek index)
    n = max(1, chunks)
    share = (frames + (n - 1) * warm) / n  # each chunk's frames to segment, warm-up included
    for i in range(1, n):
        target = round(i * share - (i - 1) * warm)
        options = []
        cands = keys[keys <= target - warm]
        if len(cands):  # the warm-up at the first anchor after a source keyframe
            kf = int(cands[-1])
            options.append((kf, -(-kf // anchor) * anchor))
        first = max(0, round((target - warm) / anchor)) * anchor
        cands = keys[keys <= first]
        if len(cands):  # the source keyframe before the anchor nearest the target
            options.append((int(cands[-1]), first))
        if not options:
            continue
        # nearest the even split; a frame decoded for nothing costs ~1/10 of one segmented
        kf, first = min(options, key=lambda o: abs(o[1] + warm - target) + 0.1 * (o[1] - o[0]))
        start = first + warm
        if start - starts[-1][0] < min_frames or frames - start < min_frames:
            continue
        starts.append((start, first, kf))
    spans = []
    for n, (start, first, kf) in enumerate(starts):
        stop = starts[n + 1][0] if n + 1 < len(starts) else frames
        spans.append(Span(start, stop, first, kf, int(pts[kf]), origin))
    return spans


# -- one chunk, in a worker ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkJob:
    """One chunk of ``input`` for a worker process or Ray task (the attribute names are a batch
    ``Job``'s, so the batch runners run these too)."""

    input: str
    output: str  # the chunk's video
    labels: str | None  # the chunk's labels (exports.LabelsPartWriter), when the result has labels
    span: Span
    options: VideoOptions
    segmenter: SegmenterOptions
    progress: str  # a small file the worker writes its frame count to
    number: int = 0
    kind: str = "video"


@dataclass
class ChunkDone:
    """What a chunk's worker sends back (its files are at the job's paths)."""

    number: int
    result: VideoResult
    worker: str


_segmenters: dict = {}


def run_chunk(job: ChunkJob):
    """Segment one chunk (the task a pool or Ray runs); a failure is a batch ``Outcome``."""
    from .batch.types import Outcome, Status, one_line, worker_name

    try:
        key = job.segmenter
        if key not in _segmenters:
            _segmenters[key] = Segmenter(job.segmenter)
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] > 0.5 or done == total:
                last[0] = now
                Path(job.progress).write_text(str(done))

        res = segment_video(_segmenters[key], job.input, job.output, job.options, progress=progress,
                            labels_out=job.labels, span=job.span)
        want = job.span.stop - job.span.start
        if res.frames != want:
            raise InputError(f"{Path(job.input).name}: chunk {job.number} decoded {res.frames} frames where the "
                             f"index counts {want}; {NOT_EXACT}.")
        return ChunkDone(job.number, res, worker_name())
    except Exception as exc:  # noqa: BLE001 - reported by the driver
        return Outcome(job.input, Status.FAILED, "video", job.output, job.labels, reason=one_line(exc))


# -- the driver ------------------------------------------------------------------------------------
def chunkable(options: VideoOptions, dst: str | Path) -> str:
    """Why ``options``/``dst`` cannot be chunked ("" when they can)."""
    if options.speed is Speed.REALTIME and options.schedule is Schedule.CLOCK:
        return "realtime keyframes by the clock differ from run to run"
    if Path(dst).suffix.lower() not in (".mp4", ".m4v"):
        return "only MP4 outputs are stitched"
    return ""


def plan_chunks(src: str | Path, options: VideoOptions, chunks: int, min_frames: int = MIN_CHUNK_FRAMES,
                warm: int | None = None) -> list[Span]:
    """The spans for ``src`` (one span, or [] when it cannot be split exactly); ``warm``: frames of
    warm-up instead of :func:`warmup`'s (rounded up to whole anchors)."""
    index = source_index(src)
    if index is None:
        return []
    frames = len(index.pts) if not options.max_frames else min(len(index.pts), options.max_frames)
    default, anchor = warmup(options)
    warm = default if warm is None or not default else -(-warm // anchor) * anchor
    return plan_spans(index, frames, chunks, warm, anchor, min_frames)


def chunk_jobs(src: str | Path, options: VideoOptions, segmenter: SegmenterOptions, spans: list[Span],
               folder: Path, labels: bool) -> list[ChunkJob]:
    return [ChunkJob(os.path.abspath(src), str(folder / f"chunk{n:04d}.mp4"),
                     str(folder / f"chunk{n:04d}{PART_SUFFIX}") if labels else None, sp,
                     options, segmenter, str(folder / f"chunk{n:04d}.progress"), n)
            for n, sp in enumerate(spans)]


def segment_video_chunks(segmenter: Segmenter, src: str | Path, dst: str | Path,
                         options: VideoOptions = VideoOptions(), *, workers: int = 2, chunks: int | None = None,
                         ray: str | None = None, threads: int | None = None, progress: Progress | None = None,
                         labels_out: str | Path | None = None, min_frames: int = MIN_CHUNK_FRAMES,
                         warmup_frames: int | None = None, ray_max_retries: int = RAY_MAX_RETRIES, task=run_chunk) -> VideoResult:
    """``segment_video`` of ``src`` into ``dst`` with the video cut into ``chunks`` (default: one per
    worker) run by ``workers`` local processes, or as Ray tasks on the cluster at ``ray`` ("local":
    a Ray started here). The result equals a single pass's (module docstring); a video that
    cannot be cut (too short, MP4 output only, realtime by the clock, no exact frame index) runs
    in this process as ``segment_video``. ``segmenter``'s options are rebuilt in each worker.
    ``min_frames`` and ``warmup_frames`` (default :func:`warmup`) are for tests and experiments."""
    from .files import refuse_overwriting_input

    from .video import probe

    refuse_overwriting_input(src, {"dst": dst, "labels_out": labels_out})
    probe(src)  # a file that is no video is refused here, in one sentence
    n = chunks or (workers if ray is None else max(2, workers))
    spans = plan_chunks(src, options, n, min_frames, warmup_frames) if n > 1 and not chunkable(options, dst) else []
    if len(spans) < 2:
        return segment_video(segmenter, src, dst, options, progress=progress, labels_out=labels_out)
    t0 = time.perf_counter()
    seg_opts = dataclasses.replace(segmenter.options, threads=threads or 1)
    if ray is None:
        seg_opts = dataclasses.replace(seg_opts, threads=threads or max(1, (os.cpu_count() or 1) // workers))
    folder = Path(tempfile.mkdtemp(prefix=f".{Path(dst).name}.chunks-", dir=Path(dst).resolve().parent))
    try:
        jobs = chunk_jobs(src, options, seg_opts, spans, folder, labels_out is not None)
        try:
            done = run_chunks(jobs, workers, seg_opts.threads, ray, ray_max_retries, progress, task)
        except InputError as exc:
            if NOT_EXACT not in str(exc):
                raise
            # frames the index counts but the decoder drops (a damaged file): one pass, as without chunks
            return segment_video(segmenter, src, dst, options, progress=progress, labels_out=labels_out)
        return stitch(segmenter, src, dst, options, jobs, done, labels_out, time.perf_counter() - t0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_chunks(jobs: list[ChunkJob], workers: int, threads: int, ray: str | None, ray_max_retries: int,
               progress: Progress | None, task=run_chunk) -> list[ChunkDone]:
    """Run every chunk; one progress count over all of them; the first failure raises."""
    from .batch.executors import run_pool, run_ray

    results: dict[int, ChunkDone] = {}
    failures: list[str] = []
    total = sum(j.span.stop - j.span.start for j in jobs)

    def on_outcome(job, outcome) -> None:
        if isinstance(outcome, ChunkDone):
            results[job.number] = outcome
        else:
            failures.append(outcome.reason)

    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            progress(count(), total)

    def count() -> int:
        n = 0
        for j in jobs:
            if j.number in results:
                n += j.span.stop - j.span.start
                continue
            try:
                n += int(Path(j.progress).read_text() or 0)
            except (OSError, ValueError):
                pass
        return n

    watcher = threading.Thread(target=poll, daemon=True) if progress else None
    if watcher:
        watcher.start()
    try:
        if ray is None:
            run_pool(jobs, min(workers, len(jobs)), threads, task, on_outcome)
        else:
            run_ray(jobs, ray, threads, task, on_outcome, ray_max_retries)
    finally:
        stop.set()
        if watcher:
            watcher.join()
    if failures:
        raise InputError(failures[0])
    if progress:
        progress(total, total)
    return [results[j.number] for j in jobs]


def stitch(segmenter: Segmenter, src, dst, options: VideoOptions, jobs: list[ChunkJob], done: list[ChunkDone],
           labels_out, seconds: float) -> VideoResult:
    """The chunks' videos, labels, timelines and legends as one result (see ``stitching``)."""
    from . import draw
    from .stitching import merge_labels, stitch_video

    first, last = done[0].result, done[-1].result
    info = first.info
    origin = jobs[0].span.origin_pts
    end = float((last.end_pts - origin) * info.time_base)
    try:
        if labels_out is not None:
            merge_labels([j.labels for j in jobs], labels_out, segmenter, float(info.fps),
                         [d.result.timeline for d in done])
        stitch_video([j.output for j in jobs], [d.result.first_pts - origin for d in done], info.time_base,
                     src, dst, float(origin * info.time_base), end)
    except BaseException:
        if labels_out is not None:
            Path(labels_out).unlink(missing_ok=True)
        raise
    timeline = first.timeline
    hist = np.zeros(256, dtype=np.int64)
    for d in done:
        hist += d.result.histogram
        if d is not done[0]:
            timeline.extend(d.result.timeline)
    dopts = video_draw_options(options.draw, dst, segmenter.labels)
    legend = draw.legend(hist, segmenter.labels, segmenter.palette, dopts.classes)
    frames = sum(d.result.frames for d in done)
    return VideoResult(Path(dst), frames, sum(d.result.keyframes for d in done), info, info.fps, seconds, legend,
                       segmenter.entry.id, options.speed, options.temporal, timeline, "", hist,
                       first.first_pts, end, last.end_pts)
