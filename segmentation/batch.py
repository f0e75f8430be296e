"""Many inputs, one command: a batch that resumes, isolates failures and runs locally or on Ray.

``run_batch(inputs, out_dir, options)`` expands files, folders (searched
recursively) and glob patterns, tells videos from photos by content
(:func:`pipeline.sniff_kind`) and writes one output per input under
``out_dir``, mirroring the input tree: a video becomes ``NAME.mp4``, a photo
``NAME.png``, their class ids ``NAME.labels.<format>`` when a labels format is
asked for. Every output is written atomically and followed by a small
manifest ``NAME.mp4.json`` (input size, mtime and sha256, model, settings,
library version, output size and sha256), itself written atomically *after*
the output. A rerun skips an input whose manifest matches: same input, same
model and settings, outputs intact; ``overwrite`` redoes it.

The per-input work is one function, :func:`process_one` (``Job`` in,
``Outcome`` out, never raises), called in the same process (``workers=0``),
by a pool of spawned processes (``workers=N``, each with its own model and
thread budget) or by one Ray task per input (``ray=ADDRESS``). A broken or
refused input is an ``Outcome`` with a one-line reason; the batch goes on. A
worker process that dies is retried alone, then reported. At the end
``OUT_DIR/batch-report.json`` lists every input with its outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import json
import os
import re
import socket
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import config, weights
from .errors import InputError, SegmentationError
from .files import atomic_path, is_disk_full, refuse_overwriting_input
from .pipeline import VideoOptions
from .segmenter import ResizePolicy

REPORT_NAME = "batch-report.json"
MANIFEST_SUFFIX = ".json"
MANIFEST_VERSION = 1
RAY_MAX_RETRIES = 3  # Ray's own default, spelled out: a task whose worker dies is run again
# Measured with benchmarks/batch.py on this 2-core machine (benchmarks/results-batch.md): on a
# folder of short clips 2 processes x 1 model thread made 54-60 frames/s, 1 x 2 threads 40-42.
DEFAULT_THREADS_PER_WORKER = 1

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                  ".wmv", ".flv", ".3gp", ".ogv", ".gif", ".h264", ".264", ".hevc", ".y4m"}
# Container signatures (offset, bytes): a folder's file with none of these and no media suffix
# is not a video; Pillow decides for photos.
_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"OggS"), (0, b"FLV"), (0, b"GIF8"),
          (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"), (0, b"\x00\x00\x00\x01"),
          (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"), (0, b"YUV4MPEG2"))
_GLOB_MAGIC = re.compile(r"[*?[]")


class Status(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # outputs already there, made from the same input with the same model and settings
    FAILED = "failed"
    IGNORED = "ignored"  # a file met in a folder or glob that is neither a video nor a photo


@dataclass(frozen=True)
class BatchOptions:
    """What every input gets: the single-file command's model, drawing and video settings.

    ``video.draw`` draws photos and videos alike; ``classes`` (names or ids) is
    resolved against each worker's loaded model, so ``video.draw.classes``
    stays None. ``labels_format``: None (no labels) or one of
    :func:`labels_formats`.
    """

    model: str | None = None
    labels_file: str | None = None
    resize: ResizePolicy = ResizePolicy.STRETCH
    video: VideoOptions = VideoOptions()
    classes: tuple[str, ...] | None = None
    labels_format: str | None = None

    def __post_init__(self):
        if self.video.draw.classes is not None:
            raise InputError("BatchOptions: give the class filter as `classes` (names or ids), not in video.draw.")
        if self.labels_format is not None and self.labels_format not in labels_formats():
            raise InputError(f"Unknown labels format {self.labels_format!r}; "
                             f"use one of: {', '.join(labels_formats())}.")

    def settings(self, kind: str) -> dict:
        """Everything that shapes the output of a ``kind`` input, as JSON (what a rerun compares)."""
        draw = _settings_of(self.video.draw)
        background = self.video.draw.effect.background
        if isinstance(background, (str, os.PathLike)) and Path(background).is_file():
            draw["effect"]["background_file"] = _file_identity(background)
        s = {"model": _model_identity(self.model, self.labels_file), "resize": str(self.resize),
             "classes": list(self.classes) if self.classes else None, "draw": draw}
        if kind == "video":
            s["video"] = {k: v for k, v in _settings_of(self.video).items() if k != "draw"}
        return s


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go (absolute paths); what a worker or Ray task receives."""

    input: str
    kind: str  # "video" | "image"
    output: str
    labels: str | None
    options: BatchOptions
    threads: int | None = None  # model threads of the worker that runs it
    overwrite: bool = False
    # options.settings(kind) as JSON, computed once by the driver (a node may see relative paths otherwise)
    settings: dict = field(default_factory=dict, compare=False)

    @property
    def manifest(self) -> str:
        return self.output + MANIFEST_SUFFIX

    def current_settings(self) -> dict:
        return self.settings or json.loads(json.dumps(self.options.settings(self.kind)))


