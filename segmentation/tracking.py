"""What the flow-based frame segmenters share: their options, the answer for one frame, the dense
optical flow that moves scores from frame to frame, and the fused state it carries
(:class:`Tracked`). The strategies themselves are in ``temporal`` (accurate) and ``keyframes``
(realtime); ``temporal.frame_segmenter`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .matte import PersonMatte
from .matte import alpha as matte_alpha
from .segmenter import Segmenter


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
    model_share: float = 0.35  # background schedule: share of the time the model may run


@dataclass(frozen=True)
class FrameLabels:
    """One frame's answer: the class map (uint8, the frame's size), whether the model ran, and
    with a person matte, its alpha (uint8 on ``matte.GRID_WH``, 255 = person)."""

    class_map: np.ndarray
    keyframe: bool
    matte: np.ndarray | None = None




class Flow:
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

    # ms one model run takes where it runs beside the frames (the background schedule); None: in them
    model_ms: float | None = None

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




class Tracked(FrameSegmenter):
    """Shared state of the flow-based strategies: fused scores and the flow that moves them."""

    def __init__(self, segmenter: Segmenter, options: TemporalOptions, flow_width: int,
                 matte: PersonMatte | None = None):
        super().__init__(segmenter, matte)
        self.opt = options
        self._flow = Flow(flow_width)
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


