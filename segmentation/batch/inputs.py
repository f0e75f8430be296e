"""Finding a batch's inputs and naming its outputs.

Files, folders (searched recursively, hidden entries left out) and glob
patterns become absolute input paths, each with the folder its output name
is relative to, so the outputs mirror the input tree under OUT_DIR. What an
earlier batch wrote into OUT_DIR is never taken as an input.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import SegmentationError
from ..media import MediaKind, looks_like_media, sniff_kind
from .types import (KINDS, MANIFEST_SUFFIX, REPORT_NAME, BatchOptions, Job, Outcome, Status, labels_suffix,
                    one_line)

OUTPUT_SUFFIX = {MediaKind.VIDEO: ".mp4", MediaKind.IMAGE: ".png"}  # what a batch writes for each kind
_GLOB_MAGIC = re.compile(r"[*?[]")


def has_glob(name: str) -> bool:
    """Whether ``name`` is a glob pattern (``*``, ``?`` or ``[``)."""
    return bool(_GLOB_MAGIC.search(name))


def _walk(folder: Path, out_dir: Path) -> list[Path]:
    """Regular files under ``folder``, sorted, without hidden ones and without ``out_dir``'s own."""
    found = []
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (r / d).resolve() != out_dir)
        found += [r / f for f in sorted(files) if not f.startswith(".")]
    return found


@dataclass
class Found:
    path: Path  # absolute
    base: Path  # the folder its output name is relative to
    explicit: bool  # named on the command line (always processed) rather than met in a folder/glob


def batch_files(out_dir: Path) -> set[Path]:
    """What earlier batches wrote into ``out_dir`` (resolved): its report, the manifests, and the
    outputs and labels they name. A folder or pattern never takes these as inputs, so a batch
    whose output folder is (under) its input folder does not segment its own results."""
    files = {out_dir / REPORT_NAME}
    if not out_dir.is_dir():
        return files
    for m in out_dir.rglob("*" + MANIFEST_SUFFIX):
        try:
            data = json.loads(m.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "manifest_version" not in data:
            continue
        files.add(m.resolve())
        for key in ("output", "labels"):
            name = (data.get(key) or {}).get("path") if isinstance(data.get(key), dict) else None
            if name:
                files.add((m.parent / name).resolve())
    return files


def expand_inputs(inputs: Iterable[str | os.PathLike], out_dir: Path) -> tuple[list[Found], list[Outcome]]:
    """Files, folders and glob patterns -> the files they name (absolute, deduplicated, in order),
    and a failed Outcome for every name that matches nothing. A folder or pattern never yields
    what a batch wrote into ``out_dir`` (:func:`batch_files`)."""
    out_dir = out_dir.resolve()
    ours = batch_files(out_dir)
    found: list[Found] = []
    missing: list[Outcome] = []
    for raw in inputs:
        s = str(raw)
        p = Path(s).expanduser()
        if p.is_dir():
            base = _absolute(p)
            found += [Found(_absolute(f), base, False) for f in _walk(p, out_dir) if f.resolve() not in ours]
        elif p.exists():
            found.append(Found(_absolute(p), _absolute(p).parent, True))
        elif has_glob(s):
            base = _absolute(Path(*p.parts[:_first_magic(p.parts)]))  # the pattern's fixed part
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
            files = []
            for m in matches:
                files += _walk(m, out_dir) if m.is_dir() else [m]
            files = [f for f in files if not f.name.startswith(".") and out_dir not in f.resolve().parents
                     and f.resolve() not in ours]
            if not files:
                missing.append(Outcome(s, Status.FAILED, reason=f"No file matches {s!r}."))
            found += [Found(_absolute(f), base, False) for f in files]
        else:
            missing.append(Outcome(s, Status.FAILED, reason=f"File not found: {s}"))
    seen: set[Path] = set()
    unique = []
    for f in found:
        if f.path not in seen:
            seen.add(f.path)
            unique.append(f)
    return unique, missing


def _absolute(p: Path) -> Path:
    """Absolute, without following symbolic links (a linked file keeps its place in the tree)."""
    return Path(os.path.abspath(p))


def _first_magic(parts: Sequence[str]) -> int:
    return next((i for i, part in enumerate(parts) if has_glob(part)), len(parts))


def _common_base(bases: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(b) for b in bases])) if bases else Path("/")


def plan(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, options: BatchOptions = BatchOptions(),
         *, threads: int | None = None, overwrite: bool = False) -> tuple[list[Job], list[Outcome]]:
    """The jobs for ``inputs`` (see ``expand_inputs``) and the outcomes already known without
    running anything: names that match nothing, unreadable or empty files (failed), folder
    entries that are not media (ignored). Outputs mirror the input tree under ``out_dir``."""
    out = Path(out_dir).resolve()
    found, known = expand_inputs(inputs, out)
    kinds: list[tuple[Found, MediaKind]] = []
    for f in found:
        if not f.explicit and not looks_like_media(f.path):
            known.append(Outcome(str(f.path), Status.IGNORED, reason="not a video or a photo"))
            continue
        try:
            kinds.append((f, sniff_kind(f.path)))
        except (SegmentationError, OSError) as exc:
            known.append(Outcome(str(f.path), Status.FAILED, reason=one_line(exc)))
    root = _common_base([f.base for f, _ in kinds])
    rels = [f.path.relative_to(root) for f, _ in kinds]
    # clip.mov beside clip.mp4, or photo a.png beside video a.mp4 (their labels would meet): such
    # names keep their own suffix, clip.mov.mp4 and clip.mp4.mp4
    stems = Counter(r.with_suffix("") for r in rels)
    settings = {k: json.loads(json.dumps(options.settings(k))) for k in KINDS}
    taken = {f.path.resolve() for f, _ in kinds}  # an output never lands on an input (-o = the input folder)
    jobs = []
    for (f, kind), rel in zip(kinds, rels):
        suffix = OUTPUT_SUFFIX[kind]
        dst = out / (rel.with_name(rel.name + suffix) if stems[rel.with_suffix("")] > 1 else rel.with_suffix(suffix))
        if dst.resolve() in taken:  # clip.mp4 into its own folder: clip.mp4.mp4
            dst = out / rel.with_name(rel.name + suffix)
        if dst.resolve() in taken:
            known.append(Outcome(str(f.path), Status.FAILED, kind, reason=f"its output {dst} would overwrite an "
                                 "input; give another output folder."))
            continue
        labels = (str(dst.with_name(dst.stem + labels_suffix(options.labels_format, kind)))
                  if options.labels_format else None)
        jobs.append(Job(str(f.path), kind, str(dst), labels, options, threads, overwrite, settings[kind]))
    return jobs, known
