"""Many inputs, one command: a batch that resumes, isolates failures and runs locally or on Ray.

``run_batch(inputs, out_dir, options)`` expands files, folders (searched
recursively) and glob patterns, tells videos from photos by content
(:func:`media.sniff_kind`) and writes one output per input under
``out_dir``, mirroring the input tree: a video becomes ``NAME.mp4``, a photo
``NAME.png``, their class ids ``NAME.labels.<format>`` when a labels format is
asked for. Every output is written atomically and followed by a small
manifest ``NAME.mp4.json`` (input size, mtime and sha256, model, settings,
library version, output size and sha256), itself written atomically *after*
the output. A rerun skips an input whose manifest matches: same input, same
model and settings, outputs intact; ``overwrite`` redoes it.

The per-input work is one function, :func:`process_one` (``Job`` in,
``Outcome`` out, never raises), called in the same process (``workers=0``),
by a pool of spawned processes (``workers=N``, each with its own model and
thread budget) or by one Ray task per input (``ray=ADDRESS``). A broken or
refused input is an ``Outcome`` with a one-line reason; the batch goes on. A
worker process that dies is retried alone, then reported. At the end
``OUT_DIR/batch-report.json`` lists every input with its outcome.

The modules: ``types`` (options, job, outcome, report), ``inputs`` (finding
inputs, naming outputs), ``manifest`` (what makes an output current),
``worker`` (``process_one``), ``executors`` (this process, a process pool,
Ray), ``split`` (long videos cut into chunks), ``run`` (``run_batch``).
"""

from .executors import RAY_MAX_RETRIES, Task, run_inline, run_pool, run_ray
from .inputs import OUTPUT_SUFFIX, batch_files, expand_inputs, has_glob, plan
from .manifest import is_current
from .run import DEFAULT_THREADS_PER_WORKER, check_model, check_ray_paths, default_workers, run_batch
from .types import (MANIFEST_SUFFIX, MANIFEST_VERSION, REPORT_NAME, BatchOptions, BatchReport, Job, Outcome, Status,
                    labels_formats, labels_suffix, library_version, one_line, worker_name)
from .worker import process_one

__all__ = [
    "BatchOptions", "BatchReport", "Job", "Outcome", "Status", "Task",
    "DEFAULT_THREADS_PER_WORKER", "MANIFEST_SUFFIX", "MANIFEST_VERSION", "OUTPUT_SUFFIX", "RAY_MAX_RETRIES",
    "REPORT_NAME", "batch_files", "check_model", "check_ray_paths", "default_workers", "expand_inputs",
    "has_glob", "is_current", "labels_formats", "labels_suffix", "library_version", "one_line", "plan",
    "process_one", "run_batch", "run_inline", "run_pool", "run_ray", "worker_name",
]
