"""Manifests: what makes a batch output current, so that a rerun skips it.

Beside every output ``NAME.mp4`` a batch writes ``NAME.mp4.json``, atomically
and only after the output: the input's size, mtime and sha256, the model,
the settings, the library version, and each output's size and sha256. An
output without a manifest, or whose manifest disagrees with the input, the
settings or the files on disk, is made again.
"""

from __future__ import annotations

import glob
import json
import time
from pathlib import Path

from ..files import atomic_path
from ..weights import sha256_file
from .types import MANIFEST_VERSION, Job, Outcome, library_version


def file_record(path: str | Path) -> dict:
    """A file as the manifest records it: size, mtime and sha256."""
    p = Path(path)
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(p)}


def _same_file(path: str | Path, rec: dict | None) -> bool:
    """The file is the one ``rec`` describes: same size, and same mtime or (touched) same sha256."""
    if not rec:
        return False
    try:
        st = Path(path).stat()
    except OSError:
        return False
    if st.st_size != rec.get("size"):
        return False
    return st.st_mtime_ns == rec.get("mtime_ns") or sha256_file(Path(path)) == rec.get("sha256")


def is_current(job: Job) -> bool:
    """True when ``job``'s outputs exist, are whole and were made from this input with these settings."""
    try:
        m = json.loads(Path(job.manifest).read_text())
    except (OSError, ValueError):
        return False
    if m.get("manifest_version") != MANIFEST_VERSION or m.get("settings") != job.current_settings():
        return False
    if not (_same_file(job.input, m.get("input")) and _same_file(job.output, m.get("output"))):
        return False
    if job.labels is None:
        return True
    labels = m.get("labels") or {}
    return labels.get("path") == Path(job.labels).name and _same_file(job.labels, labels)


def write_manifest(job: Job, input_rec: dict, outcome: Outcome) -> None:
    """Record, after the outputs, what made them: a rerun trusts the outputs only with this."""
    m = {
        "manifest_version": MANIFEST_VERSION, "library_version": library_version(),
        "input": {"path": job.input, **input_rec},
        "output": {"path": Path(job.output).name, **file_record(job.output)},
        "labels": {"path": Path(job.labels).name, **file_record(job.labels)} if job.labels else None,
        "kind": job.kind, "model_id": outcome.model_id, "settings": job.current_settings(),
        "frames": outcome.frames, "seconds": round(outcome.seconds, 3),
        "made_by": outcome.worker, "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(job.manifest) as tmp:
        tmp.write_text(json.dumps(m, indent=1))


def remove_stale_parts(*paths: str | None) -> None:
    """Temporary files a killed earlier attempt left beside these outputs (see ``files.AtomicFile``)."""
    for p in filter(None, paths):
        d, name = Path(p).parent, Path(p).name
        if d.is_dir():
            for tmp in d.glob(f".{glob.escape(name)}.*.part"):
                tmp.unlink(missing_ok=True)
