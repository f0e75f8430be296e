"""Where a batch's jobs run: in this process, in a pool of spawned processes, or as Ray tasks.

Every runner takes the jobs, the task that turns one job into an Outcome
(``worker.process_one``, or a chunk's ``chunks.run_chunk``) and a callback
that receives each (job, outcome) as it comes back; a worker that dies
becomes a failed Outcome for its job alone. The task is pickled by its
module path, so it must be importable in a fresh process or on a Ray node.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

from .. import config, weights
from ..errors import InputError
from .types import Job, Outcome, Status, one_line

RAY_MAX_RETRIES = 3  # Ray's own default, spelled out: a task whose worker dies is run again

Task = Callable[[Job], Outcome]
OnOutcome = Callable[[Job, Outcome], None]  # the runners' callback; run_batch's own takes the Outcome


def _worker_setup(threads: int | None) -> None:
    """A batch worker process: OpenCV's pool gets the same thread budget as the model."""
    if threads:
        import cv2

        cv2.setNumThreads(threads)


def died(job: Job, why: str) -> Outcome:
    """The failed Outcome of a job whose worker (process or Ray task) did not come back."""
    return Outcome(job.input, Status.FAILED, job.kind, job.output, job.labels, reason=why)


def run_inline(jobs: Sequence[Job], task: Task, on_outcome: OnOutcome) -> None:
    """Each job in this process, one after the other."""
    for job in jobs:
        on_outcome(job, task(job))


def run_pool(jobs: Sequence[Job], workers: int, threads: int | None, task: Task, on_outcome: OnOutcome,
              context: str = "spawn") -> None:
    """``workers`` spawned processes, each loading its own model. A worker that dies (a native
    crash, the OOM killer) breaks the pool: the jobs it held in flight are run again one at a
    time, each in a fresh process, so only the input that kills its worker is reported; the
    rest go on in a new pool."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context(context)

    def pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_setup, initargs=(threads,))

    todo = deque(jobs)
    with _children_skip_main(task):
        _pool_loop(todo, workers, task, on_outcome, pool)


@contextlib.contextmanager
def _children_skip_main(task: Task):
    """Spawned workers do not run the caller's script again: they need only this package (the
    task is importable from it). Without this, ``run_batch`` in a plain script with no
    ``if __name__ == "__main__":`` guard ran again in every worker (a RuntimeError traceback, each
    input "the worker process died"), and from standard input failed (``'<stdin>'`` not found).
    A task defined in the script itself keeps the usual behaviour (it needs the script)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(task, "__module__", None) == "__main__":
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            main.__dict__.pop("__spec__", None)


def _pool_loop(todo: deque, workers: int, task: Task, on_outcome: OnOutcome, pool) -> None:
    from concurrent.futures.process import BrokenProcessPool

    while todo:
        with pool(workers) as ex:
            in_flight = _pool_pass(ex, todo, workers, task, on_outcome)
        for job in in_flight:
            with pool(1) as ex:
                try:
                    outcome = ex.submit(task, job).result()
                except BrokenProcessPool:
                    outcome = died(job, "the worker process died while processing this input (crash or killed)")
            on_outcome(job, outcome)


def _pool_pass(ex, todo: deque, workers: int, task: Task, on_outcome: OnOutcome) -> list[Job]:
    """Run ``todo`` (consumed) on ``ex`` until done or the pool breaks; return the jobs in flight then."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    running: dict = {}
    broken: list[Job] = []
    while (todo or running) and not broken:
        while todo and len(running) < 2 * workers:  # a short queue: the bar shows real progress
            job = todo.popleft()
            running[ex.submit(task, job)] = job
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            job = running.pop(fut)
            try:
                on_outcome(job, fut.result())
            except BrokenProcessPool:
                broken.append(job)
    for fut, job in running.items():  # the pool broke: what finished still counts
        if fut.done() and fut.exception() is None:
            on_outcome(job, fut.result())
        else:
            broken.append(job)
    return broken


def _ray_task(task: Task, threads: int | None, job: Job) -> Outcome:
    _worker_setup(threads)
    return task(job)


def run_ray(jobs: Sequence[Job], address: str, threads: int, task: Task, on_outcome: OnOutcome,
             max_retries: int = RAY_MAX_RETRIES) -> str:
    """One Ray task per job on the cluster at ``address`` ("local": a Ray started here), each
    needing ``threads`` CPUs. Uses an already initialised Ray as it is."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'video-segmentation[ray]' "
                         "(or pip install 'ray>=2.9').") from None
    started = False
    if not ray.is_initialized():
        if address == "local":
            folder = config.read(weights.ENV_VAR)
            env = {weights.ENV_VAR: str(Path(folder).resolve())} if folder else {}
            ray.init(include_dashboard=False, runtime_env={"env_vars": env} if env else None,
                     log_to_driver=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError as exc:
                raise InputError(f"Cannot reach a Ray cluster at {address!r}: {one_line(exc)}. Start one with "
                                 "`ray start --head` (or use --ray local); a cluster with token authentication "
                                 "(Ray >= 2.59 `ray start` on one machine) also needs RAY_AUTH_MODE=token and its "
                                 "token (`ray get-auth-token`) here.") from None
        started = True
    try:
        remote = ray.remote(_ray_task).options(num_cpus=threads, max_retries=max_retries,
                                               name="segmentation.batch")
        refs = {remote.remote(task, threads, job): job for job in jobs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            more, pending = ray.wait(pending, num_returns=len(pending), timeout=0) if pending else ([], [])
            for ref in ready + more:
                job = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task's worker died past its retries, node lost, ...
                    outcome = died(job, f"Ray task failed after {max_retries} retries: {one_line(exc)[:300]}")
                on_outcome(job, outcome)
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        return f"ray, {nodes} node{'s' * (nodes != 1)}, {threads} thread{'s' * (threads != 1)} per task"
    finally:
        if started:
            ray.shutdown()
