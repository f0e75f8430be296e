"""A photo job: one photo (an upload or a webcam array) in, the segmented PNG (and its labels) out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from segmentation import draw, video
from segmentation.draw import DrawOptions
from segmentation.effects import EffectOptions
from segmentation.errors import InputError
from segmentation.exports import save_labels
from segmentation.images import as_rgb_array, displayed_size, fit_pixels, load_image
from segmentation.pipeline import export_info, segment_image

from .checks import check_alpha, check_mode, check_model_id, class_filter, safe_stem
from .estimates import estimate_labels_bytes, estimate_photo_bytes
from .limits import Limits
from .request import Upload
from .results import PhotoOutcome, PhotoStats
from .segmenters import SegmenterCache
from .store import TempStore


def run_photo(segmenters: SegmenterCache, source: Upload | str | os.PathLike | np.ndarray, model_id: str, mode: str,
              alpha: float, classes: Sequence[str] | str | None, limits: Limits, store: TempStore,
              name: str | None = None, *, effect: EffectOptions | None = None, labels: bool = False) -> PhotoOutcome:
    """Segment one photo (uploaded file, checked or not, or webcam array) and write the PNG to download (RGBA for
    remove-background); ``effect``: the background effect's settings; ``labels``: also the class map
    as ``NAME_labels.zip`` and COCO ``NAME_labels.json``."""
    mode, alpha = check_mode(mode), check_alpha(alpha)
    check_model_id(model_id)
    downscaled = None
    if isinstance(source, np.ndarray):
        rgb = as_rgb_array(source)
        h, w = rgb.shape[:2]
        if h * w > limits.max_pixels:
            rgb = fit_pixels(rgb, limits.max_pixels)
            downscaled = (w, h)
        stem = safe_stem(name or "webcam")
    else:
        upload = source if isinstance(source, Upload) else Upload.check(source, limits)
        path = upload.path
        if upload.kind != "image":
            _refuse_non_photo(path)
        size = displayed_size(path)
        rgb = load_image(path, max_pixels=limits.max_pixels)
        if size is not None and size != (rgb.shape[1], rgb.shape[0]) and size[0] * size[1] > limits.max_pixels:
            downscaled = tuple(size)
        stem = safe_stem(name or path.name)
    seg = segmenters.get(model_id)
    ids = class_filter(classes, seg.labels)
    shown_mode = "overlay" if mode == "side-by-side" else mode
    res = segment_image(seg, rgb, DrawOptions(mode=shown_mode, alpha=alpha, classes=ids,
                                              effect=effect or EffectOptions()))
    picture = draw.side_by_side(res.original, res.rendered) if mode == "side-by-side" else res.rendered
    h, w = res.original.shape[:2]
    reserve = estimate_photo_bytes(picture.shape[1], picture.shape[0], picture.shape[2])
    job = store.new_job(reserve + (estimate_labels_bytes(w, h) if labels else 0))
    out = job / f"{stem}_segmented.png"
    label_files = [job / f"{stem}_labels.zip", job / f"{stem}_labels.json"] if labels else []
    try:
        Image.fromarray(picture).save(out, compress_level=1)
        for path in label_files:
            save_labels(res.class_map, path, export_info(seg))
    except BaseException:  # disk full, ...: no half-written PNG stays behind
        store.discard(job)
        raise
    store.finish(job)
    stats = PhotoStats(width=w, height=h, output_width=picture.shape[1], output_height=picture.shape[0],
                       seconds=round(res.seconds, 4), model=seg.entry.id, mode=mode, downscaled_from=downscaled)
    return PhotoOutcome(res.original, res.rendered, out, res.legend, stats, label_files)


def _refuse_non_photo(path: Path) -> None:
    """The photo endpoint's answer to a file Pillow cannot open: a video, or neither."""
    try:
        video.probe(path)
    except InputError:
        raise InputError(f"{path.name} is neither a photo nor a video that can be read.") from None
    raise InputError(f"{path.name} is a video, not a photo: use the video endpoint (segment_video).")