@dataclass
class Outcome:
    """What became of one input. ``reason`` is one line for a failure or an ignored file."""

    input: str
    status: Status
    kind: str | None = None
    output: str | None = None
    labels: str | None = None
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    model_id: str = ""
    worker: str = ""  # host:pid that made it
    warning: str = ""  # a video that ended before its own frame count: "decoded 9 of 35 frames; ..."


@dataclass
class BatchReport:
    """Every input's outcome, sorted by path, with the totals the CLI prints."""

    out_dir: Path
    outcomes: list[Outcome]
    wall_seconds: float
    runner: str  # "this process", "2 processes x 1 thread", "ray (auto)", ...
    settings: dict = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.count(Status.FAILED) == 0

    @property
    def frames(self) -> int:
        return sum(o.frames for o in self.outcomes if o.status == Status.DONE)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> str:
        ignored = self.count(Status.IGNORED)
        return (f"{self.count(Status.DONE)} done, {self.count(Status.SKIPPED)} skipped, "
                f"{self.count(Status.FAILED)} failed" + (f", {ignored} ignored" if ignored else "")
                + f"; {self.frames} frames in {self.wall_seconds:.1f} s ({self.frames_per_second:.1f} frames/s, "
                f"{self.runner})")

    def to_json(self) -> dict:
        return {
            "version": MANIFEST_VERSION, "library_version": library_version(), "out_dir": str(self.out_dir),
            "runner": self.runner, "wall_seconds": round(self.wall_seconds, 3),
            "summary": {s.value: self.count(s) for s in Status} | {
                "frames": self.frames, "frames_per_second": round(self.frames_per_second, 2)},
            "settings": self.settings,
            "inputs": [_jsonable(dataclasses.asdict(o)) for o in self.outcomes],
        }


# -- labels formats ---------------------------------------------------------------------------
# The writers are the library's (``exports.labels_writer``, chosen by suffix): npz is the .npz
# array for a video and the 8-bit PNG for a photo, as for one file's --labels-out.
LABELS_SUFFIXES = {"npz": {"video": ".npz", "image": ".png"},
                   "zip": {"video": ".zip", "image": ".zip"},
                   "json": {"video": ".json", "image": ".json"}}


def labels_formats() -> tuple[str, ...]:
    return tuple(LABELS_SUFFIXES)


def labels_suffix(fmt: str, kind: str) -> str:
    return ".labels" + LABELS_SUFFIXES[fmt][kind]


# -- finding inputs and naming outputs -------------------------------------------------------
@functools.cache
def library_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("video-segmentation")
    except PackageNotFoundError:
        return _project_version()


def _project_version() -> str:
    """The checkout's pyproject version when the package is not installed."""
    p = Path(__file__).resolve().parent.parent / "pyproject.toml"
    m = re.search(r'^version\s*=\s*"([^"]+)"', p.read_text(), re.M) if p.is_file() else None
    return m.group(1) if m else "unknown"


