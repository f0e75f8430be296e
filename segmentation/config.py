"""Every ``SEGMENTATION_*`` setting in one place: its name, kind, default and meaning, and one reader.

The library, the CLI and the app read their environment variables only through :func:`read`. A bad
value is refused in one sentence naming the variable (``ValueError``), never a silent default or a
traceback: the CLI and the app check every setting they use once, at start (:func:`check`).
:func:`markdown` is the table of ``docs/configuration.md``; a test keeps the two equal.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass
from typing import Mapping

FALSE_WORDS = ("0", "false", "no")
ANY_PEER = "*"  # SEGMENTATION_TRUSTED_PROXIES: every peer is a proxy (the app is reachable only through one)
LIBRARY, APP = "library", "app"


@dataclass(frozen=True)
class Setting:
    """One environment variable: ``kind`` is number, integer, flag, path, paths or networks."""

    name: str
    kind: str
    default: object
    used_by: str  # "library" (the library, CLI and batches; the app too) or "app" (the web app only)
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("SEGMENTATION_WEIGHTS", "path", None, LIBRARY,
            "folder searched first for model files, and written to for downloads (CI: ../shared/models)"),
    Setting("SEGMENTATION_MAX_IMAGE_PIXELS", "integer", 40_000_000, LIBRARY,
            "photos with more pixels are downscaled to this many before segmenting"),
    Setting("SEGMENTATION_HARD_MAX_IMAGE_PIXELS", "integer", 200_000_000, LIBRARY,
            "photos with more pixels than this are refused (a decompression bomb)"),
    Setting("SEGMENTATION_MAX_UPLOAD_MB", "number", 200.0, APP, "largest upload, MB"),
    Setting("SEGMENTATION_MAX_SECONDS", "number", 120.0, APP, "longest video, seconds"),
    Setting("SEGMENTATION_MAX_PIXELS", "integer", 3840 * 2160, APP,
            "largest video frame in pixels (photos above it are downscaled)"),
    Setting("SEGMENTATION_MAX_FRAMES", "integer", 3600, APP,
            "most frames in one video (from the header, and again while decoding)"),
    Setting("SEGMENTATION_MAX_FPS", "number", 60.0, APP, "highest frame rate a video's header may state"),
    Setting("SEGMENTATION_MAX_JOB_SECONDS", "number", 600.0, APP,
            "wall clock of one video job; past it the job is stopped and nothing kept"),
    Setting("SEGMENTATION_CONCURRENCY", "integer", 1, APP, "photo/video jobs running at once"),
    Setting("SEGMENTATION_QUEUE_SIZE", "integer", 16, APP,
            "jobs waiting for a slot (as many again wait in Gradio's queue before 'queue full')"),
    Setting("SEGMENTATION_VISITOR_JOBS", "integer", 2, APP,
            "jobs one visitor (session, and address) may have running or waiting"),
    Setting("SEGMENTATION_TRUSTED_PROXIES", "networks", "", APP,
            "peers (IP addresses / networks, or *) whose X-Forwarded-For names the visitor; "
            "* on a Hugging Face Space (SPACE_ID set), else none"),
    Setting("SEGMENTATION_LIVE_CONCURRENCY", "integer", 2, APP, "live webcam sessions at once"),
    Setting("SEGMENTATION_LIVE_SECONDS", "integer", 120, APP, "length of one live webcam session, seconds"),
    Setting("SEGMENTATION_TMP_MAX_AGE", "integer", 3600, APP, "seconds before results are deleted"),
    Setting("SEGMENTATION_TMP_MAX_MB", "number", 2048.0, APP,
            "disk kept for results, MB; the oldest go first, a result that cannot fit is refused"),
    Setting("SEGMENTATION_EXAMPLES_SOURCE", "paths", "", APP,
            "local folders (separated by the OS path separator) holding the example files"),
    Setting("SEGMENTATION_EXAMPLES_DOWNLOAD", "flag", True, APP,
            "download a missing example file from its public source (0: never)"),
    Setting("SEGMENTATION_WARM_EXAMPLES", "flag", True, APP,
            "compute the example results in the background after start (0: on first click)"),
    Setting("SEGMENTATION_LIVE_SLOW_MODEL", "number", 1.0, APP,
            "tests and benchmarks: the live view's model calls cost this many times as much (repeated, "
            "so as much more CPU as on a slower machine; shows how the live view adapts to one)"),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    """The setting called ``name`` (KeyError for a name not in the table: a programming error)."""
    return _BY_NAME[name]


def default(name: str):
    """The default value of a setting."""
    return _BY_NAME[name].default


def read(name: str, env: Mapping[str, str] | None = None, fallback=None):
    """The value of setting ``name`` in ``env`` (default ``os.environ``), parsed by its kind; unset
    or blank gives ``fallback`` (when given) or the table's default. A bad value raises ValueError
    naming the variable."""
    s = _BY_NAME[name]
    fallback = s.default if fallback is None else fallback
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return networks(name, fallback) if s.kind == "networks" and fallback else fallback
    if s.kind in ("number", "integer"):
        return number(name, raw, integer=s.kind == "integer")
    if s.kind == "flag":
        return raw.lower() not in FALSE_WORDS
    if s.kind == "networks":
        return networks(name, raw)
    return raw


def number(name: str, raw: str, integer: bool = False, minimum: float = 0.0) -> float:
    """``raw`` as a number above ``minimum`` (``_`` separators allowed), else ValueError naming ``name``."""
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}.") from None
    if not math.isfinite(value) or value <= minimum or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} must be {kind} above {minimum:g}, got {raw!r}.")
    return int(value) if integer else value


def networks(name: str, raw: str) -> tuple[str, ...]:
    """``raw`` as comma-separated IP addresses / networks (``10.0.0.0/8``) or ``*``, in canonical form."""
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    if items == (ANY_PEER,):
        return items
    try:
        return tuple(str(ipaddress.ip_network(x, strict=False)) for x in items)
    except ValueError:
        raise ValueError(f"{name} must be '*' or comma-separated IP addresses or networks, got {raw!r}.") from None


def check(used_by: str | None = None, env: Mapping[str, str] | None = None) -> None:
    """Read every setting (of ``used_by``, or all): the first bad value raises its ValueError."""
    for s in SETTINGS:
        if used_by is None or s.used_by == used_by:
            read(s.name, env)


def markdown() -> str:
    """The table of every setting, as ``docs/configuration.md`` holds it."""
    rows = ["| variable | kind | default | used by | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        shown = ("–" if s.default in (None, "") else "on" if s.default is True
                 else f"{s.default:,}".replace(",", "_") if isinstance(s.default, int) else f"{s.default:g}"
                 if isinstance(s.default, float) else str(s.default))
        rows.append(f"| `{s.name}` | {s.kind} | {shown} | {s.used_by} | {s.meaning} |")
    return "\n".join(rows) + "\n"
