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

Three views of one model answer:

* ``predict``: the class map at the model's own low resolution (score models:
  scores upsampled by ``entry.score_upsample``, argmax) -- the model alone.
* ``scores``: per-class evidence on the model's grid, float32 (H', W', C),
  linear enough to blend over time (score models: their logits in quantized
  units; class-id models: a soft one-hot at up to 129 cells a side).
* ``segment`` / ``labels_from_scores``: the class map at the image's size.
  Score models get crisp edges: the scores are upsampled bilinearly to the
  full size before the argmax (:func:`refine_labels`, ~3 ms at 720p); class-id
  models are scaled with nearest neighbour, exactly as the model answered.

Sizes are ``size_wh`` = (width, height) throughout. Class maps are uint8
(every catalog model has < 256 classes).
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
SOFT_GRID = 129  # cells a side of the soft one-hot that stands in for a class-id model's scores


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

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        x, valid = self._prepare(as_rgb_array(image))
        with self._lock:
            return self.runner(x), valid

    # -- public -------------------------------------------------------------------
    @property
    def has_scores(self) -> bool:
        """True when the model answers with per-class scores (crisp edges, exact fusion)."""
        return self.runner.output_kind == "scores"

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class map at the model's own (low) resolution, covering the whole image."""
        raw, valid = self._run(image)
        return self._to_class_map(raw, valid)

    def scores(self, image: np.ndarray) -> np.ndarray:
        """Per-class evidence (float32, H' x W' x C) on the model's grid, covering the whole image.

        The argmax over C is the model's answer; a weighted mean of two such
        arrays is a meaningful blend (logits: a product of experts; soft
        one-hots: a vote), which is what temporal fusion relies on.
        """
        raw, valid = self._run(image)
        if self.has_scores:
            s = raw.astype(np.float32)
            h, w = s.shape[:2]
        else:
            s = soft_one_hot(self._to_class_map(raw, (1.0, 1.0)), len(self.labels))
            h, w = s.shape[:2]
        if valid != (1.0, 1.0):
            s = s[: max(1, round(h * valid[0])), : max(1, round(w * valid[1]))]
        return s

    def labels_from_scores(self, scores: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        """Class map (uint8) of ``size_wh`` from :meth:`scores` output, edges refined."""
        return refine_labels(scores, size_wh)

    def segment(self, image: np.ndarray, size_wh: tuple[int, int] | None = None) -> SegmentationResult:
        """Segment an RGB image; the class map has the image's size, or ``size_wh``."""
        rgb = as_rgb_array(image)
        size_wh = tuple(size_wh or (rgb.shape[1], rgb.shape[0]))
        if self.has_scores:
            cm = self.labels_from_scores(self.scores(rgb), size_wh)
        else:
            cm = upscale_nearest(self.predict(rgb), size_wh)
        return SegmentationResult(cm, self.labels, self.palette, self.entry.id)


def upscale_nearest(class_map: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Scale a class map to ``size_wh`` with nearest neighbour (never blends ids)."""
    if (class_map.shape[1], class_map.shape[0]) == tuple(size_wh):
        return class_map
    return cv2.resize(class_map, tuple(size_wh), interpolation=cv2.INTER_NEAREST)


def soft_one_hot(class_map: np.ndarray, num_classes: int, grid: int = SOFT_GRID) -> np.ndarray:
    """Fraction of each cell covered by each class (float32, h x w x C), at most ``grid`` a side."""
    h, w = class_map.shape[:2]
    gw, gh = min(w, grid), min(h, grid)
    c = max(num_classes, int(class_map.max()) + 1)
    out = np.zeros((gh, gw, c), dtype=np.float32)
    for k in np.flatnonzero(np.bincount(class_map.ravel(), minlength=c)):
        out[..., k] = cv2.resize((class_map == k).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    return out


_INDEX_BITS = 5  # refine_labels packs the candidate's index into the low bits of a uint16


def refine_labels(scores: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Argmax of the scores upsampled bilinearly to ``size_wh``: class boundaries at full resolution.

    Exact full-size upsampling of every class costs ~35 ms at 720p. Two facts
    make it ~3 ms: a pixel whose four neighbouring cells share their top class
    has that class (bilinear weights are non-negative), so only classes that
    win some cell can win anywhere; and with the score in the high 11 bits of
    a uint16 and the candidate's index in the low 5, a running ``cv2.max``
    over single-channel OpenCV resizes is the argmax.
    """
    w, h = size_wh
    top = np.argmax(scores, axis=-1)
    present = np.flatnonzero(np.bincount(top.ravel(), minlength=scores.shape[-1]))
    if len(present) == 1:
        return np.full((h, w), present[0], dtype=np.uint8)
    if len(present) > 1 << _INDEX_BITS:  # rare: custom models with many classes in view; exact, slower
        up = _resize_channels(np.ascontiguousarray(scores, dtype=np.float32), (w, h))
        return np.argmax(up.reshape(h, w, -1), axis=-1).astype(np.uint8)
    cand = scores[..., present].astype(np.float32)
    lo, hi = float(cand.min()), float(cand.max())
    scale = (0xFFFF >> _INDEX_BITS) / (hi - lo) if hi > lo else 0.0
    cand = ((cand - lo) * (scale * (1 << _INDEX_BITS))).astype(np.uint16)
    mask = 0xFFFF ^ ((1 << _INDEX_BITS) - 1)
    last = (1 << _INDEX_BITS) - 1
    best = None
    for i in range(len(present)):
        up = cv2.resize(np.ascontiguousarray(cand[..., i]), (w, h), interpolation=cv2.INTER_LINEAR)
        packed = cv2.bitwise_or(cv2.bitwise_and(up, mask), last - i)  # ties go to the lower id, as np.argmax
        best = packed if best is None else cv2.max(packed, best, dst=best)
    lut = np.zeros(256, dtype=np.uint8)
    lut[last - len(present) + 1: last + 1] = present[::-1]
    index = cv2.bitwise_and(best, (1 << _INDEX_BITS) - 1).astype(np.uint8)
    return cv2.LUT(index, lut).reshape(h, w)


def _resize_channels(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W, C) array, in groups of 4 channels when cv2 needs it."""
    try:
        return cv2.resize(scores, size, interpolation=cv2.INTER_LINEAR)
    except cv2.error:
        parts = [cv2.resize(np.ascontiguousarray(scores[..., i:i + 4]), size, interpolation=cv2.INTER_LINEAR)
                 for i in range(0, scores.shape[-1], 4)]
        return np.concatenate([p.reshape(size[1], size[0], -1) for p in parts], axis=-1)
