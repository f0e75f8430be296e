"""File utilities: outputs that appear under their name complete, or not at all.

Every file the project writes (results, label exports, downloads, the derived
model, example copies) is written to a temporary file beside its target and
renamed onto it only when complete, so a crash, a cancel or a full disk never
leaves a half-written file that looks done. Temporary names end in ``.part``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator


class AtomicFile:
    """A temporary file beside ``dest``: ``commit`` renames it onto ``dest``, ``discard`` removes it.

    For writers whose opening and closing live in different methods (a video
    sink); a block of code uses :func:`atomic_path`.
    """

    def __init__(self, dest: str | os.PathLike):
        self.dest = Path(dest)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".part", dir=self.dest.parent)
        os.close(fd)
        self.tmp = Path(name)

    def commit(self) -> Path:
        os.chmod(self.tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished output gets the usual mode
        os.replace(self.tmp, self.dest)
        return self.dest

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed onto it if the block succeeds, removed if not."""
    f = AtomicFile(dest)
    try:
        yield f.tmp
        f.commit()
    finally:
        f.discard()


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; set straight back, once, at import (umask is per process)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def is_disk_full(exc: BaseException) -> bool:
    """True for the OSError a full disk (or quota) raises while writing."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
