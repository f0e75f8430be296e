"""The per-input work of a batch, as it runs in a worker process or a Ray task.

:func:`process_one` (``Job`` in, ``Outcome`` out, never raises) segments one
input with :func:`single.segment_file`, the same call as the single-file
command, then writes its manifest. Each process keeps one loaded model per
(model, labels, threads, resize), so a pool worker loads it once for all
its inputs.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..files import refuse_overwriting_input
from ..segmenter import Segmenter, SegmenterOptions
from ..single import segment_file
from .manifest import file_record, is_current, remove_stale_parts, write_manifest
from .types import BatchOptions, Job, Outcome, Status, one_line, worker_name

_segmenters: dict = {}  # one loaded model per (model, labels, threads, resize) in this process


def segmenter(options: BatchOptions, threads: int | None) -> Segmenter:
    """This process's model for ``options`` with ``threads`` model threads, loaded once."""
    key = (options.model, options.labels_file, threads, str(options.resize))
    if key not in _segmenters:
        _segmenters[key] = Segmenter(SegmenterOptions(model=options.model, labels_file=options.labels_file,
                                                      threads=threads, resize=options.resize))
    return _segmenters[key]


def process_one(job: Job) -> Outcome:
    """Segment one input into its outputs and manifest; skip it if they are current. Never raises
    for a bad input or model: the Outcome says what happened, in one line."""
    base = Outcome(job.input, Status.DONE, job.kind, job.output, job.labels, worker=worker_name())
    if not job.overwrite and is_current(job):
        return dataclasses.replace(base, status=Status.SKIPPED)
    t0 = time.perf_counter()
    try:
        refuse_overwriting_input(job.input, {"the output": job.output, "the labels": job.labels,
                                             "the manifest": job.manifest})
        Path(job.manifest).unlink(missing_ok=True)  # an output without a manifest is never trusted
        remove_stale_parts(job.output, job.labels, job.manifest)
        input_rec = file_record(job.input)
        seg = segmenter(job.options, job.threads)
        res = segment_file(seg, job.input, job.output, job.options.video_for(seg.labels), kind=job.kind,
                           labels_out=job.labels)
        done = dataclasses.replace(base, frames=res.frames, seconds=time.perf_counter() - t0,
                                   model_id=seg.entry.id, warning=res.warning)
        write_manifest(job, input_rec, done)
        return done
    except Exception as exc:  # noqa: BLE001 - every failure becomes this input's outcome
        return dataclasses.replace(base, status=Status.FAILED, reason=one_line(exc),
                                   seconds=time.perf_counter() - t0)
