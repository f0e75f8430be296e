"""What a batch is made of: its options, one input's job and outcome, and the whole batch's report.

These travel: a ``Job`` goes to a worker process or a Ray task and an
``Outcome`` comes back, so both are plain picklable dataclasses. The
settings a rerun compares (``BatchOptions.settings``) are JSON, with the
files they name (model, labels, background image) by identity.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ..draw import chosen_classes
from ..errors import InputError, SegmentationError
from ..files import is_disk_full
from ..media import MediaKind
from ..pipeline import VideoOptions
from ..segmenter import ResizePolicy

REPORT_NAME = "batch-report.json"
MANIFEST_SUFFIX = ".json"
MANIFEST_VERSION = 1
KINDS = (MediaKind.IMAGE, MediaKind.VIDEO)  # the report's order
# The writers are the library's (``exports.labels_writer``, chosen by suffix): npz is the .npz
# array for a video and the 8-bit PNG for a photo, as for one file's --labels-out.
LABELS_SUFFIXES = {"npz": {MediaKind.VIDEO: ".npz", MediaKind.IMAGE: ".png"},
                   "zip": {MediaKind.VIDEO: ".zip", MediaKind.IMAGE: ".zip"},
                   "json": {MediaKind.VIDEO: ".json", MediaKind.IMAGE: ".json"}}


class Status(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # outputs already there, made from the same input with the same model and settings
    FAILED = "failed"
    IGNORED = "ignored"  # a file met in a folder or glob that is neither a video nor a photo


def labels_formats() -> tuple[str, ...]:
    return tuple(LABELS_SUFFIXES)


def labels_suffix(fmt: str, kind: MediaKind) -> str:
    return ".labels" + LABELS_SUFFIXES[fmt][kind]


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

    def video_for(self, labels: list[str] | tuple[str, ...]) -> VideoOptions:
        """``video`` with ``classes`` resolved for a model with ``labels`` (InputError if unknown)."""
        if not self.classes:
            return self.video
        draw = dataclasses.replace(self.video.draw, classes=chosen_classes(self.classes, labels))
        return dataclasses.replace(self.video, draw=draw)

    def settings(self, kind: MediaKind) -> dict:
        """Everything that shapes the output of a ``kind`` input, as JSON (what a rerun compares)."""
        draw = _settings_of(self.video.draw)
        background = self.video.draw.effect.background
        if isinstance(background, (str, os.PathLike)) and Path(background).is_file():
            draw["effect"]["background_file"] = file_identity(background)
        s = {"model": _model_identity(self.model, self.labels_file), "resize": str(self.resize),
             "classes": list(self.classes) if self.classes else None, "draw": draw}
        if kind == MediaKind.VIDEO:
            s["video"] = {k: v for k, v in _settings_of(self.video).items() if k != "draw"}
        return s


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go (absolute paths); what a worker or Ray task receives."""

    input: str
    kind: MediaKind
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
    kind: MediaKind | None = None
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
            "inputs": [jsonable(dataclasses.asdict(o)) for o in self.outcomes],
        }


@functools.cache
def library_version() -> str:
    """The installed package's version, else the checkout's pyproject version."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("video-segmentation")
    except PackageNotFoundError:
        return _project_version()


def _project_version() -> str:
    """The checkout's pyproject version when the package is not installed."""
    p = Path(__file__).resolve().parents[2] / "pyproject.toml"
    m = re.search(r'^version\s*=\s*"([^"]+)"', p.read_text(), re.M) if p.is_file() else None
    return m.group(1) if m else "unknown"


def one_line(exc: BaseException) -> str:
    """An exception as one line fit for the report: the library's own sentence, else type and message."""
    if isinstance(exc, OSError) and is_disk_full(exc):
        return "the disk is full (no space left on device); nothing was kept"
    text = str(exc) if isinstance(exc, (SegmentationError, OSError)) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def worker_name() -> str:
    """host:pid, what the report says made an output."""
    return f"{socket.gethostname()}:{os.getpid()}"


# -- settings as JSON -------------------------------------------------------------------------
def _settings_of(obj) -> dict:
    """An options dataclass as JSON: its compared fields only (not derived ones such as a decoded
    background image), nested options included."""
    return {f.name: (_settings_of(v) if dataclasses.is_dataclass(v) else jsonable(v))
            for f in dataclasses.fields(obj) if f.compare for v in [getattr(obj, f.name)]}


def jsonable(value):
    """Dataclass dicts -> JSON: enums as their values, tuples as lists, Fractions as strings."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def file_identity(path: str | os.PathLike) -> dict:
    """A file the settings name (model, labels, background image): path, size and mtime."""
    p = Path(os.path.expanduser(path))
    st = p.stat() if p.exists() else None
    return {"path": str(p.resolve()), "size": st.st_size if st else None, "mtime_ns": st.st_mtime_ns if st else None}


def _model_identity(model: str | None, labels_file: str | None) -> dict:
    """A catalog model by id (and pinned hash); a model file or folder and a labels file by identity."""
    from ..catalog import CATALOG, DEFAULT_MODEL_ID

    spec = model or DEFAULT_MODEL_ID
    ident: dict = {"id": spec}
    if spec in CATALOG:
        ident["sha256"] = CATALOG[spec].sha256
    elif Path(os.path.expanduser(spec)).exists():
        ident["file"] = file_identity(spec)
    if labels_file:
        ident["labels_file"] = file_identity(labels_file)
    return ident