def _looks_like_media(path: Path) -> bool:
    """For files met in a folder or glob: a media suffix, a container signature or a Pillow image."""
    from .images import IMAGE_SUFFIXES
    from .pipeline import sniff_kind

    if path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(200)
        if any(head[o:o + len(m)] == m for o, m in _MAGIC) or (len(head) > 188 and head[0] == head[188] == 0x47):
            return True
        return sniff_kind(path) == "image"
    except (OSError, SegmentationError):
        return False


def _walk(folder: Path, out_dir: Path) -> list[Path]:
    """Regular files under ``folder``, sorted, without hidden ones and without ``out_dir``'s own."""
    found = []
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (r / d).resolve() != out_dir)
        found += [r / f for f in sorted(files) if not f.startswith(".")]
    return found


@dataclass
class _Found:
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


def expand_inputs(inputs: Iterable[str | os.PathLike], out_dir: Path) -> tuple[list[_Found], list[Outcome]]:
    """Files, folders and glob patterns -> the files they name (absolute, deduplicated, in order),
    and a failed Outcome for every name that matches nothing. A folder or pattern never yields
    what a batch wrote into ``out_dir`` (:func:`batch_files`)."""
    out_dir = out_dir.resolve()
    ours = batch_files(out_dir)
    found: list[_Found] = []
    missing: list[Outcome] = []
    for raw in inputs:
        s = str(raw)
        p = Path(s).expanduser()
        if p.is_dir():
            base = _absolute(p)
            found += [_Found(_absolute(f), base, False) for f in _walk(p, out_dir) if f.resolve() not in ours]
        elif p.exists():
            found.append(_Found(_absolute(p), _absolute(p).parent, True))
        elif _GLOB_MAGIC.search(s):
            base = _absolute(Path(*p.parts[:_first_magic(p.parts)]))  # the pattern's fixed part
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
            files = []
            for m in matches:
                files += _walk(m, out_dir) if m.is_dir() else [m]
            files = [f for f in files if not f.name.startswith(".") and out_dir not in f.resolve().parents
                     and f.resolve() not in ours]
            if not files:
                missing.append(Outcome(s, Status.FAILED, reason=f"No file matches {s!r}."))
            found += [_Found(_absolute(f), base, False) for f in files]
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
    return next((i for i, part in enumerate(parts) if _GLOB_MAGIC.search(part)), len(parts))


def _common_base(bases: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(b) for b in bases])) if bases else Path("/")


def plan(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, options: BatchOptions = BatchOptions(),
         *, threads: int | None = None, overwrite: bool = False) -> tuple[list[Job], list[Outcome]]:
    """The jobs for ``inputs`` (see ``expand_inputs``) and the outcomes already known without
    running anything: names that match nothing, unreadable or empty files (failed), folder
    entries that are not media (ignored). Outputs mirror the input tree under ``out_dir``."""
    from .pipeline import sniff_kind

    out = Path(out_dir).resolve()
    found, known = expand_inputs(inputs, out)
    kinds: list[tuple[_Found, str]] = []
    for f in found:
        if not f.explicit and not _looks_like_media(f.path):
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
    settings = {k: json.loads(json.dumps(options.settings(k))) for k in ("image", "video")}
    taken = {f.path.resolve() for f, _ in kinds}  # an output never lands on an input (-o = the input folder)
    jobs = []
    for (f, kind), rel in zip(kinds, rels):
        suffix = ".mp4" if kind == "video" else ".png"
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


# -- manifests: what makes an output current ---------------------------------------------------
def _file_record(path: str | Path) -> dict:
    from .weights import sha256_file

    p = Path(path)
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(p)}


def _same_file(path: str | Path, rec: dict | None) -> bool:
    """The file is the one ``rec`` describes: same size, and same mtime or (touched) same sha256."""
    from .weights import sha256_file

    if not rec:
        return False
    try:
        st = Path(path).stat()
    except OSError:
        return False
    if st.st_size != rec.get("size"):
        return False
    return st.st_mtime_ns == rec.get("mtime_ns") or sha256_file(Path(path)) == rec.get("sha256")


