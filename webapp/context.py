"""The app's context: what ``app.main`` builds once and every handler shares.

Nothing here runs at import: ``AppContext.from_env`` reads the settings (a bad one raises
ValueError naming it), creates the job store's temporary folder, an empty segmenter cache and
the job admission (per-visitor counts, job slots).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

from .admission import Admission
from .jobs import SegmenterCache, TempStore
from segmentation import config

from .limits import Limits

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging() -> None:
    """The server's log: INFO and above to stderr, without httpx's line per request."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class AppContext:
    limits: Limits
    store: TempStore  # job outputs
    segmenters: SegmenterCache
    admission: Admission  # photo/video jobs: per-visitor counts and job slots
    warm_examples: bool = True  # compute the example results in the background after start

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AppContext":
        limits = Limits.from_env(env)
        return cls(limits=limits, store=TempStore(max_age=limits.tmp_max_age, max_bytes=limits.tmp_max_bytes),
                   segmenters=SegmenterCache(), admission=Admission(limits.concurrency, limits.visitor_jobs),
                   warm_examples=config.read("SEGMENTATION_WARM_EXAMPLES", env))

    def close(self) -> None:
        self.store.close()
