"""The app's own folder for job outputs: ``TempStore`` (a disk budget, reservations, an age sweep).

Each job (``webapp.jobs``) writes its result, labels and previews into a folder of its own here.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

from segmentation.errors import InputError

log = logging.getLogger(__name__)


def _mb(nbytes: float) -> str:
    """Megabytes for a sentence: 2,048 / 1.5 / 0.25."""
    mb = nbytes / 2**20
    return f"{mb:,.0f}" if mb >= 100 else f"{mb:.1f}" if mb >= 1 else f"{mb:.2f}"


class TempStore:
    """The app's own folder for job outputs, within an age and a disk budget.

    Each job gets a folder with a reservation of the bytes it may write (``new_job``); a job that
    would not fit even after the oldest finished results are removed is refused with a sentence
    (``InputError``) before it writes anything. A running job may ``grow`` its reservation (the
    same eviction, or False when it cannot), and ``finish``/``discard`` end it. Finished job folders
    older than ``max_age`` seconds are swept in a background thread. ``max_bytes`` None: no budget.
    """

    def __init__(self, root: str | Path | None = None, max_age: float = 3600.0, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="segmentation-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self.max_bytes = max_bytes
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[Path, int] = {}  # folders of running jobs -> bytes reserved

    def new_job(self, reserve: int = 0) -> Path:
        """A new job folder holding ``reserve`` bytes of the budget; InputError when it cannot fit."""
        with self._lock:
            self._make_room(reserve)
            d = self.root / f"{int(time.time())}-{uuid.uuid4().hex[:10]}"
            d.mkdir(parents=True)
            self._open[d] = reserve
        return d

    def grow(self, job: Path, written: int) -> bool:
        """Keep ``written`` bytes of ``job`` within its reservation: past it, reserve a quarter more
        than written, removing the oldest results if need be; False when even that is not enough."""
        with self._lock:
            held = self._open.get(job)
            if held is None:
                return False
            if written > held:
                wanted = written + written // 4
                try:
                    self._make_room(wanted - held)
                except InputError:
                    return False
                self._open[job] = wanted
            return True

    def finish(self, job: Path) -> None:
        """The job is done: its folder now counts by what it holds, not by its reservation."""
        with self._lock:
            self._open.pop(job, None)

    def discard(self, job: Path) -> None:
        """The job failed or was cancelled: its folder and reservation go."""
        with self._lock:
            self._open.pop(job, None)
            shutil.rmtree(job, ignore_errors=True)

    @staticmethod
    def folder_bytes(job: Path) -> int:
        """Bytes in a job folder (a half-written ``.part`` file included)."""
        total = 0
        try:
            for f in job.iterdir():
                try:
                    total += f.stat().st_size
                except OSError:
                    continue
        except OSError:
            pass
        return total

    def used_bytes(self) -> int:
        """Finished results on disk plus what running jobs have reserved (or written, if more)."""
        with self._lock:
            return sum(size for _, _, size in self._finished()) + sum(
                max(held, self.folder_bytes(d)) for d, held in self._open.items())

    def _finished(self) -> list[tuple[float, Path, int]]:
        """(mtime, folder, bytes) of finished job folders, oldest first."""
        out = []
        for d in self.root.iterdir():
            if d in self._open:
                continue
            try:
                if d.is_dir():
                    out.append((d.stat().st_mtime, d, self.folder_bytes(d)))
            except OSError:
                continue
        return sorted(out)

    def _make_room(self, extra: int) -> None:
        """Under the lock: make ``extra`` more bytes fit, oldest results first, or say why not."""
        free = shutil.disk_usage(self.root).free
        if 2 * extra > free:  # the result, and Gradio's copy of it in its cache
            raise InputError(f"The result would take up to about {_mb(extra)} MB and the server's disk has "
                             f"{_mb(free)} MB free; try a shorter or smaller file.")
        if self.max_bytes is None:
            return
        held = sum(self._open.values())
        if held + extra > self.max_bytes:
            if extra > self.max_bytes:
                raise InputError(f"The result would take up to about {_mb(extra)} MB; the server keeps at most "
                                 f"{_mb(self.max_bytes)} MB of results. Try a shorter or smaller file.")
            raise InputError(f"The result would take up to about {_mb(extra)} MB and jobs running now hold "
                             f"{_mb(held)} of the {_mb(self.max_bytes)} MB the server keeps for results; "
                             "try again in a few minutes, or with a shorter or smaller file.")
        finished = self._finished()
        used = held + sum(size for _, _, size in finished)
        for _, d, size in finished:
            if used + extra <= self.max_bytes:
                break
            shutil.rmtree(d, ignore_errors=True)
            used -= size
            log.info("Removed %s (%s MB) to keep results within %s MB", d.name, _mb(size), _mb(self.max_bytes))

    def sweep(self, now: float | None = None) -> int:
        """Remove finished job folders last modified more than ``max_age`` seconds ago; return how many."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            for mtime, d, _ in self._finished():
                if now - mtime > self.max_age:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
        return removed

    def start_sweeper(self, interval: float | None = None) -> threading.Thread:
        interval = interval or max(10.0, min(600.0, self.max_age / 4))

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except OSError:
                    log.exception("Sweeping %s failed", self.root)

        t = threading.Thread(target=loop, name="tempstore-sweeper", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)
