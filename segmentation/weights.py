"""The weights cache: find, download and verify model files.

Order for a catalog model: an explicit local path, then a cached file whose
sha256 matches the pinned one, then a download from each catalog URL in turn
into a temporary file beside the cache, verified before an atomic rename. A
failed or mismatching download never leaves a file under the cache name.

``SEGMENTATION_WEIGHTS`` points the cache at another folder (CI and the tests
use ``../shared/models``, whose file names are the catalog's). When that folder
is read-only, files the project writes itself (downloads, derived models) go
to the project's own ``weights/`` folder, which is searched too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

from .catalog import ModelEntry
from .errors import WeightsError

PROJECT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
ENV_VAR = "SEGMENTATION_WEIGHTS"
CHUNK = 1 << 16

_hash_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def cache_dirs() -> list[Path]:
    """Folders searched for weights, in order (``SEGMENTATION_WEIGHTS`` first)."""
    dirs: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser().resolve())
    if PROJECT_WEIGHTS not in dirs:
        dirs.append(PROJECT_WEIGHTS)
    return dirs


def writable_dir() -> Path:
    """The first cache folder we may write to (created if missing)."""
    for d in cache_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        # A folder marked read-only (like ../shared/models) is respected even
        # for root, who os.access() would let write anyway.
        if os.access(d, os.W_OK) and d.stat().st_mode & 0o222:
            return d
    raise WeightsError("No writable weights folder: set SEGMENTATION_WEIGHTS to a writable folder.")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, memoised on (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _hash_cache:
            return _hash_cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    digest = h.hexdigest()
    with _lock:
        _hash_cache[key] = digest
    return digest


def find_cached(filename: str, sha256: str | None) -> Path | None:
    """A cached file with this name whose hash matches (any hash if ``sha256`` is None)."""
    for d in cache_dirs():
        p = d / filename
        if p.is_file() and (sha256 is None or sha256_file(p) == sha256):
            return p
    return None


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """A temporary file beside ``dest``: renamed onto it if the block succeeds, removed if not.

    Whatever is written there (a download, a derived model, a copy) appears under
    ``dest`` complete and verified, or not at all.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0,
             progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically, refusing a file whose sha256 differs.

    The bytes go to a temporary file in ``dest``'s folder and are renamed onto
    ``dest`` only after the hash matches; on any failure the temporary file is
    removed and the exception propagates.
    """
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        req = urllib.request.Request(url, headers={"User-Agent": "segmentation-weights/1"})
        with open(tmp, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            done = 0
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                out.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress(done, total_n)
            if total_n is not None and done != total_n:
                raise OSError(f"connection closed after {done} of {total_n} bytes")
        got = h.hexdigest()
        if got != sha256:
            raise ValueError(f"sha256 mismatch: expected {sha256}, got {got}")
    return dest


def fetch(entry: ModelEntry, timeout: float = 30.0,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The verified local file for a TFLite entry, downloading it if needed."""
    if entry.local_path is not None:
        if not entry.local_path.exists():
            raise WeightsError(f"Model file {entry.local_path} does not exist.")
        return entry.local_path
    if not entry.filename or not entry.sha256:
        raise WeightsError(f"Model {entry.id!r} has no pinned file to fetch.")
    cached = find_cached(entry.filename, entry.sha256)
    if cached is not None:
        return cached
    errors: list[str] = []
    for d in cache_dirs():
        p = d / entry.filename
        if p.is_file():
            errors.append(f"{p}: cached file has the wrong sha256, ignored")
    dest = writable_dir() / entry.filename
    for url in entry.urls:
        try:
            return download(url, dest, entry.sha256, timeout=timeout, progress=progress)
        except (OSError, ValueError, urllib.error.URLError) as exc:  # HTTPError is an OSError
            errors.append(f"{url}: {exc}")
    tried = "; ".join(errors) if errors else "no download URL"
    raise WeightsError(
        f"Could not get weights for model {entry.id!r} ({entry.name}). Tried: {tried}. "
        f"Download the file by hand from one of the URLs above and place it at {dest} "
        f"(sha256 {entry.sha256}), or point {ENV_VAR} at a folder that holds {entry.filename}."
    )
