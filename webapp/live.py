"""The live webcam tab: one browser session's frame segmenter, latency and frame rate."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Hashable

import numpy as np

from segmentation import draw
from segmentation.draw import DrawOptions
from segmentation.effects import EffectOptions
from segmentation.images import as_rgb_array
from segmentation.matte import LANDSCAPE_ID, MatteSource, PersonMatte, person_ids
from segmentation.segmenter import Segmenter
from segmentation.temporal import frame_segmenter

LIVE_INTERVAL = 1 / 15  # seconds between webcam frames sent by the browser: a 15 fps camera's pace


class LiveSession:
    """State of one browser's live stream: its frame segmenter, latency and rate."""

    RESTART_GAP = 2.0  # seconds without frames after which the stream counts as restarted

    def __init__(self, interval: float = LIVE_INTERVAL):
        self.interval = interval
        self._key: tuple | None = None
        self._frame_seg = None
        self._last: float | None = None
        self.fps = 0.0
        self.latency_ms = 0.0
        self.frames = 0
        self.keyframes = 0
        self._effect: tuple[Hashable, EffectOptions | None] | None = None

    def effect_options(self, key: Hashable, build: Callable[[], EffectOptions | None]) -> EffectOptions | None:
        """The background effect's settings for ``key``, built once per change (``build`` may read the
        background image), not once per frame."""
        if self._effect is None or self._effect[0] != key:
            self._effect = (key, build())
        return self._effect[1]

    def process(self, segmenter: Segmenter, frame: np.ndarray, mode: str, alpha: float,
                classes: tuple[int, ...] | None, speed: str, temporal: bool = True,
                effect: EffectOptions | None = None, people: Segmenter | None = None) -> tuple[np.ndarray, str]:
        """Segment and draw one webcam frame; return the picture and a status line.

        ``people``: a person model (the landscape selfie model) that stands in for ``segmenter``
        when a background effect keeps only people: it makes the matte alone, several times faster
        than the semantic model, which the picture would not show anyway.
        """
        t0 = time.perf_counter()
        rgb = as_rgb_array(frame)
        # the live image is a JPEG: no alpha, so remove-background shows the key colour
        options = DrawOptions(mode=mode, alpha=alpha, classes=classes,
                              effect=effect or EffectOptions()).resolve(segmenter.labels).opaque()
        person = options.matte_ids(segmenter.labels)
        light = people is not None and bool(person) and set(person) == set(options.classes)
        if light:
            segmenter = people
            person = person_ids(people.labels)
            options = replace(options, classes=person)
        key = (segmenter.entry.id, speed, temporal, bool(person))
        if key != self._key or (self._last is not None and t0 - self._last > self.RESTART_GAP):
            # new model/speed/fusion/matte, or a new stream: start afresh
            self._key = key
            matte = PersonMatte(segmenter, MatteSource.MODEL if light else options.matte) if person else None
            self._frame_seg = frame_segmenter(segmenter, speed, 1.0 / self.interval, temporal, matte=matte)
            self.fps, self._last = 0.0, None
        labels = self._frame_seg(rgb)
        out = draw.render(rgb, labels.class_map, segmenter.palette, options, labels.matte, person)
        now = time.perf_counter()
        latency = (now - t0) * 1000
        self.latency_ms = latency if self.frames == 0 else 0.8 * self.latency_ms + 0.2 * latency
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0 else 0.8 * self.fps + 0.2 * inst
        self._last = now
        self.frames += 1
        self.keyframes += int(labels.keyframe)
        text = (f"Live · latency {self.latency_ms:.0f} ms per frame · {self.fps:.1f} frames/s · "
                f"{self.frames} frames ({self.keyframes} model runs) · model {segmenter.entry.id}"
                f"{' (people only: the light person model)' if light else ''} · {speed}"
                f"{' · temporal fusion' if temporal else ''}")
        return out, text
