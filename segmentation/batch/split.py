"""Batches that split their long videos into chunks, so one huge file and many small ones finish together.

Before a batch runs, each video's frame count is read from its header. A
video longer than a fair share of the batch (all frames / workers) is cut
into about ``frames / share`` chunks (``chunks.plan_chunks``), which join
the other inputs' jobs in the same pool or on the same Ray cluster (the
runners run :class:`RunTask`: a chunk or a whole input). When the last chunk
of a video is back, the driver stitches it (``chunks.stitch``), writes its
manifest and reports it as one input: the report, resume and failure
isolation are the batch's own. A chunk that fails (after Ray's retries, or
twice in the pool) fails its input.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..chunks import (MIN_CHUNK_FRAMES, ChunkDone, ChunkJob, chunk_jobs, chunkable, plan_chunks, run_chunk,
                      stitch)
from ..errors import InputError
from ..media import MediaKind
from ..segmenter import SegmenterOptions
from .executors import Task
from .manifest import file_record, remove_stale_parts, write_manifest
from .types import Job, Outcome, Status, one_line
from .worker import segmenter


@dataclasses.dataclass(frozen=True)
class RunTask:
    """What the runners call for each job: ``run_chunk`` for a chunk, ``task`` for a whole input."""

    task: Task

    def __post_init__(self):
        # the pool's workers skip the calling script unless the task comes from it (executors._children_skip_main)
        object.__setattr__(self, "__module__", getattr(self.task, "__module__", __name__))

    def __call__(self, job):
        return run_chunk(job) if isinstance(job, ChunkJob) else self.task(job)


def _frames(job: Job) -> int:
    from ..video import probe

    try:
        info = probe(job.input)
    except Exception:  # noqa: BLE001 - a bad input fails in its own job
        return 0
    n = info.frames or round(info.duration * float(info.fps))
    return min(n, job.options.video.max_frames) if job.options.video.max_frames else n


class ChunkedInput:
    """One input of the batch cut into chunks: its chunk jobs, and its outcome once they are back."""

    def __init__(self, job: Job, chunks: list[ChunkJob], folder: Path, options, segmenter, input_rec: dict):
        self.job, self.chunks, self.folder = job, chunks, folder
        self.options, self.segmenter, self.input_rec = options, segmenter, input_rec
        self.done: dict[int, ChunkDone] = {}
        self.failed = ""
        self.t0 = time.perf_counter()

    @classmethod
    def prepare(cls, job: Job, count: int, threads: int | None) -> "ChunkedInput | None":
        """The chunks of ``job`` (None when it cannot or need not be cut: it then runs whole)."""
        options = job.options.video
        if chunkable(options, job.output):
            return None
        spans = plan_chunks(job.input, options, count)
        if len(spans) < 2:
            return None
        seg = segmenter(job.options, threads)
        try:
            options = job.options.video_for(seg.labels)
        except InputError:
            return None  # refused in its own job, with the sentence
        Path(job.manifest).unlink(missing_ok=True)  # an output without a manifest is never trusted
        remove_stale_parts(job.output, job.labels, job.manifest)
        out = Path(job.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in out.parent.glob(f".{glob.escape(out.name)}.chunks-*"):  # a killed earlier run's chunks
            shutil.rmtree(stale, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.chunks-", dir=out.parent))
        seg_opts = SegmenterOptions(model=job.options.model, labels_file=job.options.labels_file,
                                    threads=threads, resize=job.options.resize)
        jobs = chunk_jobs(job.input, options, seg_opts, spans, folder, job.labels is not None)
        return cls(job, jobs, folder, options, seg, file_record(job.input))

    def add(self, chunk: ChunkJob, outcome) -> Outcome | None:
        """Record one chunk's outcome; the input's Outcome when it was the last."""
        if isinstance(outcome, ChunkDone):
            self.done[chunk.number] = outcome
        else:
            self.failed = self.failed or f"chunk {chunk.number + 1} of {len(self.chunks)}: {outcome.reason}"
            self.done[chunk.number] = None
        if len(self.done) < len(self.chunks):
            return None
        return self.finish()

    def finish(self) -> Outcome:
        job = self.job
        base = Outcome(job.input, Status.DONE, job.kind, job.output, job.labels, worker="chunks")
        try:
            if self.failed:
                raise RuntimeError(self.failed)
            done = [self.done[c.number] for c in self.chunks]
            res = stitch(self.segmenter, job.input, job.output, self.options, self.chunks, done, job.labels,
                         time.perf_counter() - self.t0)
            workers = sorted({d.worker for d in done})
            outcome = dataclasses.replace(base, frames=res.frames, seconds=time.perf_counter() - self.t0,
                                          model_id=self.segmenter.entry.id,
                                          worker=f"{len(self.chunks)} chunks on " + ", ".join(workers))
            write_manifest(job, self.input_rec, outcome)
            return outcome
        except Exception as exc:  # noqa: BLE001 - this input's outcome
            for p in (job.output, job.labels):
                if p and self.failed:
                    Path(p).unlink(missing_ok=True)
            return dataclasses.replace(base, status=Status.FAILED, reason=one_line(exc),
                                       seconds=time.perf_counter() - self.t0)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def split_long_inputs(jobs: list[Job], workers: int, threads: int | None) -> tuple[list, dict[str, ChunkedInput]]:
    """``jobs`` with every video longer than a fair share (all frames / ``workers``, and at least
    two chunks of ``MIN_CHUNK_FRAMES``) replaced by its chunks; the chunked inputs by input path."""
    videos = {j.input: _frames(j) for j in jobs if j.kind == MediaKind.VIDEO}
    share = sum(videos.values()) / max(1, workers)
    out: list = []
    groups: dict[str, ChunkedInput] = {}
    for job in jobs:
        n = videos.get(job.input, 0)
        count = min(math.ceil(n / share), n // MIN_CHUNK_FRAMES) if share and n else 1
        group = ChunkedInput.prepare(job, count, threads) if count > 1 else None
        if group is None:
            out.append(job)
        else:
            groups[job.input] = group
            out += group.chunks
    return out, groups


def worker_count(workers: int | None, ray: str | None) -> int:
    """How many jobs run at once: the pool's size, or the Ray cluster's CPUs (this machine's when
    Ray is not up yet)."""
    if ray is None:
        return max(1, workers or 1)
    try:
        import ray as _ray

        if _ray.is_initialized():
            return max(1, int(_ray.cluster_resources().get("CPU", 1)))
    except ImportError:
        pass
    return max(2, os.cpu_count() or 1)
