"""The server's limits and switches, read from ``SEGMENTATION_*`` environment variables.

A bad value is a clear error naming the variable, not a silent default: the app checks them
once at start and exits with that sentence.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass
from typing import Mapping

FALSE_WORDS = ("0", "false", "no")


def env_number(name: str, default: float, *, env: Mapping[str, str] | None = None, integer: bool = False,
               minimum: float = 0.0) -> float:
    """``env[name]`` (default ``os.environ``) as a number above ``minimum`` (``_`` separators
    allowed); unset or blank: ``default``. Anything else raises ValueError naming the variable."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}.") from None
    if not math.isfinite(value) or value <= minimum or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} must be {kind} above {minimum:g}, got {raw!r}.")
    return int(value) if integer else value


def env_flag(name: str, default: bool = True, *, env: Mapping[str, str] | None = None) -> bool:
    """``env[name]`` (default ``os.environ``) as a switch: 0, false or no (any case) is off,
    unset or blank is ``default``, anything else is on."""
    raw = (os.environ if env is None else env).get(name, "").strip().lower()
    if not raw:
        return default
    return raw not in FALSE_WORDS


ANY_PEER = "*"  # SEGMENTATION_TRUSTED_PROXIES: every peer is a proxy (the app is reachable only through one)


def env_networks(name: str, default: str, *, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``env[name]`` as comma-separated IP addresses / networks (``10.0.0.0/8``) or ``*``; unset or
    blank: ``default``. Returns the networks in canonical form; anything else raises ValueError."""
    raw = (os.environ if env is None else env).get(name, "").strip() or default
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    if items == (ANY_PEER,):
        return items
    try:
        return tuple(str(ipaddress.ip_network(x, strict=False)) for x in items)
    except ValueError:
        raise ValueError(f"{name} must be '*' or comma-separated IP addresses or networks, got {raw!r}.") from None


@dataclass(frozen=True)
class Limits:
    """Server-side limits. ``from_env`` reads the ``SEGMENTATION_*`` variables."""

    max_upload_mb: float = 200.0
    max_seconds: float = 120.0
    max_pixels: int = 3840 * 2160
    # Work per video job: frames decoded (the model runs on each in accurate mode; ~3.5 min at
    # 720p on 2 cores, see README) and the frame rate a header may claim.
    max_frames: int = 3600
    max_fps: float = 60.0
    max_job_seconds: float = 600.0  # wall clock per video job, whatever made it slow
    concurrency: int = 1  # heavy jobs (photo/video) at once
    queue_size: int = 16
    visitor_jobs: int = 2  # jobs per visitor (session, address) running or waiting: one running, one waiting
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For names the visitor ("*": any)
    live_concurrency: int = 2  # live webcam streams at once
    live_seconds: int = 120  # each live stream stops after this long
    tmp_max_age: int = 3600  # seconds job outputs are kept
    tmp_max_mb: float = 2048.0  # disk kept for job outputs; the oldest go first

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def tmp_max_bytes(self) -> int:
        return int(self.tmp_max_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Limits":
        d = cls()
        environ = os.environ if env is None else env

        def number(name: str, default: float, integer: bool = True) -> float:
            return env_number(name, default, env=env, integer=integer)

        # On a Hugging Face Space (SPACE_ID is set) every request arrives through its proxy.
        proxies = ANY_PEER if environ.get("SPACE_ID") else ""
        return cls(
            max_upload_mb=number("SEGMENTATION_MAX_UPLOAD_MB", d.max_upload_mb, integer=False),
            max_seconds=number("SEGMENTATION_MAX_SECONDS", d.max_seconds, integer=False),
            max_pixels=number("SEGMENTATION_MAX_PIXELS", d.max_pixels),
            max_frames=number("SEGMENTATION_MAX_FRAMES", d.max_frames),
            max_fps=number("SEGMENTATION_MAX_FPS", d.max_fps, integer=False),
            max_job_seconds=number("SEGMENTATION_MAX_JOB_SECONDS", d.max_job_seconds, integer=False),
            concurrency=number("SEGMENTATION_CONCURRENCY", d.concurrency),
            queue_size=number("SEGMENTATION_QUEUE_SIZE", d.queue_size),
            visitor_jobs=number("SEGMENTATION_VISITOR_JOBS", d.visitor_jobs),
            trusted_proxies=env_networks("SEGMENTATION_TRUSTED_PROXIES", proxies, env=env),
            live_concurrency=number("SEGMENTATION_LIVE_CONCURRENCY", d.live_concurrency),
            live_seconds=number("SEGMENTATION_LIVE_SECONDS", d.live_seconds),
            tmp_max_age=number("SEGMENTATION_TMP_MAX_AGE", d.tmp_max_age),
            tmp_max_mb=number("SEGMENTATION_TMP_MAX_MB", d.tmp_max_mb, integer=False),
        )
