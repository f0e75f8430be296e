"""The live webcam tab: one browser session's frame segmenter, latency and frame rate, and how it
keeps up with the camera on the machine it runs on (``LiveAdapter``)."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable, Hashable

import cv2
import numpy as np

from segmentation import config, draw
from segmentation.draw import DrawOptions
from segmentation.effects import EffectOptions
from segmentation.images import as_rgb_array
from segmentation.matte import MatteSource, PersonMatte, person_ids
from segmentation.segmenter import Segmenter
from segmentation.temporal import Schedule, frame_segmenter

LIVE_INTERVAL = 1 / 15  # seconds between webcam frames sent by the browser: a 15 fps camera's pace
SLOW_MODEL_ENV = "SEGMENTATION_LIVE_SLOW_MODEL"  # tests and benchmarks: model calls cost this many times as much


class LiveAdapter:
    """How the live view keeps up with the camera, chosen from its own per-frame times.

    Each frame's server time (model, flow, drawing) is measured. When the median of the last
    ``WINDOW`` frames is over ``budget_ms`` (a share of the camera's frame time, the rest being
    the JPEG and its trip), the view steps down one level:

    0. the settings as they are (e.g. ``accurate``: the model on every frame);
    1. ``realtime``: the model on keyframes only, in a background thread, the motion followed by
       optical flow on every frame (``keyframes.BackgroundKeyframes``): no frame waits for the model;
    2. ``realtime`` on the frame at ``SMALL`` of its size (less flow, drawing and JPEG per frame).

    When the median falls under ``UP_SHARE`` of the budget (at level 1: when it plus one model run
    would fit the budget, as accurate would need) the view tries the level above again,
    after ``UP_AFTER`` s, then twice as long after each try that had to step down again (at most
    ``UP_AFTER_MAX`` s), so a view that cannot keep up at a level does not keep retrying it.
    The first ``WARM_FRAMES`` frames after a change are not counted (the model's warm-up).

    Only while the user has not chosen the speed themselves (``adapt``): their choice wins.
    """

    WINDOW = 8
    WARM_FRAMES = 3
    BUDGET_SHARE = 0.75
    UP_SHARE = 0.4
    UP_AFTER, UP_AFTER_MAX = 10.0, 120.0
    SMALL = 0.5
    LEVELS = 3

    def __init__(self, interval: float = LIVE_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.budget_ms = interval * 1000 * self.BUDGET_SHARE
        self.clock = clock
        self.level = 0
        self.reason = ""
        self._times: list[float] = []
        self._skip = self.WARM_FRAMES
        self._changed_at = clock()
        self._up_after = self.UP_AFTER
        self._went_up_at: float | None = None

    def choose(self, speed: str, adapt: bool = True) -> tuple[str, float]:
        """The (speed, scale of the frame) to use now for the user's ``speed``."""
        if not adapt or self.level == 0:
            return speed, 1.0
        return "realtime", (self.SMALL if self.level >= 2 else 1.0)

    def record(self, ms: float, speed: str, adapt: bool = True, model_ms: float | None = None) -> bool:
        """Count one frame's time (at the settings ``choose(speed)`` gave); True when the level changed.

        ``model_ms``: at realtime on the full frame (level 1), what one model run takes (off the frame
        path): accurate would add it to every frame, so the view tries accurate again only when the
        frame's time plus it fits the budget, not on every quiet stretch."""
        if not adapt:
            return False
        if self._skip > 0:
            self._skip -= 1
            return False
        self._times.append(ms)
        if len(self._times) < self.WINDOW:
            return False
        self._times = self._times[-4 * self.WINDOW:]
        median = statistics.median(self._times[-self.WINDOW:])
        now = self.clock()
        if median > self.budget_ms and self.level < self.LEVELS - 1:
            was = self.describe(speed)
            # realtime already: level 1 is level 0, go straight to the smaller frame
            self._set(2 if self.level == 0 and speed == "realtime" else self.level + 1, now)
            if self._went_up_at is not None and now - self._went_up_at < 3 * self.UP_AFTER:
                self._up_after = min(self.UP_AFTER_MAX, 2 * self._up_after)  # the last try up failed
            self._went_up_at = None
            self.reason = f"{was} took {median:.0f} ms per frame, over the {self.budget_ms:.0f} ms it may take"
            return True
        fits = (median + model_ms < self.budget_ms if self.level == 1 and model_ms is not None
                else median < self.UP_SHARE * self.budget_ms)
        if fits and self.level > 0 and now - self._changed_at >= self._up_after:
            was = self.describe(speed)
            self._set(0 if self.level == 2 and speed == "realtime" else self.level - 1, now)
            self._went_up_at = now
            self.reason = f"{was} took {median:.0f} ms per frame: room to try more again"
            return True
        return False

    def _set(self, level: int, now: float) -> None:
        self.level, self._changed_at, self._times, self._skip = level, now, [], self.WARM_FRAMES

    def describe(self, speed: str, adapt: bool = True) -> str:
        used, scale = self.choose(speed, adapt)
        return used + (f" at {scale:.0%} size" if scale < 1 else "")

    def status(self, speed: str, adapt: bool = True) -> str:
        """What the view chose, for the status line."""
        if not adapt:
            return f"{speed} (your choice: not adapted)"
        if self.level == 0:
            return f"{speed} (keeps up; adapts if it falls behind)"
        return f"{self.describe(speed)}, chosen to keep up with the camera ({self.reason})"


class _Slowed:
    """A segmenter whose model calls cost ``factor`` times as much (``SLOW_MODEL_ENV``): how the
    live view behaves on a slower machine, shown on this one. The call is repeated (its whole
    part), so the extra time is CPU time on the model's threads, as on a slower CPU, which the
    browser and the rest of the app then compete with; a fractional rest is slept."""

    MODEL_CALLS = frozenset({"scores", "predict", "segment", "segment_scores"})

    def __init__(self, segmenter, factor: float):
        self._segmenter, self._factor = segmenter, factor

    def __getattr__(self, name):
        attr = getattr(self._segmenter, name)
        if name not in self.MODEL_CALLS:
            return attr

        def slow(*args, **kwargs):
            t0 = time.perf_counter()
            out = attr(*args, **kwargs)
            once = time.perf_counter() - t0
            for _ in range(int(self._factor) - 1):
                attr(*args, **kwargs)
            time.sleep((self._factor - max(1, int(self._factor))) * once)
            return out

        return slow


def slowed(segmenter):
    """``segmenter``, or (with ``SEGMENTATION_LIVE_SLOW_MODEL`` over 1) its slowed stand-in."""
    factor = config.read(SLOW_MODEL_ENV)  # checked at start: a bad value never reaches here
    return _Slowed(segmenter, factor) if factor > 1 and segmenter is not None else segmenter


class LiveSession:
    """State of one browser's live stream: its frame segmenter, latency and rate."""

    RESTART_GAP = 2.0  # seconds without frames after which the stream counts as restarted
    STATUS_EVERY = 0.5  # seconds: the status line goes to the page at most this often (see status_due)

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
        self.adapter = LiveAdapter(interval)
        self._status_sent: tuple[float, int] | None = None  # when, and at which adapter level
        self.timer_on = False  # the page's idle timer (Handlers.live_idle) is ticking

    def status_due(self) -> bool:
        """Whether this frame's status line should go to the page: each update is rendered again
        there (a Markdown block), which at 15 frames/s costs the browser CPU the picture needs on a
        small machine. Sent on the first frame, when the view changes what it chose, and every
        ``STATUS_EVERY`` s; the picture itself goes with every frame."""
        now = self.adapter.clock()
        last = self._status_sent
        if last is None or last[1] != self.adapter.level or now - last[0] >= self.STATUS_EVERY:
            self._status_sent = (now, self.adapter.level)
            return True
        return False

    def effect_options(self, key: Hashable, build: Callable[[], EffectOptions | None]) -> EffectOptions | None:
        """The background effect's settings for ``key``, built once per change (``build`` may read the
        background image), not once per frame."""
        if self._effect is None or self._effect[0] != key:
            self._effect = (key, build())
        return self._effect[1]

    def process(self, segmenter: Segmenter, frame: np.ndarray, mode: str, alpha: float,
                classes: tuple[int, ...] | None, speed: str, temporal: bool = True,
                effect: EffectOptions | None = None, people: Segmenter | None = None,
                adapt: bool = False) -> tuple[np.ndarray, str]:
        """Segment and draw one webcam frame; return the picture and a status line.

        ``adapt``: the user has not chosen the speed, so ``LiveAdapter`` may choose how to keep up
        (realtime, a smaller frame); the status line says what it chose and why.

        ``people``: a person model (the landscape selfie model) that stands in for ``segmenter``
        when a background effect keeps only people: it makes the matte alone, several times faster
        than the semantic model, which the picture would not show anyway.
        """
        t0 = time.perf_counter()
        asked = speed
        speed, scale = self.adapter.choose(asked, adapt)
        rgb = as_rgb_array(frame)
        if scale < 1:
            h, w = rgb.shape[:2]
            rgb = cv2.resize(rgb, (max(16, round(w * scale)), max(16, round(h * scale))),
                             interpolation=cv2.INTER_AREA)
        # the live image is a JPEG: no alpha, so remove-background shows the key colour
        # blur and feather are in the picture's pixels: on the smaller frame, smaller by as much
        options = DrawOptions(mode=mode, alpha=alpha, classes=classes,
                              effect=(effect or EffectOptions()).scaled(scale)).resolve(segmenter.labels).opaque()
        person = options.matte_ids(segmenter.labels)
        light = people is not None and bool(person) and set(person) == set(options.classes)
        if light:
            segmenter = people
            person = person_ids(people.labels)
            options = replace(options, classes=person)
        key = (segmenter.entry.id, speed, temporal, bool(person), scale)
        if key != self._key or (self._last is not None and t0 - self._last > self.RESTART_GAP):
            # new model/speed/fusion/matte, or a new stream: start afresh
            self._key = key
            matte = PersonMatte(segmenter, MatteSource.MODEL if light else options.matte) if person else None
            # realtime runs the model beside the frames: no camera frame waits for it
            self._frame_seg = frame_segmenter(segmenter, speed, 1.0 / self.interval, temporal, matte=matte,
                                              schedule=Schedule.BACKGROUND)
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
        self.adapter.record(latency, asked, adapt, self._frame_seg.model_ms)
        text = (f"Live · latency {self.latency_ms:.0f} ms per frame · {self.fps:.1f} frames/s · "
                f"{self.frames} frames ({self.keyframes} model runs) · model {segmenter.entry.id}"
                f"{' (people only: the light person model)' if light else ''} · "
                f"{self.adapter.status(asked, adapt)}"
                f"{' · temporal fusion' if temporal else ''}")
        return out, text
