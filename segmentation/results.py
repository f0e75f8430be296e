"""What the pipeline returns: ``VideoResult`` (one video) and ``ImageResult`` (one image)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .draw import LegendItem
from .exports import Timeline
from .temporal import Speed
from .video import VideoInfo


@dataclass
class VideoResult:
    """One ``segment_video`` run: the output, what was decoded and written, and how fast."""

    output: Path
    frames: int
    keyframes: int
    info: VideoInfo
    output_fps: Fraction
    seconds: float
    legend: list[LegendItem] = field(default_factory=list)
    model_id: str = ""
    speed: Speed = Speed.ACCURATE
    temporal: bool = True
    timeline: Timeline = field(default_factory=Timeline, repr=False)  # class shares per frame
    # set when the file ended before its own frame count (or broke off): "decoded 9 of 35 frames; ..."
    warning: str = ""
    histogram: np.ndarray | None = field(default=None, repr=False)  # pixels per class id (256), all frames
    first_pts: int | None = None  # the first frame written, source clock (time_base of the source)
    end_time: float = 0.0  # s from the first frame written to the end of the last one (the output's length)
    end_pts: int | None = None  # the end of the last frame written, source clock

    @property
    def processing_fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        return self.processing_fps / float(self.info.fps) if self.info.fps else 0.0


@dataclass
class ImageResult:
    """One ``segment_image`` run: the picture, its drawing and class map, the legend."""

    original: np.ndarray
    rendered: np.ndarray
    class_map: np.ndarray
    legend: list[LegendItem]
    model_id: str = ""
    seconds: float = 0.0
