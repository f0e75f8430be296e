"""A running job's stop and progress: ``JobStop`` (why it was stopped), ``DiskWatch`` (its files
within their disk reservation) and ``FrameRate`` (progress with frames per second)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from segmentation.pipeline import Cancelled

from .store import TempStore


class JobStop:
    """A job's cancel event, and why the job itself set it ("time", "disk"); None when someone
    else did (Stop, a client gone)."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.reason: str | None = None
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        with self._lock:
            if not self.event.is_set():
                self.reason = reason
                self.event.set()


class DiskWatch:
    """A pipeline progress callback that keeps the job's result within its disk reservation:
    every ``interval`` s it measures the job folder and, past the reservation, grows it by a
    quarter (oldest results go) or stops the job ("disk") when the budget cannot hold it.
    ``raise_when_stopped``: also raise ``Cancelled`` once the job is stopped (for work outside the
    pipeline, which watches the event itself)."""

    def __init__(self, store: TempStore, job: Path, stop: JobStop, progress: Callable[[int, int], None] | None,
                 interval: float = 0.5, raise_when_stopped: bool = False):
        self.store, self.job, self.stop, self.progress, self.interval = store, job, stop, progress, interval
        self.raise_when_stopped = raise_when_stopped
        self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            if not self.store.grow(self.job, self.store.folder_bytes(self.job)):
                self.stop("disk")
        if self.raise_when_stopped and self.stop.event.is_set():
            raise Cancelled("Cancelled; no output was kept.")
        if self.progress is not None:
            self.progress(done, total)


class FrameRate:
    """Wraps a ``progress(done, total, frames_per_second)`` reporter as a pipeline callback."""

    def __init__(self, report: Callable[[int, int, float], None], min_interval: float = 0.0):
        self.report = report
        self.min_interval = min_interval
        self._t0: float | None = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        rate = (done - 1) / (now - self._t0) if done > 1 and now > self._t0 else 0.0
        if done >= total or now - self._last >= self.min_interval:
            self._last = now
            self.report(done, total, rate)
