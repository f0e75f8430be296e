"""Frame segmenters: class maps for a stream of frames (video files and the live webcam).

One interface (``tracking.FrameSegmenter``), three strategies, picked by
:func:`frame_segmenter` from the speed, the temporal switch and the keyframe
schedule; the pipeline, the live view and the benchmarks all go through it:

* :class:`EveryFrame` (accurate, temporal off): the model on every frame;
  each class map is exactly ``Segmenter.segment`` of that frame.
* :class:`Fused` (accurate, temporal on, the default): the model on every
  frame, and its scores blended with the previous frame's fused scores warped
  to the current frame by dense optical flow. The argmax of the blend flickers
  far less than the argmax of one frame: a region changes class only when
  the new evidence outweighs the history. History is trusted less where the
  warp does not explain the frame (occlusions, fast blurred motion) and
  dropped on scene cuts.
* :class:`~segmentation.keyframes.Keyframes` (realtime): the model on
  keyframes only; between them the fused scores are carried forward by
  optical flow. With temporal on a keyframe is blended into the carried
  scores instead of replacing them, so keyframes do not jump. Its schedules
  (``keyframes.Schedule``): by frame index (files), by the clock, or by the
  clock with the model in a background thread
  (:class:`~segmentation.keyframes.BackgroundKeyframes`, the live view).

Scores live on the model's grid (64x64 for Autoseg), so warping and blending
cost well under a millisecond; flow is DIS (ultrafast preset) at
``flow_width`` px wide (``keyframe_flow_width`` in realtime). Class
maps come out at the frame's size with refined edges
(``Segmenter.labels_from_scores``).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from .errors import parse_choice
from .keyframes import BackgroundKeyframes, Keyframes, Schedule
from .matte import PersonMatte
from .matte import alpha as matte_alpha
from .segmenter import Segmenter
from .tracking import FrameLabels, FrameSegmenter, TemporalOptions, Tracked, warp_error, warp_scores

__all__ = ["BackgroundKeyframes", "EveryFrame", "FrameLabels", "FrameSegmenter", "Fused", "Keyframes",
           "Schedule", "Speed", "TemporalOptions", "check_speed", "frame_segmenter"]


class Speed(StrEnum):
    """How often the model runs on a video: every frame, or on keyframes with flow between."""

    ACCURATE = "accurate"
    REALTIME = "realtime"


def check_speed(speed: object) -> Speed:
    """A Speed from its name; anything else raises InputError with the choices."""
    return parse_choice(Speed, speed, "speed")


class EveryFrame(FrameSegmenter):
    """The model on every frame, nothing carried over: ``Segmenter.segment`` per frame."""

    def _step(self, rgb: np.ndarray) -> FrameLabels:
        if self.matte is None:
            return FrameLabels(self.seg.segment(rgb, self._size(rgb)).class_map, True)
        class_map, scores = self.seg.segment_scores(rgb, self._size(rgb))
        return FrameLabels(class_map, True, matte_alpha(self.matte.logits(rgb, scores)))




class Fused(Tracked):
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




def frame_segmenter(segmenter: Segmenter, speed: Speed | str = Speed.ACCURATE, fps: float = 30.0,
                    temporal: bool = True, options: TemporalOptions = TemporalOptions(),
                    matte: PersonMatte | None = None, schedule: Schedule | str = Schedule.CLOCK) -> FrameSegmenter:
    """The strategy for a speed and temporal switch (see module docstring); with ``matte``
    every answer carries the person matte too. ``schedule``: realtime's keyframes by the clock
    (the default), by frame index (``"frames"``: reproducible; what the pipeline uses for files,
    see ``VideoOptions.schedule``) or by the clock with the model beside the frames
    (``"background"``: the live view's); accurate ignores it."""
    speed = check_speed(speed)
    if speed is Speed.REALTIME:
        if parse_choice(Schedule, schedule, "keyframe schedule") is Schedule.BACKGROUND:
            return BackgroundKeyframes(segmenter, fps, options, blend=temporal, matte=matte)
        return Keyframes(segmenter, fps, options, blend=temporal, matte=matte, schedule=schedule)
    return Fused(segmenter, options, matte) if temporal else EveryFrame(segmenter, matte)

