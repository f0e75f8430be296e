"""Class maps: nearest-neighbour scaling, crisp edges from scores, soft one-hots.

Class ids are never blended: a class map is scaled with nearest neighbour,
and a finer one is made from *scores* (``refine_labels``). Sizes are
``size_wh`` = (width, height).
"""

from __future__ import annotations

import cv2
import numpy as np

SOFT_GRID = 129  # cells a side of the soft one-hot that stands in for a class-id model's scores


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


REFINE_MAX_PIXELS = 960 * 540  # larger outputs are refined at 1/2 (1/3, ...) of their size


def refine_labels(scores: np.ndarray, size_wh: tuple[int, int],
                  max_pixels: int | None = REFINE_MAX_PIXELS) -> np.ndarray:
    """Argmax of the scores upsampled bilinearly to ``size_wh``: class boundaries at full resolution.

    Exact full-size upsampling of every class costs ~35 ms at 720p. Two facts
    make it ~1 ms: a pixel whose four neighbouring cells share their top class
    has that class (bilinear weights are non-negative), so only classes that
    win some cell can win anywhere; and with the score in the high 11 bits of
    a uint16 and the candidate's index in the low 5, a running ``cv2.max``
    over single-channel OpenCV resizes is the argmax. Past ``max_pixels``
    (where the uint16 planes outgrow the CPU cache and the cost jumps 5x) the
    boundaries are placed at an integer fraction of the size and scaled up
    with nearest neighbour: 2-pixel steps at 720p, against 10-pixel blocks
    from the model's 128x128 argmax.
    """
    w, h = size_wh
    k = 1 if not max_pixels else max(1, int(np.ceil(np.sqrt(w * h / max_pixels))))
    if k > 1:
        return upscale_nearest(refine_labels(scores, (-(-w // k), -(-h // k)), None), size_wh)
    top = np.argmax(scores, axis=-1)
    present = np.flatnonzero(np.bincount(top.ravel(), minlength=scores.shape[-1]))
    if len(present) == 1:
        return np.full((h, w), present[0], dtype=np.uint8)
    if len(present) > 1 << _INDEX_BITS:  # rare: custom models with many classes in view; exact, slower
        up = resize_channels(np.ascontiguousarray(scores, dtype=np.float32), (w, h))
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


def resize_channels(scores: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W, C) array, in groups of 4 channels when cv2 needs it."""
    try:
        return cv2.resize(scores, size_wh, interpolation=cv2.INTER_LINEAR)
    except cv2.error:
        parts = [cv2.resize(np.ascontiguousarray(scores[..., i:i + 4]), size_wh, interpolation=cv2.INTER_LINEAR)
                 for i in range(0, scores.shape[-1], 4)]
        return np.concatenate([p.reshape(size_wh[1], size_wh[0], -1) for p in parts], axis=-1)
