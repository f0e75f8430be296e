"""Realtime: the model on keyframes only, its fused scores carried by optical flow in between, and
the schedules that say where keyframes fall (``Schedule``): by frame index (files), by the clock,
or by the clock with the model in the background (the live view).
"""

from __future__ import annotations

import threading
import time
from enum import StrEnum

import cv2
import numpy as np

from .errors import parse_choice
from .matte import PersonMatte
from .segmenter import Segmenter
from .tracking import FrameLabels, TemporalOptions, Tracked, warp_error, warp_scores


class Schedule(StrEnum):
    """How realtime picks its keyframes: from the frames alone (files: reproducible), from the clock
    (keeps pace with the source on any machine, but differs from run to run), or from the clock with
    the model in the background (the live view: no frame waits for the model)."""

    FRAMES = "frames"
    CLOCK = "clock"
    BACKGROUND = "background"


def _chain(to_key: np.ndarray | None, step: np.ndarray) -> np.ndarray:
    """The map back to a keyframe, extended by one more frame's flow ``step`` (None: the keyframe)."""
    if to_key is None:
        return step
    return cv2.remap(to_key, step, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class Keyframes(Tracked):
    """Realtime: the model on keyframes, the keyframe's fused scores carried by flow in between.

    Each frame's flow is chained onto the map back to the last keyframe, and
    the keyframe's scores are sampled once through it: no blur accumulates
    from resampling frame after frame.

    Where keyframes fall (``schedule``):

    * ``frames`` (files, the default of the pipeline): from the frames alone, so
      the same video and settings give the same answers on any machine, in
      any number of processes. A keyframe at every *anchor* (a frame index
      divisible by ``options.interval``), on a scene cut, and at most once
      between two anchors when the carried scores get unreliable (the
      keyframe warped to the frame differs from it, or the motion
      accumulated since the keyframe passes its threshold). Everything the
      decision reads is reset at a keyframe, so a stream entered at an anchor
      takes the same keyframes from there on as one that started at frame 0
      (what the chunks of ``segmentation.chunks`` rely on). At every
      ``options.restart_interval``-th frame (300: 10 s at 30 fps) the keyframe
      starts afresh, as on a scene cut, instead of being blended into the
      carried scores: from there on the answers depend on nothing before,
      so a chunk that starts there equals the single pass bit for bit.
    * ``clock``: every ``interval`` frames, chosen from the measured cost of
      the model vs. the flow so the whole stays within the source's frame
      time (``budget_s``); on a scene cut; and when the carried scores get
      unreliable, as long as the time credit (budget earned by cheap flow
      frames, minus what was spent) covers a model run. Keeps pace on any
      machine, but differs from run to run.
    * ``background``: :class:`BackgroundKeyframes`.

    With ``blend`` (temporal on) a keyframe's scores are blended into the
    carried ones with ``keyframe_weight``; without, they replace them.
    """

    def __init__(self, segmenter: Segmenter, fps: float, options: TemporalOptions, blend: bool = True,
                 matte: PersonMatte | None = None, schedule: Schedule | str = Schedule.CLOCK):
        super().__init__(segmenter, options, options.keyframe_flow_width, matte)
        self.blend = blend
        self.schedule = parse_choice(Schedule, schedule, "keyframe schedule")
        self.fps = max(float(fps), 1e-3)
        self.budget_s = options.budget_share / self.fps
        self._key_gray: np.ndarray | None = None
        self._to_key: np.ndarray | None = None  # per pixel: where it was in the keyframe
        self._since = 0
        self._motion = 0.0
        self._triggered = 0  # frames schedule: content keyframes taken since the last anchor
        self._t_model = 0.05
        self._t_flow = 0.003
        self._credit = 0.0

    @property
    def interval(self) -> int:
        """Scheduled keyframe interval: the anchors' spacing (frames schedule), or the one that keeps
        the mean cost within the budget (clock schedule)."""
        if self.schedule is Schedule.FRAMES:
            return max(1, int(self.opt.interval))
        spare = self.budget_s - self._t_flow
        if spare <= 0:
            return self.opt.max_interval
        k = int(np.ceil((self._t_model - self._t_flow) / spare)) if self._t_model > spare else 1
        return int(np.clip(k, self.opt.min_interval, self.opt.max_interval))

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        if self.schedule is Schedule.FRAMES:
            return self._decide(rgb)
        t0 = time.perf_counter()
        out = self._decide(rgb)
        # Time credit: each frame earns the budget and pays what it cost.
        self._credit = min(self._credit + self.budget_s - (time.perf_counter() - t0), 2 * self._t_model)
        return out

    @property
    def restart(self) -> bool:
        """Whether the current frame starts afresh (frames schedule, every ``restart_interval``)."""
        r = self.opt.restart_interval
        return self.schedule is Schedule.FRAMES and r > 0 and self.index % r == 0

    def _due(self, unreliable: bool) -> bool:
        """Whether this (not cut) frame is a keyframe."""
        if self.schedule is Schedule.FRAMES:
            if self.index % self.interval == 0:
                return True
            if unreliable and self._triggered < self.opt.triggers and self._since + 1 >= self.opt.min_interval:
                self._triggered += 1
                return True
            return False
        return self._since + 1 >= self.interval or (
            unreliable and self._since + 1 >= self.opt.min_interval and self._credit >= self._t_model)

    def _follow(self, gray: np.ndarray) -> np.ndarray:
        """The flow back to the previous frame (chained onto the map back to the keyframe); returns it."""
        t = time.perf_counter()
        step = self._flow.map_to_prev(gray)
        self._motion += float(np.abs(step - self._flow.grid(gray.shape)).mean()) / gray.shape[1]
        self._to_key = _chain(self._to_key, step)
        self._flow.prev = gray
        self._t_flow = 0.9 * self._t_flow + 0.1 * (time.perf_counter() - t)
        return step

    def _carried(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """The warp error against the keyframe, the fused scores carried to this frame, and whether
        they are unreliable (the warp explains the frame badly, or much has moved since)."""
        err = warp_error(gray, self._key_gray, self._to_key)
        unreliable = float(err.mean()) > self.opt.error_threshold or self._motion > self.opt.motion_threshold
        return err, warp_scores(self._fused, self._to_key), unreliable

    def _merge(self, new: np.ndarray, new_matte: np.ndarray | None,
               warp: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        """A keyframe's scores (and matte) into the fused state: blended with the history carried to
        the keyframe (``warp``: the fused scores carried there, its map back to the previous keyframe,
        and its warp error), or alone without one or without ``blend``."""
        if warp is None or not self.blend:
            self._fused = new
            self._fuse_matte(new_matte, None, None, 1.0)
            return
        carried, to_key, err = warp
        self._fused = self._blend(new, carried, self._trust(err, carried.shape), self.opt.keyframe_weight)
        self._fuse_matte(new_matte, to_key, err, self.opt.keyframe_weight)

    def _decide(self, rgb: np.ndarray) -> FrameLabels:
        gray = self._flow.gray(rgb)
        if self.schedule is Schedule.FRAMES and (self.index % self.interval == 0 or self.restart):
            self._triggered = 0
        if self._fused is None or self.restart or self._flow.is_cut(gray, self.opt.cut_threshold):
            return self._keyframe(rgb, gray, None)
        self._follow(gray)
        err, carried, unreliable = self._carried(gray)
        if self._due(unreliable):
            return self._keyframe(rgb, gray, (carried, self._to_key, err))
        self._since += 1
        matte = None if self._matte is None else warp_scores(self._matte, self._to_key)
        return self._labels(rgb, False, carried, matte)

    def _run_model(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
        """The model's scores for ``rgb``, the person matte's logits (with a matte), and the seconds
        both took. Touches no state: the background schedule runs it in a thread of its own."""
        t = time.perf_counter()
        new = self.seg.scores(rgb)
        return new, self._new_matte(rgb, new), time.perf_counter() - t

    def _keyframe(self, rgb: np.ndarray, gray: np.ndarray, warp) -> FrameLabels:
        new, new_matte, took = self._run_model(rgb)
        self._t_model = 0.8 * self._t_model + 0.2 * took if self.keyframes else took
        self._merge(new, new_matte, warp)
        self._flow.prev = self._key_gray = gray
        self._to_key = None
        self._since = 0
        self._motion = 0.0
        return self._labels(rgb, True)


class _ModelRun:
    """One model run (scores and person matte) on a frame, in a thread of its own."""

    def __init__(self, run, rgb: np.ndarray):
        self.result = self.error = None
        self._thread = threading.Thread(target=self._main, args=(run, rgb), name="keyframe", daemon=True)
        self._thread.start()

    def _main(self, run, rgb) -> None:
        try:
            self.result = run(rgb)
        except BaseException as exc:  # raised again in the frame path, where the caller handles it
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def get(self):
        if self.error is not None:
            raise self.error
        return self.result


class BackgroundKeyframes(Keyframes):
    """Realtime for a live camera: the model runs beside the frames, never in their path.

    A frame takes the flow and the drawing only: a camera frame's answer never
    waits for the model, so the view keeps the camera's pace with a model
    slower than its frame time. A keyframe is handed to a background thread
    (one at a time); its answer, for the frame it was given, is blended in as
    a keyframe there would have been (against the history warped to that
    frame) and then carried by the flow chained since, to the frame on which
    it lands. A new run starts ``interval`` frames after the last, spaced so
    the model runs at most ``options.model_share`` of the time (the rest of
    the machine draws, encodes and shows the picture), or earlier once the
    carried scores get unreliable. The first frame and scene cuts still run
    the model in the frame's path: there is nothing to carry.
    """

    def __init__(self, segmenter: Segmenter, fps: float, options: TemporalOptions, blend: bool = True,
                 matte: PersonMatte | None = None):
        super().__init__(segmenter, fps, options, blend, matte, Schedule.BACKGROUND)
        self._run: _ModelRun | None = None
        # the sent frame: (grey, the fused scores carried to it, its map back to the keyframe, its warp error)
        self._sent: tuple | None = None
        self._to_sent: np.ndarray | None = None  # per pixel of this frame: where it was in the sent frame
        self._since_sent = 0
        self._motion_sent = 0.0  # the motion since the keyframe when the run was sent

    @property
    def model_ms(self) -> float:
        """What one model run takes (smoothed), for the live view's adapter."""
        return 1000 * self._t_model

    @property
    def interval(self) -> int:
        """Frames between model runs, so that one run (measured) fills ``model_share`` of the time."""
        k = int(np.ceil(self._t_model * self.fps / self.opt.model_share))
        return int(np.clip(k, self.opt.min_interval, self.opt.max_interval))

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        gray = self._flow.gray(rgb)
        if self._fused is None or self._flow.is_cut(gray, self.opt.cut_threshold):
            self._run = None  # an answer for the scene before is of no use
            return self._keyframe(rgb, gray, None)
        step = self._follow(gray)
        self._since += 1
        if self._run is not None:
            self._to_sent = _chain(self._to_sent, step)
            self._since_sent += 1
        landed = self._run is not None and self._run.done
        if landed:
            self._land()
        err, carried, unreliable = self._carried(gray)
        if self._run is None and (self._since >= self.interval
                                  or (unreliable and self._since >= self.opt.min_interval)):
            self._send(rgb, gray, carried, err)
        matte = None if self._matte is None else warp_scores(self._matte, self._to_key)
        return self._labels(rgb, landed, carried, matte)

    def _send(self, rgb: np.ndarray, gray: np.ndarray, carried: np.ndarray, err: np.ndarray) -> None:
        self._run = _ModelRun(self._run_model, rgb.copy())  # the caller may reuse its buffer
        self._sent = (gray, carried, self._to_key, err)
        self._to_sent, self._since_sent, self._motion_sent = None, 0, self._motion

    def _land(self) -> None:
        """The finished run's answer becomes the keyframe: merged at the frame it was given, which
        this frame's chained flow (``_to_sent``) leads back to."""
        new, new_matte, took = self._run.get()
        self._run = None
        self._t_model = 0.8 * self._t_model + 0.2 * took
        gray, *warp = self._sent
        self._merge(new, new_matte, tuple(warp))
        self._key_gray, self._to_key = gray, self._to_sent
        self._since, self._motion = self._since_sent, self._motion - self._motion_sent
