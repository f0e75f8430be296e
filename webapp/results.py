"""What a job returns: ``PhotoOutcome`` / ``VideoOutcome`` (the files, legend, timeline, previews)
and their typed stats, ``PhotoStats`` / ``VideoStats``, which the page shows and the API returns
as JSON (``to_json``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from segmentation import draw
from segmentation.draw import LegendItem
from segmentation.exports import Timeline
from segmentation.results import VideoResult


def _fps(x) -> float:
    return round(float(x), 3)


@dataclass(frozen=True)
class JobStats:
    """What a job did. ``to_json`` is the API's stats output: ``kind`` and every field by name."""

    KIND: ClassVar[str]

    def to_json(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.KIND, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}


@dataclass(frozen=True)
class PhotoStats(JobStats):
    """What a photo job did."""

    KIND: ClassVar[str] = "image"
    width: int
    height: int
    output_width: int
    output_height: int
    seconds: float
    model: str
    mode: str
    downscaled_from: tuple[int, int] | None = None  # (w, h) of the input when over the pixel limit


@dataclass(frozen=True)
class VideoStats(JobStats):
    """What a video job did."""

    KIND: ClassVar[str] = "video"
    frames: int
    width: int
    height: int
    output_width: int
    output_height: int
    source_fps: float
    output_fps: float
    processing_fps: float
    realtime_factor: float
    seconds: float
    model_runs: int  # keyframes: frames the model itself ran on
    model: str
    speed: str
    temporal: bool
    mode: str
    duration: float
    trimmed_to_seconds: float | None = None  # set when an example longer than the limit was cut
    warning: str = ""  # a video that ended early: "decoded 9 of 35 frames; the file is truncated."

    @classmethod
    def from_result(cls, r: VideoResult, mode: str, trimmed_to_seconds: float | None = None) -> "VideoStats":
        """The stats of a pipeline run in ``mode``, rounded for people (fps to 3 places, ...)."""
        out_w, out_h = draw.output_size(r.info.width, r.info.height, mode)
        return cls(frames=r.frames, width=r.info.width, height=r.info.height, output_width=out_w,
                   output_height=out_h, source_fps=_fps(r.info.fps), output_fps=_fps(r.output_fps),
                   processing_fps=round(r.processing_fps, 2), realtime_factor=round(r.realtime_factor, 3),
                   seconds=round(r.seconds, 3), model_runs=r.keyframes, model=r.model_id, speed=str(r.speed),
                   temporal=r.temporal, mode=mode, duration=round(r.info.duration, 3),
                   trimmed_to_seconds=trimmed_to_seconds, warning=r.warning)


@dataclass
class PhotoOutcome:
    """A photo job's result: the pictures shown, the files to download, legend and stats."""

    original: np.ndarray
    display: np.ndarray  # right-hand side of the comparison at the photo's size (RGBA for remove-background)
    output: Path  # PNG in the requested mode (side-by-side is twice as wide; RGBA for remove-background)
    legend: list[LegendItem]
    stats: PhotoStats
    labels: list[Path] = dataclasses.field(default_factory=list)  # .zip and COCO .json, when asked for

    @property
    def downloads(self) -> list[Path]:
        return [self.output, *self.labels]


@dataclass
class VideoOutcome:
    """A video job's result: source and output (and what the players show), legend, timeline, stats."""

    source: Path
    output: Path  # H.264 MP4, or VP9 WebM with alpha for remove-background
    legend: list[LegendItem]
    stats: VideoStats
    labels: list[Path] = dataclasses.field(default_factory=list)  # .zip and COCO .json, when asked for
    timeline: Timeline = dataclasses.field(default_factory=Timeline, repr=False)  # class shares per frame
    # What the page's players show (``previews``): a copy browsers play of a source they cannot, and
    # remove-background's WebM over a checkerboard as H.264; None: the file itself.
    source_preview: Path | None = None
    output_preview: Path | None = None

    @property
    def shown_source(self) -> Path:
        return self.source_preview or self.source

    @property
    def shown_output(self) -> Path:
        return self.output_preview or self.output

    @property
    def downloads(self) -> list[Path]:
        return [self.output, *self.labels]

