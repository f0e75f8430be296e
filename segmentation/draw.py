"""Drawing class maps: colour mask, overlay, outlines, side-by-side, legend.

Every function takes the frame (RGB uint8) and a class map of *any* size: the
class map is scaled to the frame with nearest neighbour (colourised first, at
the class map's own resolution, which is much cheaper for video). Colours come
from a fixed per-class palette, so they never change between frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np

MODES = ("overlay", "mask", "side-by-side")


@dataclass(frozen=True)
class DrawOptions:
    """How to draw a result: mode, overlay alpha, class filter (ids), outlines.

    ``outlines`` None (default) draws thin class boundaries in the overlay
    modes, where a class whose colour is close to the scene's (ADE20K's grey
    wall or road on grey asphalt) would otherwise vanish, and not on a mask.
    """

    mode: str = "overlay"
    alpha: float = 0.5
    classes: tuple[int, ...] | None = None  # None = all classes
    outlines: bool | None = None

    @property
    def show_outlines(self) -> bool:
        return self.mode != "mask" if self.outlines is None else self.outlines


@dataclass(frozen=True)
class LegendItem:
    """One class present in a result: id, name, RGB colour and share of pixels (0..1)."""

    id: int
    name: str
    color: tuple[int, int, int]
    share: float

    @property
    def hex(self) -> str:
        return "#%02x%02x%02x" % self.color


def _fit(class_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    if class_map.shape[:2] == (h, w):
        return class_map
    return cv2.resize(class_map, (w, h), interpolation=cv2.INTER_NEAREST)


def _lut(palette: np.ndarray, classes: Iterable[int] | None, off=(0, 0, 0)) -> np.ndarray:
    """Palette as a 256-entry LUT; classes outside the filter get ``off``."""
    lut = np.asarray(palette, dtype=np.uint8)[:256].copy()
    if classes is not None:
        keep = np.zeros(256, dtype=bool)
        keep[[c for c in classes if 0 <= c < 256]] = True
        lut[~keep] = off
    return lut


def colorize(class_map: np.ndarray, palette: np.ndarray, classes: Iterable[int] | None = None,
             size: tuple[int, int] | None = None) -> np.ndarray:
    """Colour mask (H, W, 3) of a class map; filtered-out classes are black. ``size`` = (w, h)."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = _lut(palette, classes)
    # One 32-bit gather per pixel: ~10x faster than indexing an (N, 3) palette at 720p.
    rgba = np.take(lut.view(np.uint32).ravel(), class_map).view(np.uint8).reshape(*class_map.shape[:2], 4)
    color = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    if size is not None and (color.shape[1], color.shape[0]) != tuple(size):
        color = cv2.resize(color, tuple(size), interpolation=cv2.INTER_NEAREST)
    return color


def overlay(frame: np.ndarray, class_map: np.ndarray, palette: np.ndarray, alpha: float = 0.5,
            classes: Iterable[int] | None = None) -> np.ndarray:
    """Blend class colours over the frame; pixels of filtered-out classes stay untouched."""
    h, w = frame.shape[:2]
    alpha = float(min(max(alpha, 0.0), 1.0))
    color = colorize(class_map, palette, None, (w, h))
    out = cv2.addWeighted(frame, 1.0 - alpha, color, alpha, 0.0)
    if classes is not None:
        keep = np.zeros(256, dtype=np.uint8)
        keep[[c for c in classes if 0 <= c < 256]] = 255
        mask = _fit(keep[class_map], frame.shape)
        out = np.where(mask[..., None] > 0, out, frame)
    return out


