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
from pathlib import Path
from typing import Sequence
from enum import StrEnum

import cv2
import numpy as np

from . import labels as _labels
from .catalog import ModelEntry, resolve_model
from .errors import InputError, parse_choice
from .images import as_rgb_array
from .classmaps import refine_labels, resize_channels, soft_one_hot, upscale_nearest
from .runners import Runner, make_runner

class ResizePolicy(StrEnum):
    """How an image meets the model's square input: stretched to it, or fitted with grey padding."""

    STRETCH = "stretch"
    LETTERBOX = "letterbox"


PAD_VALUE = 128


@dataclass(frozen=True)
class SegmenterOptions:
    """How to build a segmenter: model (catalog id or path/handle), threads, resize policy."""

    model: str | None = None
    labels_file: str | None = None
    threads: int | None = None
    resize: ResizePolicy = ResizePolicy.STRETCH

    def __post_init__(self):
        object.__setattr__(self, "resize", parse_choice(ResizePolicy, self.resize, "resize policy"))


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
        self.options = options
        self.entry = entry or resolve_model(options.model, options.labels_file)
        self.runner = runner or make_runner(self.entry, options.threads)
        self.input_size_wh = self.runner.input_size_wh
        labels = self.entry.labels
        if options.labels_file and self.runner.num_classes:
            check_labels_count(labels, self.runner.num_classes, options.labels_file, self.entry.id)
        if not labels:
            labels = _labels.generic_labels(self.runner.num_classes or 256)
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
        iw, ih = self.input_size_wh
        h, w = rgb.shape[:2]
        if self.options.resize is ResizePolicy.STRETCH:
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
                scores = resize_channels(scores, (w * f, h * f))
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

    def segment_scores(self, image: np.ndarray, size_wh: tuple[int, int] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """(class map of ``segment``, :meth:`scores`) from one model run."""
        rgb = as_rgb_array(image)
        size_wh = tuple(size_wh or (rgb.shape[1], rgb.shape[0]))
        if self.has_scores:
            s = self.scores(rgb)
            return self.labels_from_scores(s, size_wh), s
        low = self.predict(rgb)
        return upscale_nearest(low, size_wh), soft_one_hot(low, len(self.labels))

    def segment(self, image: np.ndarray, size_wh: tuple[int, int] | None = None) -> SegmentationResult:
        """Segment an RGB image; the class map has the image's size, or ``size_wh``."""
        rgb = as_rgb_array(image)
        size_wh = tuple(size_wh or (rgb.shape[1], rgb.shape[0]))
        if self.has_scores:
            cm = self.labels_from_scores(self.scores(rgb), size_wh)
        else:
            cm = upscale_nearest(self.predict(rgb), size_wh)
        return SegmentationResult(cm, self.labels, self.palette, self.entry.id)


def check_labels_count(names: Sequence[str], classes: int, labels_file, model_id: str) -> None:
    """A labels file names every class of the model, no more, no fewer (InputError otherwise)."""
    if len(names) != classes:
        raise InputError(f"The labels file {Path(labels_file).name} holds {len(names)} name"
                         f"{'s' * (len(names) != 1)}; the model {model_id} has {classes} classes.")


def check_labels_file(model: str | None, labels_file) -> None:
    """Before a model loads: a labels file for a catalog model has one name per class."""
    if labels_file:
        from .catalog import CATALOG

        entry = resolve_model(model, labels_file)
        if entry.id in CATALOG and CATALOG[entry.id].labels:
            check_labels_count(entry.labels, len(CATALOG[entry.id].labels), labels_file, entry.id)
