"""The weights cache: find, download and verify model files.

Order for a catalog model: an explicit local path; then a file under the
catalog's name whose sha256 matches the pinned one, looked for in
``SEGMENTATION_WEIGHTS`` (if set), the shipped ``weights/`` folder (the
project's own, or the ``segmentation_weights`` package when installed with
pip) and the per-user cache (``$XDG_CACHE_HOME/segmentation``, by default
``~/.cache/segmentation``); then a download from each catalog URL in turn into
a temporary file beside the cache, verified before an atomic rename. A failed
or mismatching download never leaves a file under the cache name. Every file
found is checked against its pinned sha256 (hashed once per process).

Files the project writes itself (downloads, derived models) go to the first
writable of ``SEGMENTATION_WEIGHTS``, the project's ``weights/`` folder (in a
checkout) and the per-user cache; never into an installed package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from . import config
from .catalog import ModelEntry
from .errors import WeightsError
from .files import atomic_path

_ROOT = Path(__file__).resolve().parent.parent
# The project's weights/ folder in a checkout (shipped models; downloads go here too).
# None when the package is installed: nothing is ever written into site-packages.
PROJECT_WEIGHTS: Path | None = (None if _ROOT.name in ("site-packages", "dist-packages")
                                else _ROOT / "weights")
ENV_VAR = "SEGMENTATION_WEIGHTS"
SHIPPED_PACKAGE = "segmentation_weights"  # weights/ as installed by pip (see pyproject.toml)
CHUNK = 1 << 16

_hash_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def _installed_weights() -> Path | None:
    """The folder of the installed ``segmentation_weights`` package, if there is one (not imported)."""
    try:
        spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


INSTALLED_WEIGHTS: Path | None = _installed_weights()


def user_cache_dir() -> Path:
    """The per-user cache: ``$XDG_CACHE_HOME/segmentation``, by default ``~/.cache/segmentation``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache").resolve() / "segmentation"


def cache_dirs() -> list[Path]:
    """Folders searched for weights, in order: ``SEGMENTATION_WEIGHTS``, shipped, per-user cache."""
    env = config.read(ENV_VAR)
    candidates = [Path(env).expanduser().resolve() if env else None,
                  PROJECT_WEIGHTS, INSTALLED_WEIGHTS, user_cache_dir()]
    dirs: list[Path] = []
    for d in candidates:
        if d is not None and d not in dirs:
            dirs.append(d)
    return dirs


def writable_dir() -> Path:
    """The first cache folder we may write to (created if missing); never the installed package."""
    for d in cache_dirs():
        if d == INSTALLED_WEIGHTS and d != PROJECT_WEIGHTS:  # (an editable install maps it to weights/)
            continue
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
