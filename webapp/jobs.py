"""The app's jobs: one photo or one video in, a result file, its legend and typed stats out.

What each concern holds (all re-exported here):

* ``segmenters``: ``SegmenterCache``, one ``Segmenter`` per model id, loaded once, thread-safe.
* ``store``: ``TempStore``, the app's own folder for job outputs, within a disk budget (oldest
  results go first; a result that cannot fit is refused before it is written), swept by age.
* ``request``: ``Upload`` (a checked upload, photo or video by content) and ``VideoRequest`` (one
  video job, every setting checked and the video probed once).
* ``photo_job`` / ``video_job``: ``run_photo`` / ``run_video``, on top of ``pipeline.segment_image`` /
  ``pipeline.segment_video``, within the server's ``Limits``.
* ``results``: ``PhotoOutcome`` / ``VideoOutcome`` and their ``stats`` (``PhotoStats`` /
  ``VideoStats``), which the page shows and the API returns as JSON (``to_json``).
* ``estimates``: what a result may take on disk, reserved before it is written.
* ``watch``: ``JobStop``, ``DiskWatch`` and ``FrameRate``, a pipeline progress callback that also
  reports frames per second.

Labels (the page's runs): the class maps as a ``.zip`` (8-bit PNG per frame and ``labels.json``)
and as COCO ``.json``, beside the result in its job folder; a video's are both written by the
pipeline as it runs (``labels_out``), so the video is segmented once and nothing is read back.
"""

from __future__ import annotations

from .estimates import (AUDIO_BITS_PER_SECOND, LABELS_BYTES_PER_FRAME, LABELS_BYTES_PER_SIDE_PIXEL,
                        PNG_OVERHEAD_BYTES, VIDEO_BITS_PER_PIXEL, VIDEO_BYTES_PER_FRAME, estimate_labels_bytes,
                        estimate_photo_bytes, estimate_video_bytes)
from .photo_job import run_photo
from .request import Upload, VideoRequest
from .results import JobStats, PhotoOutcome, PhotoStats, VideoOutcome, VideoStats
from .segmenters import SegmenterCache
from .store import TempStore
from .video_job import run_video
from .watch import DiskWatch, FrameRate, JobStop

__all__ = ["AUDIO_BITS_PER_SECOND", "LABELS_BYTES_PER_FRAME", "LABELS_BYTES_PER_SIDE_PIXEL", "PNG_OVERHEAD_BYTES",
           "VIDEO_BITS_PER_PIXEL", "VIDEO_BYTES_PER_FRAME", "DiskWatch", "FrameRate", "JobStats", "JobStop",
           "PhotoOutcome", "PhotoStats", "SegmenterCache", "TempStore", "Upload", "VideoOutcome", "VideoRequest",
           "VideoStats", "estimate_labels_bytes", "estimate_photo_bytes", "estimate_video_bytes", "run_photo",
           "run_video"]
