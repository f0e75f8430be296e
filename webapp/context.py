"""The app's context: what ``app.main`` builds once and every handler shares.

Nothing here runs at import: ``AppContext.from_env`` reads the settings (a bad one raises
ValueError naming it), creates the job store's temporary folder and an empty segmenter cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

from .jobs import SegmenterCache, TempStore
from .limits import Limits, env_flag

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
    warm_examples: bool = True  # compute the example results in the background after start

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "AppContext":
        limits = Limits.from_env(env)
        return cls(limits=limits, store=TempStore(max_age=limits.tmp_max_age), segmenters=SegmenterCache(),
                   warm_examples=env_flag("SEGMENTATION_WARM_EXAMPLES", env=env))

    def close(self) -> None:
        self.store.close()
