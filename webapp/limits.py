"""The server's limits and switches, read from ``SEGMENTATION_*`` environment variables.

A bad value is a clear error naming the variable, not a silent default: the app checks them
once at start and exits with that sentence.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Limits:
    """Server-side limits. ``from_env`` reads the ``SEGMENTATION_*`` variables."""

    max_upload_mb: float = 200.0
    max_seconds: float = 120.0
    max_pixels: int = 3840 * 2160
    concurrency: int = 1  # heavy jobs (photo/video) at once
    queue_size: int = 16
    live_concurrency: int = 2  # live webcam streams at once
    live_seconds: int = 120  # each live stream stops after this long
    tmp_max_age: int = 3600  # seconds job outputs are kept

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Limits":
        d = cls()

        def number(name: str, default: float, integer: bool = True) -> float:
            return env_number(name, default, env=env, integer=integer)

        return cls(
            max_upload_mb=number("SEGMENTATION_MAX_UPLOAD_MB", d.max_upload_mb, integer=False),
            max_seconds=number("SEGMENTATION_MAX_SECONDS", d.max_seconds, integer=False),
            max_pixels=number("SEGMENTATION_MAX_PIXELS", d.max_pixels),
            concurrency=number("SEGMENTATION_CONCURRENCY", d.concurrency),
            queue_size=number("SEGMENTATION_QUEUE_SIZE", d.queue_size),
            live_concurrency=number("SEGMENTATION_LIVE_CONCURRENCY", d.live_concurrency),
            live_seconds=number("SEGMENTATION_LIVE_SECONDS", d.live_seconds),
            tmp_max_age=number("SEGMENTATION_TMP_MAX_AGE", d.tmp_max_age),
        )