def outline(image: np.ndarray, class_map: np.ndarray, color=(255, 255, 255),
            classes: Iterable[int] | None = None) -> np.ndarray:
    """Draw 1-pixel class boundaries (where neighbouring ids differ) onto a copy of image.

    With ``classes``, only boundary pixels of those classes are drawn (the
    class filter leaves every other pixel untouched).
    """
    cm = _fit(class_map, image.shape)
    edge = np.zeros(cm.shape, dtype=bool)
    edge[:, 1:] |= cm[:, 1:] != cm[:, :-1]
    edge[1:, :] |= cm[1:, :] != cm[:-1, :]
    if classes is not None:
        keep = np.zeros(256, dtype=bool)
        keep[[c for c in classes if 0 <= c < 256]] = True
        edge &= keep[cm]
    out = image.copy()
    out[edge] = color
    return out


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two images next to each other (right resized to left's height if needed)."""
    if right.shape[0] != left.shape[0]:
        scale = left.shape[0] / right.shape[0]
        right = cv2.resize(right, (max(1, round(right.shape[1] * scale)), left.shape[0]))
    return np.concatenate([left, right], axis=1)


def render(frame: np.ndarray, class_map: np.ndarray, palette: np.ndarray,
           options: DrawOptions = DrawOptions()) -> np.ndarray:
    """The output picture for one frame in the chosen mode."""
    if options.mode not in MODES:
        raise ValueError(f"Unknown mode {options.mode!r}; use one of {MODES}.")
    if options.mode == "mask":
        h, w = frame.shape[:2]
        out = colorize(class_map, palette, options.classes, (w, h))
    else:
        out = overlay(frame, class_map, palette, options.alpha, options.classes)
    if options.show_outlines:
        out = outline(out, class_map, classes=options.classes)
    if options.mode == "side-by-side":
        out = side_by_side(frame, out)
    return out


def output_size(width: int, height: int, mode: str) -> tuple[int, int]:
    """(w, h) of what ``render`` returns for a frame of this size."""
    return (width * 2, height) if mode == "side-by-side" else (width, height)


def class_histogram(class_map: np.ndarray) -> np.ndarray:
    """Pixel count per class id (length 256)."""
    return np.bincount(class_map.ravel(), minlength=256)[:256]


def legend(counts_or_map: np.ndarray, labels: Sequence[str], palette: np.ndarray,
           classes: Iterable[int] | None = None, min_share: float = 0.0) -> list[LegendItem]:
    """Classes present (largest share first), from a class map or a 256-bin histogram."""
    counts = counts_or_map if counts_or_map.ndim == 1 else class_histogram(counts_or_map)
    total = float(counts.sum()) or 1.0
    wanted = None if classes is None else set(classes)
    items = []
    for cid in np.flatnonzero(counts):
        share = counts[cid] / total
        if share < min_share or (wanted is not None and cid not in wanted):
            continue
        name = labels[cid] if cid < len(labels) else f"class {cid}"
        items.append(LegendItem(int(cid), name, tuple(int(v) for v in palette[cid]), float(share)))
    items.sort(key=lambda it: -it.share)
    return items


def legend_image(items: Sequence[LegendItem], width: int = 320, row: int = 22) -> np.ndarray:
    """The legend as a small RGB picture (swatch, name, share), for the CLI and thumbnails."""
    img = np.full((max(1, len(items)) * row + 8, width, 3), 255, dtype=np.uint8)
    for i, it in enumerate(items):
        y = 4 + i * row
        cv2.rectangle(img, (6, y + 3), (6 + row - 6, y + row - 3), it.color, -1)
        cv2.rectangle(img, (6, y + 3), (6 + row - 6, y + row - 3), (0, 0, 0), 1)
        cv2.putText(img, f"{it.name}  {it.share * 100:.1f}%", (row + 8, y + row - 7),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def class_ids(names: Iterable[str], labels: Sequence[str]) -> tuple[int, ...]:
    """Class names (case-insensitive) or numeric ids -> ids; unknown names raise ValueError."""
    index = {n.lower(): i for i, n in enumerate(labels)}
    out = []
    for n in names:
        key = str(n).strip().lower()
        if key in index:
            out.append(index[key])
        elif key.isdigit() and int(key) < max(len(labels), 256):
            out.append(int(key))
        else:
            raise ValueError(f"Unknown class {n!r}; known: {', '.join(labels)}")
    return tuple(out)