def _file_identity(path: str | os.PathLike) -> dict:
    """A file the settings name (model, labels, background image): path, size and mtime."""
    p = Path(os.path.expanduser(path))
    st = p.stat() if p.exists() else None
    return {"path": str(p.resolve()), "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None}


def _model_identity(model: str | None, labels_file: str | None) -> dict:
    """A catalog model by id (and pinned hash); a model file or folder and a labels file by identity."""
    from .catalog import CATALOG, DEFAULT_MODEL_ID

    spec = model or DEFAULT_MODEL_ID
    ident: dict = {"id": spec}
    if spec in CATALOG:
        ident["sha256"] = CATALOG[spec].sha256
    elif Path(os.path.expanduser(spec)).exists():
        ident["file"] = _file_identity(spec)
    if labels_file:
        ident["labels_file"] = _file_identity(labels_file)
    return ident


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


def _write_manifest(job: Job, input_rec: dict, outcome: Outcome) -> None:
    m = {
        "manifest_version": MANIFEST_VERSION, "library_version": library_version(),
        "input": {"path": job.input, **input_rec},
        "output": {"path": Path(job.output).name, **_file_record(job.output)},
        "labels": {"path": Path(job.labels).name, **_file_record(job.labels)} if job.labels else None,
        "kind": job.kind, "model_id": outcome.model_id, "settings": job.current_settings(),
        "frames": outcome.frames, "seconds": round(outcome.seconds, 3),
        "made_by": outcome.worker, "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_path(job.manifest) as tmp:
        tmp.write_text(json.dumps(m, indent=1))


# -- the per-input work -----------------------------------------------------------------------
_segmenters: dict = {}  # one loaded model per (model, labels, threads, resize) in this process


def _segmenter(options: BatchOptions, threads: int | None):
    from .segmenter import Segmenter, SegmenterOptions

    key = (options.model, options.labels_file, threads, str(options.resize))
    if key not in _segmenters:
        _segmenters[key] = Segmenter(SegmenterOptions(model=options.model, labels_file=options.labels_file,
                                                      threads=threads, resize=options.resize))
    return _segmenters[key]


def _remove_stale_parts(*paths: str | None) -> None:
    """Temporary files a killed earlier attempt left beside these outputs (see ``files.AtomicFile``)."""
    for p in filter(None, paths):
        d, name = Path(p).parent, Path(p).name
        if d.is_dir():
            for tmp in d.glob(f".{glob.escape(name)}.*.part"):
                tmp.unlink(missing_ok=True)


def one_line(exc: BaseException) -> str:
    """An exception as one line fit for the report: the library's own sentence, else type and message."""
    if isinstance(exc, OSError) and is_disk_full(exc):
        return "the disk is full (no space left on device); nothing was kept"
    text = str(exc) if isinstance(exc, (SegmentationError, OSError)) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_one(job: Job) -> Outcome:
    """Segment one input into its outputs and manifest; skip it if they are current. Never raises
    for a bad input or model: the Outcome says what happened, in one line."""
    from . import draw
    from .pipeline import segment_image, segment_video

    base = Outcome(job.input, Status.DONE, job.kind, job.output, job.labels, worker=worker_name())
    if not job.overwrite and is_current(job):
        return dataclasses.replace(base, status=Status.SKIPPED)
    t0 = time.perf_counter()
    try:
        refuse_overwriting_input(job.input, {"the output": job.output, "the labels": job.labels,
                                             "the manifest": job.manifest})
        Path(job.manifest).unlink(missing_ok=True)  # an output without a manifest is never trusted
        _remove_stale_parts(job.output, job.labels, job.manifest)
        input_rec = _file_record(job.input)
        seg = _segmenter(job.options, job.threads)
        dopts = job.options.video.draw
        if job.options.classes:
            try:
                dopts = dataclasses.replace(dopts, classes=draw.class_ids(job.options.classes, seg.labels))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if job.kind == "video":
            res = segment_video(seg, job.input, job.output, dataclasses.replace(job.options.video, draw=dopts),
                                labels_out=job.labels)
            frames, warning = res.frames, res.warning
        else:
            from .cli import _save_image

            res = segment_image(seg, job.input, dopts, labels_out=job.labels)
            try:
                _save_image(res.rendered, Path(job.output))
            except BaseException:
                if job.labels:  # all outputs or none
                    Path(job.labels).unlink(missing_ok=True)
                raise
            frames, warning = 1, ""
        done = dataclasses.replace(base, frames=frames, seconds=time.perf_counter() - t0, model_id=seg.entry.id,
                                   warning=warning)
        _write_manifest(job, input_rec, done)
        return done
    except Exception as exc:  # noqa: BLE001 - every failure becomes this input's outcome
        return dataclasses.replace(base, status=Status.FAILED, reason=one_line(exc),
                                   seconds=time.perf_counter() - t0)


# -- runners ---------------------------------------------------------------------------------
Task = Callable[[Job], Outcome]
OnOutcome = Callable[[Job, Outcome], None]  # the runners' callback; run_batch's own takes the Outcome


def _worker_setup(threads: int | None) -> None:
    """A batch worker process: OpenCV's pool gets the same thread budget as the model."""
    if threads:
        import cv2

        cv2.setNumThreads(threads)


def _died(job: Job, why: str) -> Outcome:
    return Outcome(job.input, Status.FAILED, job.kind, job.output, job.labels, reason=why)


def _run_inline(jobs: Sequence[Job], task: Task, on_outcome: OnOutcome) -> None:
    for job in jobs:
        on_outcome(job, task(job))


def _run_pool(jobs: Sequence[Job], workers: int, threads: int | None, task: Task, on_outcome: OnOutcome,
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
                    outcome = _died(job, "the worker process died while processing this input (crash or killed)")
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


def _run_ray(jobs: Sequence[Job], address: str, threads: int, task: Task, on_outcome: OnOutcome,
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
                    outcome = _died(job, f"Ray task failed after {max_retries} retries: {one_line(exc)[:300]}")
                on_outcome(job, outcome)
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        return f"ray, {nodes} node{'s' * (nodes != 1)}, {threads} thread{'s' * (threads != 1)} per task"
    finally:
        if started:
            ray.shutdown()


def check_ray_paths(inputs: Sequence[str], out_dir: str | os.PathLike, address: str) -> None:
    """Before anything is submitted: OUT_DIR absolute (every node writes there) and every input present."""
    if address != "local" and not Path(out_dir).expanduser().is_absolute():
        raise InputError(f"With --ray the output folder must be an absolute path on storage every node "
                         f"shares, not {str(out_dir)!r}.")
    missing = [s for s in inputs if not Path(s).expanduser().exists() and not (
        _GLOB_MAGIC.search(str(s)) and expand_inputs([s], Path(out_dir))[0])]
    if missing:
        raise InputError(f"With --ray every input must exist before anything is submitted; not found: "
                         f"{', '.join(map(str, missing[:5]))}" + (" ..." if len(missing) > 5 else ""))


def check_model(options: BatchOptions) -> None:
    """Before any input: the model exists (ModelError) and knows the --classes (InputError)."""
    from . import draw
    from .catalog import resolve_model

    from .segmenter import check_labels_file

    entry = resolve_model(options.model, options.labels_file)
    check_labels_file(options.model, options.labels_file)
    if options.classes and entry.labels:
        try:
            draw.class_ids(options.classes, entry.labels)
        except ValueError as exc:
            raise InputError(str(exc)) from None


def default_workers(jobs: int | None = None) -> int:
    """One process per core (see DEFAULT_THREADS_PER_WORKER), never more than there are jobs."""
    n = max(1, (os.cpu_count() or 1) // DEFAULT_THREADS_PER_WORKER)
    return max(1, min(n, jobs)) if jobs is not None else n


def run_batch(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
              options: BatchOptions = BatchOptions(), *, workers: int | None = None, threads: int | None = None,
              overwrite: bool = False, ray: str | None = None, ray_max_retries: int = RAY_MAX_RETRIES,
              task: Task = process_one, on_outcome: Callable[[Outcome], None] | None = None,
              on_start: Callable[[int], None] | None = None, split: bool = True) -> BatchReport:
    """Segment every input into ``out_dir`` (see the module docstring) and write its report.

    ``workers``: 0 runs in this process; N a pool of N spawned processes;
    None: :func:`default_workers`. ``threads``: model threads per worker
    (default: the cores split between workers; 1 per Ray task). ``ray``: a
    cluster address, "auto", or "local"; an already initialised Ray is used
    as it is. ``task`` is what runs each job (tests wrap ``process_one``).
    ``on_start(number of inputs)`` and ``on_outcome(outcome)`` (once per input,
    skipped and refused ones first) report progress. ``split``: a video longer than a fair share
    of the batch is cut into chunks that run beside the other inputs (``batch_chunks``).
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
    cores = os.cpu_count() or 1
    if ray is None:
        workers = default_workers() if workers is None else workers
        threads = threads or (max(1, cores // workers) if workers else None)
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
    groups: dict = {}  # long videos cut into chunks (batch_chunks), by input
    if split and todo and (ray is not None or (workers or 0) > 1):
        from .batch_chunks import RunTask, split_long_inputs, worker_count

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
        runner = _run_ray(todo, ray, threads, task, record, ray_max_retries) if todo else f"ray ({ray})"
    elif workers == 0 or not todo:
        _run_inline(todo, task, record)
        runner = "this process"
    else:
        n = min(workers, len(todo))
        _run_pool(todo, n, threads, task, record)
        runner = f"{n} process{'es' * (n != 1)} x {threads} thread{'s' * (threads != 1)}"
    report = BatchReport(out, sorted(outcomes.values(), key=lambda o: o.input), time.perf_counter() - t0, runner,
                         {k: options.settings(k) for k in ("image", "video")}
                         | {"labels_format": options.labels_format})
    with atomic_path(out / REPORT_NAME) as tmp:
        tmp.write_text(json.dumps(report.to_json(), indent=1))
    return report


def _settings_of(obj) -> dict:
    """An options dataclass as JSON: its compared fields only (not derived ones such as a decoded
    background image), nested options included."""
    return {f.name: (_settings_of(v) if dataclasses.is_dataclass(v) else _jsonable(v))
            for f in dataclasses.fields(obj) if f.compare for v in [getattr(obj, f.name)]}


def _jsonable(value):
    """Dataclass dicts -> JSON: enums as their values, tuples as lists, Fractions as strings."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# -- command line --------------------------------------------------------------------------
BATCH_FLAGS = ("workers", "overwrite", "ray", "labels_out_format")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The batch options of ``python -m segmentation INPUT... -o OUT_DIR``."""
    g = p.add_argument_group("batch (several inputs, a folder, a glob pattern, or -o naming a folder)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="processes, each with its own model (default: one per core); the cores are split "
                        "between them unless --threads gives each process's model threads. For one video: "
                        "cut it into N chunks run by N processes (or N Ray tasks with --ray)")
    g.add_argument("--overwrite", action="store_true",
                   help="redo inputs whose outputs are already there (default: skip them when made with the "
                        "same input, model and settings)")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="one Ray task per input (one video: per chunk) on the cluster at ADDRESS (default: "
                        "$RAY_ADDRESS, else the "
                        "cluster started on this machine with `ray start`); 'local' starts a Ray here. "
                        "One model thread per task unless --threads. Inputs and OUT_DIR must be on storage "
                        "every node shares.")
    g.add_argument("--labels-out-format", choices=labels_formats(),
                   help="also write each input's class ids beside its output: NAME.labels.npz for a video and "
                        "NAME.labels.png for a photo (npz), NAME.labels.zip (zip) or COCO NAME.labels.json (json)")


def is_batch(args: argparse.Namespace) -> bool:
    """More than one input, a folder or glob input, or -o naming a folder (existing, or ending in /)."""
    inputs, out = args.input, args.output
    if len(inputs) > 1 or os.path.isdir(out) or out.endswith(("/", os.sep)):
        return True
    one = inputs[0]
    return os.path.isdir(one) or (not os.path.exists(one) and bool(_GLOB_MAGIC.search(one)))


def refuse_batch_flags(args: argparse.Namespace, kind: str | None = None) -> None:
    """Single-file mode: the batch options make no sense, but for one video (``kind`` "video")
    ``--workers`` and ``--ray`` split it into chunks; say how to get a batch."""
    flags = [f for f in BATCH_FLAGS if kind != "video" or f not in ("workers", "ray")]
    given = [f"--{f.replace('_', '-')}" for f in flags if getattr(args, f, None) not in (None, False)]
    if given:
        one = " (--workers and --ray also split one video)" if set(given) <= {"--workers", "--ray"} else ""
        raise InputError(f"{', '.join(given)}: batch options{one}; give several inputs, a folder or a glob "
                         "pattern, and an output folder (-o OUT_DIR/).")


def options_from_args(args: argparse.Namespace) -> BatchOptions:
    """The single-file command's options as BatchOptions (the same checks as for one file)."""
    from .draw import DrawOptions
    from .effects import EffectOptions
    from .temporal import Speed

    if not 0.0 <= args.alpha <= 1.0:
        raise InputError("--alpha must be between 0 and 1.")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be at least 1.")
    for flag, instead in (("labels_out", "--labels-out-format"), ("timeline_out", None)):
        if getattr(args, flag, None):
            raise InputError(f"--{flag.replace('_', '-')} names one file; in a batch "
                             + (f"use {instead} instead." if instead else "it is not available."))
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be at least 1.")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")
    given = {k: getattr(args, k, None) for k in ("blur", "background", "feather")}
    effect = EffectOptions(**{k: v for k, v in given.items() if v is not None})  # a background image is read here
    dopts = DrawOptions(mode=args.mode, alpha=args.alpha, outlines=args.outlines, effect=effect,
                        matte=getattr(args, "matte", None) or "auto")
    video = VideoOptions(draw=dopts, speed=Speed(args.speed), temporal=args.temporal == "on",
                         max_frames=args.max_frames)
    return BatchOptions(model=args.model, labels_file=args.labels, resize=args.resize, video=video,
                        classes=tuple(args.classes) if args.classes else None,
                        labels_format=args.labels_out_format)


class _Progress:
    """One tqdm bar over files (files/s, ETA) with frames/s and the latest file; failures printed above it."""

    def __init__(self):
        self.bar = None
        self.frames = 0
        self.t0 = time.perf_counter()

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", desc="batch", disable=None, file=sys.stderr)
        self.t0 = time.perf_counter()

    def outcome(self, o: Outcome) -> None:
        if o.status == Status.FAILED:
            self.bar.write(f"failed: {o.input}: {o.reason}", file=sys.stderr)
        if o.warning:
            self.bar.write(f"warning: {o.input}: {o.warning}", file=sys.stderr)
        self.frames += o.frames if o.status == Status.DONE else 0
        fps = self.frames / max(1e-9, time.perf_counter() - self.t0)
        self.bar.set_postfix_str(f"{fps:.1f} frames/s, {Path(o.input).name}: {o.status}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(args: argparse.Namespace) -> int:
    """``python -m segmentation INPUT... -o OUT_DIR [options]``: exit 0 when nothing failed, 1 otherwise,
    2 when the command itself is refused (bad option, missing input for Ray, output not a folder)."""
    options = options_from_args(args)
    address = None
    if args.ray is not None:
        address = args.ray or os.environ.get("RAY_ADDRESS") or "auto"
    progress = _Progress()
    try:
        report = run_batch(args.input, args.output, options, workers=args.workers, threads=args.threads,
                           overwrite=args.overwrite, ray=address, on_start=progress.start,
                           on_outcome=progress.outcome)
    finally:
        progress.close()
    print(f"batch: {report.summary()} -> {report.out_dir / REPORT_NAME}", file=sys.stderr)
    return 0 if report.ok else 1
