"""``SegmenterCache``: the app's models, one ``Segmenter`` per model id, loaded once."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from segmentation.segmenter import Segmenter, SegmenterOptions

from .checks import check_model_id

log = logging.getLogger(__name__)


class SegmenterCache:
    """One ``Segmenter`` per model id, built on first use. Thread-safe; a model loads once."""

    def __init__(self, threads: int | None = None, factory: Callable[[str], Segmenter] | None = None):
        self.threads = threads
        self._factory = factory or (lambda mid: Segmenter(SegmenterOptions(model=mid, threads=self.threads)))
        self._items: dict[str, Segmenter] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> Segmenter:
        check_model_id(model_id)
        with self._lock:
            seg = self._items.get(model_id)
            if seg is not None:
                return seg
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:
            with self._lock:
                seg = self._items.get(model_id)
            if seg is None:
                t = time.perf_counter()
                seg = self._factory(model_id)
                log.info("Loaded model %s in %.0f ms", model_id, (time.perf_counter() - t) * 1000)
                with self._lock:
                    self._items[model_id] = seg
        return seg

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._items)
