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
import re
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


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode (hard or symbolic links included) or,
    for a name that does not exist yet, the same path once links (a dangling one too) are followed."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # one of them does not exist (yet)
        pass
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):  # a link loop: not the same as anything we read
        return False


def refuse_overwriting_input(src: str | os.PathLike, outputs: dict[str, str | os.PathLike | None]) -> None:
    """InputError (one sentence) when any output (``{"-o": path, ...}``: what names it -> path) is ``src``
    itself or the same file through a link: an input is never overwritten."""
    from .errors import InputError

    for what, out in outputs.items():
        if out is not None and same_file(out, src):
            raise InputError(f"{what} {os.fspath(out)} is the input {os.fspath(src)} itself; choose another "
                             "output name (an input is never overwritten).")


_STRERROR = {errno.ENOENT: "no such file or folder", errno.EACCES: "permission denied",
             errno.EPERM: "permission denied", errno.EISDIR: "it is a folder", errno.ENOTDIR: "a part of the "
             "path is not a folder", errno.EROFS: "the file system is read-only", errno.ENAMETOOLONG: "the name is "
             "too long", errno.EEXIST: "it already exists", errno.ELOOP: "too many symbolic links"}


def user_path(name: str | os.PathLike | None) -> str | None:
    """A path as the user named it: an atomic write's temporary ``.NAME.xxxx.part`` becomes ``NAME``."""
    if name is None:
        return None
    p = Path(os.fsdecode(name))
    m = re.fullmatch(r"\.(.+)\.[^.]+\.part", p.name)
    return str(p.with_name(m.group(1))) if m else str(p)


def describe_os_error(exc: OSError, writing: set[str] | frozenset[str] = frozenset()) -> str:
    """One sentence for a file-system error, without errno text or temporary names:
    ``cannot write /x/a.png: permission denied.`` ``writing``: the paths that are outputs."""
    if is_disk_full(exc):
        what = user_path(exc.filename)
        return f"the disk is full (no space left on device){f' while writing {what}' if what else ''}; " \
               "nothing was kept."
    reason = _STRERROR.get(exc.errno) or (exc.strerror or type(exc).__name__).lower()
    path = user_path(exc.filename)
    if path is None:
        return f"a file could not be read or written: {reason}."
    where = Path(path).expanduser().absolute()
    for out in writing:  # the output itself, its temporary file or a folder on its way
        target = Path(out).expanduser().absolute()
        if where == target or where in target.parents:
            if where != target:
                reason = {errno.EEXIST: f"{path} is a file, not a folder", errno.ENOTDIR: f"{path} is a file, "
                          "not a folder", errno.ENOENT: f"the folder {path} does not exist"}.get(exc.errno, reason)
            elif exc.errno == errno.ENOENT:
                reason = f"the folder {target.parent} does not exist"
            return f"cannot write {out}: {reason}."
    return f"cannot read {path}: {reason}."
