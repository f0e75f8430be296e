"""Realtime mode: the model on keyframes, dense optical flow in between.

Between keyframes the last class map is carried forward frame to frame with
OpenCV's DIS optical flow, computed at reduced resolution (``flow_width``)
from the current frame back to the previous one, and applied with
nearest-neighbour remapping so class ids are never blended.

A new keyframe is taken
* on schedule: every ``interval`` frames, the interval chosen from the
  measured cost of the model vs. propagation so the whole stays within the
  source's frame time (``budget_s``);
* when the scene cuts (mean grey-level change above ``cut_threshold``);
* when propagation gets unreliable: the photometric warp error or the motion
  accumulated since the keyframe passes its threshold, as long as the time
  credit (budget earned by cheap flow frames, minus what was spent) covers a
  model run, so triggered keyframes never make the stream fall behind.

Agreement with ``accurate`` is bounded by how much the model itself flickers
from frame to frame: on a static shot where it hesitates between two classes,
``accurate`` flips and ``realtime`` (carrying the keyframe's answer) does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from .segmenter import Segmenter, upscale_nearest


@dataclass(frozen=True)
class PropagationOptions:
    flow_width: int = 320
    min_interval: int = 3
    max_interval: int = 24
    error_threshold: float = 8.0  # mean |grey difference| after warping, 0..255
    motion_threshold: float = 0.04  # accumulated mean flow, as a fraction of flow_width
    cut_threshold: float = 40.0  # mean |grey difference| between frames, 0..255
    budget_share: float = 0.5  # share of the frame time segmentation may use


class FlowPropagator:
    """Class maps for a stream of frames: keyframes from the model, flow in between."""

    def __init__(self, segmenter: Segmenter, fps: float, options: PropagationOptions = PropagationOptions()):
        self.seg = segmenter
        self.opt = options
        self.budget_s = options.budget_share / max(float(fps), 1e-3)
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._prev_gray: np.ndarray | None = None
        self._cm: np.ndarray | None = None
        self._since = 0
        self._motion = 0.0
        self._t_model = 0.05
        self._t_flow = 0.003
        self._grid: np.ndarray | None = None
        self._credit = 0.0
        self.keyframes = 0
        self.frames = 0

    @property
    def interval(self) -> int:
        """Scheduled keyframe interval that keeps the mean cost within the budget."""
        spare = self.budget_s - self._t_flow
        if spare <= 0:
            return self.opt.max_interval
        k = int(np.ceil((self._t_model - self._t_flow) / spare)) if self._t_model > spare else 1
        return int(np.clip(k, self.opt.min_interval, self.opt.max_interval))

    def _gray(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        fw = min(self.opt.flow_width, w)
        fh = max(8, round(h * fw / w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # one channel to shrink, not three
        return cv2.resize(gray, (max(8, fw), fh), interpolation=cv2.INTER_AREA)

    def _keyframe(self, rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        cm = self.seg.predict(rgb)
        self._t_model = 0.8 * self._t_model + 0.2 * (time.perf_counter() - t) if self.keyframes else time.perf_counter() - t
        self._cm = upscale_nearest(cm, (gray.shape[1], gray.shape[0]))
        self._prev_gray = gray
        self._since = 0
        self._motion = 0.0
        self.keyframes += 1
        return self._cm

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """Class map (at flow resolution) for the next frame, and whether it was a keyframe."""
        t0 = time.perf_counter()
        cm, key = self._step(rgb)
        # Time credit: each frame earns the budget and pays what it cost. Keyframes
        # triggered by bad propagation are taken only when the credit covers one.
        spent = time.perf_counter() - t0
        self._credit = min(self._credit + self.budget_s - spent, 2 * self._t_model)
        self.frames += 1
        return cm, key

    def _step(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        gray = self._gray(rgb)
        prev = self._prev_gray
        if prev is None or prev.shape != gray.shape:
            return self._keyframe(rgb, gray), True
        if float(cv2.absdiff(gray, prev).mean()) > self.opt.cut_threshold:
            return self._keyframe(rgb, gray), True
        if self._since + 1 >= self.interval:
            return self._keyframe(rgb, gray), True
        t = time.perf_counter()
        flow = self._dis.calc(gray, prev, None)  # current -> previous
        h, w = gray.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.dstack([xs, ys])
        maps = self._grid + flow
        cm = cv2.remap(self._cm, maps, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        warped = cv2.remap(prev, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = float(cv2.absdiff(gray, warped).mean())
        self._motion += float(np.abs(flow).mean()) / w
        self._t_flow = 0.9 * self._t_flow + 0.1 * (time.perf_counter() - t)
        unreliable = err > self.opt.error_threshold or self._motion > self.opt.motion_threshold
        if unreliable and self._since + 1 >= self.opt.min_interval and self._credit >= self._t_model:
            return self._keyframe(rgb, gray), True
        self._cm, self._prev_gray = cm, gray
        self._since += 1
        return cm, False
