"""Semantic segmentation for images and video: catalog, weights, runners, drawing, pipeline.

Quick start::

    from segmentation import Segmenter, segment_video, VideoOptions, draw, load_image
    seg = Segmenter.create()                      # Autoseg-EdgeTPU XS, the default
    result = seg.segment(load_image("photo.jpg"))
    picture = draw.render(load_image("photo.jpg"), result.class_map, result.palette)
    segment_video(seg, "in.mp4", "out.mp4", VideoOptions(speed="realtime"))
"""

from . import draw, effects, exports
from .catalog import CATALOG, DEFAULT_MODEL_ID, ModelEntry, list_models, resolve_model
from .draw import DrawOptions, LegendItem, Mode
from .effects import BackgroundEffect, EffectOptions
from .errors import InputError, ModelError, SegmentationError, WeightsError
from .exports import Timeline
from .images import load_image
from .pipeline import ImageResult, VideoOptions, VideoResult, segment_image, segment_video
from .segmenter import ResizePolicy, SegmentationResult, Segmenter, SegmenterOptions
from .temporal import FrameLabels, FrameSegmenter, Speed, TemporalOptions, frame_segmenter

__all__ = [
    "CATALOG", "DEFAULT_MODEL_ID", "ModelEntry", "list_models", "resolve_model",
    "draw", "DrawOptions", "LegendItem", "Mode",
    "effects", "BackgroundEffect", "EffectOptions", "exports", "Timeline",
    "InputError", "ModelError", "SegmentationError", "WeightsError",
    "load_image", "ImageResult", "VideoOptions", "VideoResult", "segment_image", "segment_video",
    "ResizePolicy", "SegmentationResult", "Segmenter", "SegmenterOptions",
    "FrameLabels", "FrameSegmenter", "Speed", "TemporalOptions", "frame_segmenter",
]
