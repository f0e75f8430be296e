"""Pick by pointing: the class under a click on a still of the input.

The page shows a still of the dropped file (the photo, or a video's frame at a chosen time) in
a ``gr.Image`` whose ``.select`` event gives the pixel clicked. ``Picker.pick`` segments that
still with the chosen model (once per still and model: a small cache) and names the class
under the pixel; ``toggle`` adds it to the class filter (or the foreground of an effect), or
removes it when it is there already.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from segmentation.draw import EFFECT_MODES
from segmentation.errors import InputError
from segmentation.images import as_rgb_array, load_image
from segmentation.pipeline import sniff_kind
from segmentation.video import probe, read_frames

STILL_SIDE = 1280  # a still's longer side at most (px): enough to point at, light to send


def _fit(rgb: np.ndarray, side: int = STILL_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def video_duration(path: str | Path) -> float:
    """A video's duration in seconds (0 when its header does not say)."""
    info = probe(path)
    return float(info.duration or (info.frames / float(info.fps) if info.fps else 0.0))


def still_of(path: str | Path, at: float = 0.0, max_pixels: int | None = None,
             max_frames: int | None = None) -> np.ndarray:
    """The picture to point at: a photo itself, or a video's frame at ``at`` seconds (its last
    frame when it is shorter), at most ``STILL_SIDE`` px on its longer side."""
    if sniff_kind(path) == "image":
        return _fit(load_image(path, max_pixels))
    last = None
    for frame in read_frames(path, max_frames):
        last = frame.rgb
        if float(frame.pts * frame.time_base) >= at - 1e-6:
            break
    if last is None:
        raise InputError(f"{Path(path).name} has no frame to show.")
    return _fit(last)


def toggle(chosen: Sequence[str] | None, name: str) -> tuple[list[str], bool]:
    """``chosen`` with ``name`` added (True) or, when it was there, removed (False)."""
    names = [str(n) for n in chosen or []]
    if name in names:
        return [n for n in names if n != name], False
    return names + [name], True


def message(name: str, added: bool, mode: str) -> str:
    """What a click did, in a few words: "Added car to the class filter" and the like."""
    where = "the foreground" if mode in EFFECT_MODES else "the class filter"
    return f"Added **{name}** to {where}" if added else f"Removed **{name}** from {where}"


class Picker:
    """Class maps of recent stills per model (``size`` of them), from ``get(model_id)``'s segmenter."""

    def __init__(self, get: Callable[[str], object], size: int = 8):
        self._get = get
        self._size = size
        self._maps: OrderedDict[tuple[str, str], tuple[np.ndarray, Sequence[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def class_map(self, still: np.ndarray, model_id: str) -> tuple[np.ndarray, Sequence[str]]:
        """The still's class map at its own size, and the model's label names (cached)."""
        rgb = as_rgb_array(still)
        key = (hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest() + f"{rgb.shape}", model_id)
        with self._lock:
            if key in self._maps:
                self._maps.move_to_end(key)
                return self._maps[key]
        seg = self._get(model_id)
        got = (seg.segment(rgb).class_map, tuple(seg.labels))
        with self._lock:
            self._maps[key] = got
            while len(self._maps) > self._size:
                self._maps.popitem(last=False)
        return got

    def pick(self, still: np.ndarray, x: int, y: int, model_id: str) -> str:
        """The name of the class at pixel (x, y) of ``still``."""
        cm, labels = self.class_map(still, model_id)
        h, w = cm.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            raise InputError(f"The point ({x}, {y}) is outside the picture ({w}×{h}).")
        return labels[int(cm[int(y), int(x)])]
