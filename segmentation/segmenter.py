"""The segmenter: one loaded model, images in, class maps out.

``Segmenter`` hides which runner executes the model and how its answer is
shaped. Every image, whatever its size and aspect ratio, gets a class map
covering all of it:

* resize policy ``stretch`` (default): the image is resized to the model's
  input size ignoring aspect ratio. This is how the catalog's models were
  trained and evaluated (Coral's and Model Garden's convention) and it spends
  every input pixel on content; objects look squeezed to the network, which
  these models tolerate well.
* ``letterbox``: the image is scaled to fit, keeping its aspect ratio, and
  padded with mid-grey; the padding is cut away from the answer.

Score outputs are turned into class ids by argmax fusion: optional bilinear
upsampling of the scores by ``entry.score_upsample``, argmax at that low
resolution, then nearest-neighbour scaling of the class map. Class maps are
uint8 (every catalog model has < 256 classes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import labels as _labels
from .catalog import ModelEntry, resolve_model
from .errors import InputError
from .images import as_rgb_array
from .runners import Runner, make_runner

RESIZE_POLICIES = ("stretch", "letterbox")
PAD_VALUE = 128


@dataclass(frozen=True)
class SegmenterOptions:
    """How to build a segmenter: model (catalog id or path/handle), threads, resize policy."""

    model: str | None = None
    labels_file: str | None = None
    threads: int | None = None
    resize: str = "stretch"


@dataclass
class SegmentationResult:
    """A class map (uint8, H x W) with the names and colours needed to draw it."""

    class_map: np.ndarray
    labels: tuple[str, ...]
    palette: np.ndarray = field(repr=False)
    model_id: str = ""


class Segmenter:
    """One model, ready to segment images. Thread-safe (calls are serialised per model)."""

    def __init__(self, options: SegmenterOptions | None = None, *, entry: ModelEntry | None = None,
                 runner: Runner | None = None):
        options = options or SegmenterOptions()
        if options.resize not in RESIZE_POLICIES:
            raise InputError(f"Unknown resize policy {options.resize!r}; use one of {RESIZE_POLICIES}.")
        self.options = options
        self.entry = entry or resolve_model(options.model, options.labels_file)
        self.runner = runner or make_runner(self.entry, options.threads)
        self.input_size = self.runner.input_size  # (h, w)
        labels = self.entry.labels
        if not labels:
            n = getattr(self.runner, "output_shape", (0,))[-1] if self.runner.output_kind == "scores" else 256
            labels = _labels.generic_labels(int(n))
        self.labels: tuple[str, ...] = labels
        self.palette: np.ndarray = _labels.palette(self.entry.palette)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, model: str | None = None, **kwargs) -> "Segmenter":
        """Shorthand: ``Segmenter.create("deeplabv3-pascal", threads=2)``."""
        return cls(SegmenterOptions(model=model, **kwargs))

    # -- geometry -----------------------------------------------------------------
    def _prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """Resize to the model input; return it and the valid fraction (fy, fx) of it."""
        ih, iw = self.input_size
        h, w = rgb.shape[:2]
        if self.options.resize == "stretch":
            nh, nw = ih, iw
        else:
            s = min(ih / h, iw / w)
            nh, nw = max(1, min(ih, round(h * s))), max(1, min(iw, round(w * s)))
        if (nh, nw) == (h, w):
            resized = rgb
        else:
            # Bilinear is ~5x cheaper than area averaging and as good down to 1/3 scale;
            # past that (1080p and up) area averaging avoids aliasing.
            strong = nh < h / 3 or nw < w / 3
            resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if strong else cv2.INTER_LINEAR)
        if (nh, nw) == (ih, iw):
            return resized, (1.0, 1.0)
        canvas = np.full((ih, iw, 3), PAD_VALUE, dtype=np.uint8)
        canvas[:nh, :nw] = resized
        return canvas, (nh / ih, nw / iw)

    def _to_class_map(self, raw: np.ndarray, valid: tuple[float, float]) -> np.ndarray:
        """Model answer -> low-resolution class map over the valid (unpadded) region."""
        if self.runner.output_kind == "scores":
            f = self.entry.score_upsample
            scores = raw
            if f > 1:
                if scores.dtype == np.int8:  # shift to uint8: same order, cv2-friendly
                    scores = (scores.astype(np.int16) + 128).astype(np.uint8)
                elif scores.dtype not in (np.uint8, np.float32):
                    scores = scores.astype(np.float32)
                h, w = scores.shape[:2]
                scores = _resize_channels(scores, (w * f, h * f))
            cm = np.argmax(scores, axis=-1)
        else:
            cm = raw
        cm = cm.astype(np.uint8, copy=False) if cm.dtype != np.uint8 else cm
        if valid != (1.0, 1.0):
            h, w = cm.shape
            cm = cm[: max(1, round(h * valid[0])), : max(1, round(w * valid[1]))]
        return cm

    # -- public -------------------------------------------------------------------
    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class map at the model's own (low) resolution, covering the whole image."""
        rgb = as_rgb_array(image)
        x, valid = self._prepare(rgb)
        with self._lock:
            raw = self.runner(x)
        return self._to_class_map(raw, valid)

    def segment(self, image: np.ndarray, size: tuple[int, int] | None = None) -> SegmentationResult:
        """Segment an RGB image; the class map has the image's size, or ``size`` = (w, h)."""
        rgb = as_rgb_array(image)
        cm = self.predict(rgb)
        w, h = size or (rgb.shape[1], rgb.shape[0])
        return SegmentationResult(upscale_nearest(cm, (w, h)), self.labels, self.palette, self.entry.id)


def upscale_nearest(class_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a class map to ``size`` = (w, h) with nearest neighbour (never blends ids)."""
    if (class_map.shape[1], class_map.shape[0]) == tuple(size):
        return class_map
    return cv2.resize(class_map, tuple(size), interpolation=cv2.INTER_NEAREST)


def _resize_channels(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W, C) array, in groups of 4 channels when cv2 needs it."""
    try:
        return cv2.resize(scores, size, interpolation=cv2.INTER_LINEAR)
    except cv2.error:
        parts = [cv2.resize(np.ascontiguousarray(scores[..., i:i + 4]), size, interpolation=cv2.INTER_LINEAR)
                 for i in range(0, scores.shape[-1], 4)]
        return np.concatenate([p.reshape(size[1], size[0], -1) for p in parts], axis=-1)
