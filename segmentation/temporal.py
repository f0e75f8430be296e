"""Frame segmenters: class maps for a stream of frames (video files and the live webcam).

One interface, three strategies, picked by :func:`frame_segmenter` from the
speed and the temporal switch; the pipeline, the live view and the
benchmarks all go through it:

* :class:`EveryFrame` (accurate, temporal off): the model on every frame;
  each class map is exactly ``Segmenter.segment`` of that frame.
* :class:`Fused` (accurate, temporal on, the default): the model on every
  frame, and its scores blended with the previous frame's fused scores warped
  to the current frame by dense optical flow. The argmax of the blend flickers
  far less than the argmax of one frame: a region changes class only when
  the new evidence outweighs the history. History is trusted less where the
  warp does not explain the frame (occlusions, fast blurred motion) and
  dropped on scene cuts.
* :class:`Keyframes` (realtime): the model on keyframes only; between them
  the fused scores are carried forward by optical flow. With temporal on a
  keyframe is blended into the carried scores instead of replacing them, so
  keyframes do not jump.

Scores live on the model's grid (64x64 for Autoseg), so warping and blending
cost well under a millisecond; flow is DIS (ultrafast preset) at
``flow_width`` px wide (``keyframe_flow_width`` in realtime). Class
maps come out at the frame's size with refined edges
(``Segmenter.labels_from_scores``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from .errors import parse_choice
from .matte import PersonMatte
from .matte import alpha as matte_alpha
from .segmenter import Segmenter


class Schedule(StrEnum):
    """How realtime picks its keyframes: from the frames alone (files: reproducible) or from the clock
    (the live view: keeps pace with the camera on any machine, but differs from run to run)."""

    FRAMES = "frames"
    CLOCK = "clock"


class Speed(StrEnum):
    """How often the model runs on a video: every frame, or on keyframes with flow between."""

    ACCURATE = "accurate"
    REALTIME = "realtime"


def check_speed(speed: object) -> Speed:
    """A Speed from its name; anything else raises InputError with the choices."""
    return parse_choice(Speed, speed, "speed")


@dataclass(frozen=True)
class TemporalOptions:
    """Fusion and keyframe settings (defaults measured with ``benchmarks/quality.py``)."""

    new_weight: float = 0.35  # weight of a new model answer in the blend (1 = no fusion)
    keyframe_weight: float = 0.5  # the same for a realtime keyframe
    error_scale: float = 12.0  # grey-level warp error at which history keeps 1/e of its weight
    stickiness: float = 0.015  # bonus for the class holding a cell, as a share of the score range
    flow_width: int = 160  # px: enough to move 64x64 scores between consecutive frames
    keyframe_flow_width: int = 320  # realtime chains flow over many frames: finer
    cut_threshold: float = 40.0  # mean |grey difference| between frames, 0..255: a scene cut
    # realtime keyframe schedule
    interval: int = 6  # files ("frames" schedule): a keyframe at every frame index divisible by this (an anchor)
    triggers: int = 1  # files: content keyframes (unreliable carried scores) allowed between two anchors
    # files: at every frame index divisible by this, realtime starts afresh as on a scene cut (0: never),
    # so a chunk starting there is exactly the single pass (segmentation.chunks)
    restart_interval: int = 300
    min_interval: int = 2
    max_interval: int = 24
    error_threshold: float = 8.0  # mean |grey difference| after warping, 0..255
    motion_threshold: float = 0.04  # accumulated mean flow, as a fraction of flow_width
    budget_share: float = 0.5  # share of the frame time segmentation may use


@dataclass(frozen=True)
class FrameLabels:
    """One frame's answer: the class map (uint8, the frame's size), whether the model ran, and
    with a person matte, its alpha (uint8 on ``matte.GRID_WH``, 255 = person)."""

    class_map: np.ndarray
    keyframe: bool
    matte: np.ndarray | None = None


class _Flow:
    """Grey frames at ``width`` px, DIS flow from each frame back to the previous one."""

    def __init__(self, width: int):
        self.width = width
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._grid: np.ndarray | None = None
        self.prev: np.ndarray | None = None

    MIN_SIDE = 32  # DIS (OpenCV 4.14) segfaults on e.g. 160x30 and refuses 8x8: never go below 32x32

    def gray(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        fw = max(self.MIN_SIDE, min(self.width, w))
        fh = max(self.MIN_SIDE, round(h * fw / w))  # very wide frames: stretched; warps scale x and y apart
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # one channel to shrink, not three
        return cv2.resize(g, (fw, fh), interpolation=cv2.INTER_AREA)

    def is_cut(self, gray: np.ndarray, threshold: float) -> bool:
        prev = self.prev
        return prev is None or prev.shape != gray.shape or float(cv2.absdiff(gray, prev).mean()) > threshold

    def grid(self, shape: tuple[int, ...]) -> np.ndarray:
        """Pixel coordinates (h, w, 2) of a flow-sized frame: the identity map."""
        h, w = shape[:2]
        if self._grid is None or self._grid.shape[:2] != (h, w):
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.dstack([xs, ys])
        return self._grid

    def map_to_prev(self, gray: np.ndarray) -> np.ndarray:
        """For each pixel of ``gray``, where it was in the previous frame (absolute coordinates)."""
        return self.grid(gray.shape) + self._dis.calc(gray, self.prev, None)


def warp_error(gray: np.ndarray, source: np.ndarray, where: np.ndarray) -> np.ndarray:
    """|gray - source sampled at ``where``|: how badly the motion explains the frame, per pixel."""
    return cv2.absdiff(gray, cv2.remap(source, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


def warp_scores(scores: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Sample scores on their grid at ``where``: absolute coordinates given at flow resolution."""
    gh, gw = scores.shape[:2]
    fh, fw = where.shape[:2]
    sx, sy = gw / fw, gh / fh
    small = cv2.resize(where, (gw, gh), interpolation=cv2.INTER_AREA)
    small[..., 0] = (small[..., 0] + 0.5) * sx - 0.5  # pixel centres, flow px -> grid cells
    small[..., 1] = (small[..., 1] + 0.5) * sy - 0.5
    return cv2.remap(scores, small, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FrameSegmenter:
    """Base of the strategies: call with each RGB frame in order (a new stream: a new instance).

    With a ``matte`` (``matte.PersonMatte``) each answer also carries the person
    matte, fused over time like the scores.
    """

    def __init__(self, segmenter: Segmenter, matte: PersonMatte | None = None):
        self.seg = segmenter
        self.matte = matte
        self.frames = 0
        self.index = 0  # the current frame's number in the whole video
        self.keyframes = 0
        # The class maps' size_wh; None: the frame's. A job that draws only the person matte and
        # needs the class maps for their statistics alone sets a smaller one (cheaper edges).
        self.labels_size_wh: tuple[int, int] | None = None

    def _size(self, rgb: np.ndarray) -> tuple[int, int]:
        return self.labels_size_wh or (rgb.shape[1], rgb.shape[0])

    def __call__(self, rgb: np.ndarray, index: int | None = None) -> FrameLabels:
        """The next frame's answer; ``index``: its frame number in the whole video (default: how many
        frames came before it), which the frame-index keyframe schedule follows."""
        self.index = self.frames if index is None else int(index)
        out = self._step(rgb)
        self.frames += 1
        self.keyframes += int(out.keyframe)
        return out

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        raise NotImplementedError


class EveryFrame(FrameSegmenter):
    """The model on every frame, nothing carried over: ``Segmenter.segment`` per frame."""

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        if self.matte is None:
            return FrameLabels(self.seg.segment(rgb, self._size(rgb)).class_map, True)
        class_map, scores = self.seg.segment_scores(rgb, self._size(rgb))
        return FrameLabels(class_map, True, matte_alpha(self.matte.logits(rgb, scores)))


class _Tracked(FrameSegmenter):
    """Shared state of the flow-based strategies: fused scores and the flow that moves them."""

    def __init__(self, segmenter: Segmenter, options: TemporalOptions, flow_width: int,
                 matte: PersonMatte | None = None):
        super().__init__(segmenter, matte)
        self.opt = options
        self._flow = _Flow(flow_width)
        self._fused: np.ndarray | None = None
        self._matte: np.ndarray | None = None  # fused person logits (with a matte)

    def _new_matte(self, rgb: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
        return None if self.matte is None else self.matte.logits(rgb, scores)

    def _fuse_matte(self, new: np.ndarray | None, where: np.ndarray | None, err: np.ndarray | None,
                    weight: float) -> None:
        """The person logits: ``new`` alone (no history, a cut, or no blend), else ``new`` blended
        with the history warped through ``where``, trusted as the scores are (no stickiness)."""
        if new is None or where is None or self._matte is None:
            self._matte = new
            return
        carried = warp_scores(self._matte, where)
        keep = (1.0 - weight) * self._trust(err, new.shape)
        self._matte = new + keep * (carried - new)

    def _trust(self, err: np.ndarray, grid_shape: tuple[int, ...]) -> np.ndarray:
        """Per-cell trust in warped history (0..1), falling with the warp error."""
        gh, gw = grid_shape[:2]
        e = cv2.resize(err, (gw, gh), interpolation=cv2.INTER_AREA).astype(np.float32)
        return np.exp(-e / self.opt.error_scale)

    def _blend(self, new: np.ndarray, carried: np.ndarray, trust: np.ndarray, weight: float) -> np.ndarray:
        """Weighted mean of new and carried scores per cell, plus a bonus for the carried winner.

        The bonus (``stickiness`` times the new scores' range, scaled by the
        trust) stays in the fused state, so a class that has held a cell for a
        while needs clearly better evidence to lose it: near-ties stop flipping.
        """
        if new.shape != carried.shape:
            return new
        keep = (1.0 - weight) * trust  # share of history per cell
        fused = new + keep[..., None] * (carried - new)
        if self.opt.stickiness > 0:
            winner = np.argmax(carried, axis=-1)[..., None]
            bonus = (self.opt.stickiness * float(new.max() - new.min())) * trust[..., None]
            np.put_along_axis(fused, winner, np.take_along_axis(fused, winner, axis=-1) + bonus, axis=-1)
        return fused

    def _labels(self, rgb: np.ndarray, keyframe: bool, scores: np.ndarray | None = None,
                matte: np.ndarray | None = None) -> FrameLabels:
        scores = self._fused if scores is None else scores
        matte = self._matte if matte is None else matte
        return FrameLabels(self.seg.labels_from_scores(scores, self._size(rgb)), keyframe,
                           None if matte is None else matte_alpha(matte))


class Fused(_Tracked):
    """The model on every frame, blended with the flow-warped history (see module docstring).

    ``model_every`` > 1 (a job that shows only the person matte): the semantic model runs on the
    frames whose number is a multiple of it, on the first frame and on cuts, its fused scores
    carried by the flow in between, while the matte's own person models still see every frame.
    """

    def __init__(self, segmenter: Segmenter, options: TemporalOptions, matte: PersonMatte | None = None,
                 model_every: int = 1):
        super().__init__(segmenter, options, options.flow_width, matte)
        self.model_every = max(1, int(model_every))

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        gray = self._flow.gray(rgb)
        ran = True
        if self._fused is None or self._flow.is_cut(gray, self.opt.cut_threshold):
            self._fused = self.seg.scores(rgb)
            self._fuse_matte(self._new_matte(rgb, self._fused), None, None, 1.0)
        else:
            where = self._flow.map_to_prev(gray)
            err = warp_error(gray, self._flow.prev, where)
            carried = warp_scores(self._fused, where)
            # by the frame's number in the whole video, so a chunk runs the model on the same frames
            ran = self.index % self.model_every == 0
            if ran:
                new = self.seg.scores(rgb)
                self._fused = self._blend(new, carried, self._trust(err, new.shape), self.opt.new_weight)
            else:
                new = self._fused = carried
            self._fuse_matte(self._new_matte(rgb, new), where, err, self.opt.new_weight)
        self._flow.prev = gray
        return self._labels(rgb, ran)


class Keyframes(_Tracked):
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
    * ``clock`` (the live view): every ``interval`` frames, chosen from the
      measured cost of the model vs. the flow so the whole stays within the
      source's frame time (``budget_s``); on a scene cut; and when the
      carried scores get unreliable, as long as the time credit (budget
      earned by cheap flow frames, minus what was spent) covers a model run.
      Keeps pace on any machine, but differs from run to run.

    With ``blend`` (temporal on) a keyframe's scores are blended into the
    carried ones with ``keyframe_weight``; without, they replace them.
    """

    def __init__(self, segmenter: Segmenter, fps: float, options: TemporalOptions, blend: bool = True,
                 matte: PersonMatte | None = None, schedule: Schedule | str = Schedule.CLOCK):
        super().__init__(segmenter, options, options.keyframe_flow_width, matte)
        self.blend = blend
        self.schedule = parse_choice(Schedule, schedule, "keyframe schedule")
        self.budget_s = options.budget_share / max(float(fps), 1e-3)
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

    def _decide(self, rgb: np.ndarray) -> FrameLabels:
        gray = self._flow.gray(rgb)
        if self.schedule is Schedule.FRAMES and (self.index % self.interval == 0 or self.restart):
            self._triggered = 0
        if self._fused is None or self.restart or self._flow.is_cut(gray, self.opt.cut_threshold):
            return self._keyframe(rgb, gray, None)
        t = time.perf_counter()
        step = self._flow.map_to_prev(gray)
        self._motion += float(np.abs(step - self._flow.grid(gray.shape)).mean()) / gray.shape[1]
        self._to_key = (step if self._to_key is None else
                        cv2.remap(self._to_key, step, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        err = warp_error(gray, self._key_gray, self._to_key)
        carried = warp_scores(self._fused, self._to_key)
        self._t_flow = 0.9 * self._t_flow + 0.1 * (time.perf_counter() - t)
        self._flow.prev = gray
        unreliable = float(err.mean()) > self.opt.error_threshold or self._motion > self.opt.motion_threshold
        if self._due(unreliable):
            return self._keyframe(rgb, gray, (carried, self._trust(err, carried.shape)) if self.blend else None,
                                  (self._to_key, err) if self.blend else None)
        self._since += 1
        matte = None if self._matte is None else warp_scores(self._matte, self._to_key)
        return self._labels(rgb, False, carried, matte)

    def _keyframe(self, rgb: np.ndarray, gray: np.ndarray, carried, matte_warp=None) -> FrameLabels:
        t = time.perf_counter()
        new = self.seg.scores(rgb)
        new_matte = self._new_matte(rgb, new)
        took = time.perf_counter() - t
        self._t_model = 0.8 * self._t_model + 0.2 * took if self.keyframes else took
        self._fused = new if carried is None else self._blend(new, *carried, self.opt.keyframe_weight)
        self._fuse_matte(new_matte, *(matte_warp or (None, None)), self.opt.keyframe_weight)
        self._flow.prev = self._key_gray = gray
        self._to_key = None
        self._since = 0
        self._motion = 0.0
        return self._labels(rgb, True)


def frame_segmenter(segmenter: Segmenter, speed: Speed | str = Speed.ACCURATE, fps: float = 30.0,
                    temporal: bool = True, options: TemporalOptions = TemporalOptions(),
                    matte: PersonMatte | None = None, schedule: Schedule | str = Schedule.CLOCK) -> FrameSegmenter:
    """The strategy for a speed and temporal switch (see module docstring); with ``matte``
    every answer carries the person matte too. ``schedule``: realtime's keyframes by the clock
    (default: the live view's) or by frame index (``"frames"``: reproducible; what the pipeline
    uses for files, see ``VideoOptions.schedule``); accurate ignores it."""
    speed = check_speed(speed)
    if speed is Speed.REALTIME:
        return Keyframes(segmenter, fps, options, blend=temporal, matte=matte, schedule=schedule)
    return Fused(segmenter, options, matte) if temporal else EveryFrame(segmenter, matte)
