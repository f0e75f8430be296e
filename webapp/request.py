"""What a job was asked to do, checked once before it runs.

* ``Upload``: an uploaded file, within the upload limit, told apart by content (photo or video).
* ``VideoRequest``: one video job (the page's or the API's): every setting checked, the upload
  sniffed and probed once, and a visitor's video over the frame-rate or frame-count limit refused
  from its header. The job (``webapp.video_job``) and the pipeline take the probed ``info`` as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from segmentation import video
from segmentation.effects import EffectOptions
from segmentation.errors import InputError
from segmentation.pipeline import sniff_kind
from segmentation.temporal import Speed

from .checks import check_alpha, check_mode, check_model_id, check_speed, check_upload, check_video_budget
from .limits import Limits


@dataclass(frozen=True)
class Upload:
    """An uploaded file that exists, is within the upload limit, and is a photo or a video."""

    path: Path
    kind: str  # "image" or "video" (pipeline.sniff_kind: by content, not by name)

    @classmethod
    def check(cls, source: str | os.PathLike | None, limits: Limits) -> "Upload":
        path = check_upload(source, limits)
        return cls(path, sniff_kind(path))


@dataclass(frozen=True)
class VideoRequest:
    """One video job, checked (``parse``). ``classes``: names or ids, matched against the model's
    labels once it is loaded; ``trim``: the app's own examples, cut to the limits instead of
    refused; ``labels``: also the class maps (.zip, COCO .json); ``previews``: what the page's
    players show (``webapp.previews``)."""

    path: Path
    info: video.VideoInfo
    model_id: str
    mode: str
    alpha: float
    speed: Speed
    classes: Sequence[str] | str | None = None
    temporal: bool = True
    effect: EffectOptions | None = None
    trim: bool = False
    labels: bool = False
    previews: bool = False

    @classmethod
    def parse(cls, source: Upload | str | os.PathLike | None, limits: Limits, model_id: str, mode: str,
              alpha: float, speed: str, classes: Sequence[str] | str | None = None, *, temporal: bool = True,
              effect: EffectOptions | None = None, trim: bool = False, labels: bool = False,
              previews: bool = False) -> "VideoRequest":
        """Check every value and the file (an ``Upload`` is taken as already checked), probe the
        video, and refuse it from its header when over the limits (not ``trim``)."""
        mode, alpha, speed = check_mode(mode), check_alpha(alpha), check_speed(speed)
        check_model_id(model_id)
        upload = source if isinstance(source, Upload) else Upload.check(source, limits)
        if upload.kind != "video":
            raise InputError(f"{upload.path.name} is a photo, not a video: use the photo endpoint (segment_image).")
        info = video.probe(upload.path)
        if not trim:
            check_video_budget(info, limits)
        return cls(upload.path, info, model_id, mode, alpha, speed, classes, bool(temporal), effect, trim,
                   labels, previews)
