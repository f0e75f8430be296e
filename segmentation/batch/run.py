"""Running a batch: plan the jobs, skip what is current, run the rest, write the report.

:func:`run_batch` checks what can be checked before any work (the model and
its classes; with Ray, every input present and OUT_DIR absolute), plans one
job per input (``inputs.plan``), skips those whose manifest says their
outputs are current, cuts long videos into chunks when several workers
share the batch (``split``), and hands the rest to a runner (``executors``).
Its report, ``OUT_DIR/batch-report.json``, lists every input's outcome.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..catalog import resolve_model
from ..draw import chosen_classes
from ..errors import InputError
from ..files import atomic_path
from ..segmenter import check_labels_file
from .executors import RAY_MAX_RETRIES, Task, run_inline, run_pool, run_ray
from .inputs import expand_inputs, has_glob, plan
from .manifest import is_current
from .types import KINDS, REPORT_NAME, BatchOptions, BatchReport, Job, Outcome, Status
from .worker import process_one

# Measured with benchmarks/batch.py on this 2-core machine (benchmarks/results-batch.md): on a
# folder of short clips 2 processes x 1 model thread made 54-60 frames/s, 1 x 2 threads 40-42.
DEFAULT_THREADS_PER_WORKER = 1


def check_ray_paths(inputs: Sequence[str], out_dir: str | os.PathLike, address: str) -> None:
    """Before anything is submitted: OUT_DIR absolute (every node writes there) and every input present."""
    if address != "local" and not Path(out_dir).expanduser().is_absolute():
        raise InputError(f"With --ray the output folder must be an absolute path on storage every node "
                         f"shares, not {str(out_dir)!r}.")
    missing = [s for s in inputs if not Path(s).expanduser().exists() and not (
        has_glob(str(s)) and expand_inputs([s], Path(out_dir))[0])]
    if missing:
        raise InputError(f"With --ray every input must exist before anything is submitted; not found: "
                         f"{', '.join(map(str, missing[:5]))}" + (" ..." if len(missing) > 5 else ""))


def check_model(options: BatchOptions) -> None:
    """Before any input: the model exists (ModelError) and knows the --classes (InputError)."""
    entry = resolve_model(options.model, options.labels_file)
    check_labels_file(options.model, options.labels_file)
    if options.classes and entry.labels:
        chosen_classes(options.classes, entry.labels)


def default_workers(jobs: int | None = None) -> int:
    """One process per core (see DEFAULT_THREADS_PER_WORKER), never more than there are jobs."""
    n = max(1, (os.cpu_count() or 1) // DEFAULT_THREADS_PER_WORKER)
    return max(1, min(n, jobs)) if jobs is not None else n


def run_batch(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
              options: BatchOptions = BatchOptions(), *, workers: int | None = None, threads: int | None = None,
              overwrite: bool = False, ray: str | None = None, ray_max_retries: int = RAY_MAX_RETRIES,
              task: Task = process_one, on_outcome: Callable[[Outcome], None] | None = None,
              on_start: Callable[[int], None] | None = None, split: bool = True) -> BatchReport:
    """Segment every input into ``out_dir`` (see the package docstring) and write its report.

    ``workers``: 0 runs in this process; N a pool of N spawned processes;
    None: :func:`default_workers`. ``threads``: model threads per worker
    (default: the cores split between workers; 1 per Ray task). ``ray``: a
    cluster address, "auto", or "local"; an already initialised Ray is used
    as it is. ``task`` is what runs each job (tests wrap ``process_one``).
    ``on_start(number of inputs)`` and ``on_outcome(outcome)`` (once per input,
    skipped and refused ones first) report progress. ``split``: a video longer than a fair share
    of the batch is cut into chunks that run beside the other inputs (``split``).
    """
    inputs = [str(i) for i in inputs]
    if ray is not None:
        check_ray_paths(inputs, out_dir, ray)
    check_model(options)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"The output {str(out_dir)!r} exists and is not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if ray is None:
        workers = default_workers() if workers is None else workers
        threads = threads or (max(1, (os.cpu_count() or 1) // workers) if workers else None)
    else:
        threads = threads or 1
    jobs, known = plan(inputs, out, options, threads=threads, overwrite=overwrite)
    todo = []
    for job in jobs:  # current outputs are skipped here, before any worker starts
        if not overwrite and is_current(job):
            known.append(Outcome(job.input, Status.SKIPPED, job.kind, job.output, job.labels))
        else:
            todo.append(job)
    if on_start:
        on_start(len(jobs) + sum(o.status != Status.SKIPPED for o in known))
    outcomes: dict[str, Outcome] = {}
    runner = _run_jobs(todo, known, outcomes, workers, threads, ray, ray_max_retries, task, on_outcome, split)
    report = BatchReport(out, sorted(outcomes.values(), key=lambda o: o.input), time.perf_counter() - t0, runner,
                         {k: options.settings(k) for k in KINDS} | {"labels_format": options.labels_format})
    with atomic_path(out / REPORT_NAME) as tmp:
        tmp.write_text(json.dumps(report.to_json(), indent=1))
    return report


def _run_jobs(todo: list[Job], known: list[Outcome], outcomes: dict[str, Outcome], workers: int | None,
              threads: int | None, ray: str | None, ray_max_retries: int, task: Task,
              on_outcome: Callable[[Outcome], None] | None, split: bool) -> str:
    """Record the ``known`` outcomes, run ``todo`` on the runner asked for (long videos cut into
    chunks), fill ``outcomes`` by input; return how they ran, in words."""
    groups: dict = {}  # long videos cut into chunks (split), by input
    if split and todo and (ray is not None or (workers or 0) > 1):
        from .split import RunTask, split_long_inputs, worker_count

        todo, groups = split_long_inputs(todo, worker_count(workers, ray), threads)
        task = RunTask(task) if groups else task

    def record(job: Job | None, outcome: Outcome) -> None:
        if job is not None and not isinstance(job, Job):  # a chunk: its input is done with its last chunk
            job, outcome = groups[job.input].job, groups[job.input].add(job, outcome)
            if outcome is None:
                return
        outcomes[outcome.input] = outcome
        if on_outcome:
            on_outcome(outcome)

    for o in known:
        record(None, o)
    if ray is not None:
        return run_ray(todo, ray, threads, task, record, ray_max_retries) if todo else f"ray ({ray})"
    if workers == 0 or not todo:
        run_inline(todo, task, record)
        return "this process"
    n = min(workers, len(todo))
    run_pool(todo, n, threads, task, record)
    return f"{n} process{'es' * (n != 1)} x {threads} thread{'s' * (threads != 1)}"
