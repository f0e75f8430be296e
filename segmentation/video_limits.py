"""``VideoLimits``: how long, large and many-framed a video a job accepts.

A server cannot trust a header: it may lie, or say nothing (raw streams, files still being
written). So the limits are checked twice: from the header before anything runs
(``check_header``: duration, pixels per frame) and on the frames themselves while they are
decoded (``check_frame``: duration, frame count). A video past a limit is refused
(``InputError``), never cut; cutting is ``VideoOptions.max_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import InputError
from .video import VideoInfo


@dataclass(frozen=True)
class VideoLimits:
    """The limits one ``pipeline.segment_video`` call holds; None: no limit."""

    max_duration: float | None = None  # seconds, from the first frame decoded
    max_pixels: int | None = None  # per frame, as displayed
    max_frames: int | None = None  # frames decoded

    def check_header(self, info: VideoInfo) -> None:
        """Refuse a video whose header already says it is too long or too large."""
        if self.max_duration is not None and info.duration > self.max_duration:
            raise InputError(f"The video is {info.duration:.1f} s long; the limit is {self.max_duration:.0f} s.")
        if self.max_pixels is not None and info.width * info.height > self.max_pixels:
            raise InputError(f"The video is {info.width}x{info.height}; the limit is {self.max_pixels:,} pixels "
                             "per frame.")

    def check_frame(self, index: int, seconds: Fraction | float) -> None:
        """Refuse the video at frame ``index``, ``seconds`` after its first frame, when past a limit."""
        if self.max_duration is not None and seconds >= self.max_duration:
            raise InputError(f"The video is longer than the limit of {self.max_duration:g} s.")
        if self.max_frames is not None and index >= self.max_frames:
            raise InputError(f"The video has more than {self.max_frames:,} frames; the limit is "
                             f"{self.max_frames:,}.")
