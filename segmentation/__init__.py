"""Semantic segmentation for images and video: catalog, weights, runners, drawing, pipeline.

Quick start::

    from segmentation import Segmenter, load_image, draw
    seg = Segmenter.create()                      # Autoseg-EdgeTPU XS, the default
    result = seg.segment(load_image("photo.jpg"))
    picture = draw.render(load_image("photo.jpg"), result.class_map, result.palette)
"""

from .catalog import CATALOG, DEFAULT_MODEL_ID, ModelEntry, list_models, resolve_model
from .draw import DrawOptions, LegendItem
from .errors import InputError, ModelError, SegmentationError, WeightsError
from .images import load_image
from .segmenter import SegmentationResult, Segmenter, SegmenterOptions

__all__ = [
    "CATALOG", "DEFAULT_MODEL_ID", "ModelEntry", "list_models", "resolve_model",
    "DrawOptions", "LegendItem", "InputError", "ModelError", "SegmentationError", "WeightsError",
    "load_image", "SegmentationResult", "Segmenter", "SegmenterOptions",
]
