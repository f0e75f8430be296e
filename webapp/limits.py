"""The server's limits, read from the ``SEGMENTATION_*`` variables of ``segmentation.config`` (the
one table of every setting, with its default; ``docs/configuration.md``).

A bad value is a clear error naming the variable, not a silent default: the app checks them
once at start and exits with that sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from segmentation import config

ANY_PEER = config.ANY_PEER  # SEGMENTATION_TRUSTED_PROXIES: every peer is a proxy


@dataclass(frozen=True)
class Limits:
    """Server-side limits. ``from_env`` reads the ``SEGMENTATION_*`` variables."""

    max_upload_mb: float = config.default("SEGMENTATION_MAX_UPLOAD_MB")
    max_seconds: float = config.default("SEGMENTATION_MAX_SECONDS")
    max_pixels: int = config.default("SEGMENTATION_MAX_PIXELS")
    # Work per video job: frames decoded (the model runs on each in accurate mode; ~3.5 min at
    # 720p on 2 cores, see docs/quality-and-speed.md) and the frame rate a header may claim.
    max_frames: int = config.default("SEGMENTATION_MAX_FRAMES")
    max_fps: float = config.default("SEGMENTATION_MAX_FPS")
    max_job_seconds: float = config.default("SEGMENTATION_MAX_JOB_SECONDS")  # wall clock per video job
    concurrency: int = config.default("SEGMENTATION_CONCURRENCY")  # heavy jobs (photo/video) at once
    queue_size: int = config.default("SEGMENTATION_QUEUE_SIZE")
    visitor_jobs: int = config.default("SEGMENTATION_VISITOR_JOBS")  # per visitor: one running, one waiting
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For names the visitor ("*": any)
    live_concurrency: int = config.default("SEGMENTATION_LIVE_CONCURRENCY")  # live webcam streams at once
    live_seconds: int = config.default("SEGMENTATION_LIVE_SECONDS")  # each live stream stops after this long
    tmp_max_age: int = config.default("SEGMENTATION_TMP_MAX_AGE")  # seconds job outputs are kept
    tmp_max_mb: float = config.default("SEGMENTATION_TMP_MAX_MB")  # disk for job outputs; oldest go first

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def tmp_max_bytes(self) -> int:
        return int(self.tmp_max_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Limits":
        """The limits from the ``SEGMENTATION_*`` variables (``segmentation.config``)."""
        environ = os.environ if env is None else env

        def read(name: str, fallback=None):
            return config.read(name, env, fallback)

        # On a Hugging Face Space (SPACE_ID is set) every request arrives through its proxy.
        proxies = config.ANY_PEER if environ.get("SPACE_ID") else None
        return cls(
            max_upload_mb=read("SEGMENTATION_MAX_UPLOAD_MB"), max_seconds=read("SEGMENTATION_MAX_SECONDS"),
            max_pixels=read("SEGMENTATION_MAX_PIXELS"), max_frames=read("SEGMENTATION_MAX_FRAMES"),
            max_fps=read("SEGMENTATION_MAX_FPS"), max_job_seconds=read("SEGMENTATION_MAX_JOB_SECONDS"),
            concurrency=read("SEGMENTATION_CONCURRENCY"), queue_size=read("SEGMENTATION_QUEUE_SIZE"),
            visitor_jobs=read("SEGMENTATION_VISITOR_JOBS"),
            trusted_proxies=tuple(read("SEGMENTATION_TRUSTED_PROXIES", proxies) or ()),
            live_concurrency=read("SEGMENTATION_LIVE_CONCURRENCY"), live_seconds=read("SEGMENTATION_LIVE_SECONDS"),
            tmp_max_age=read("SEGMENTATION_TMP_MAX_AGE"), tmp_max_mb=read("SEGMENTATION_TMP_MAX_MB"),
        )
