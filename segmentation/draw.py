"""Drawing class maps: colour mask, overlay, outlines, side-by-side, legend.

Every function takes the frame (RGB uint8) and a class map of *any* size: the
class map is scaled to the frame with nearest neighbour (colourised first, at
the class map's own resolution, which is much cheaper for video). Colours come
from a fixed per-class palette, so they never change between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import Iterable, Sequence

import cv2
import numpy as np

from .classmaps import upscale_nearest
from .effects import BackgroundEffect, Effect, EffectOptions, default_foreground
from .errors import InputError, parse_choice
from .matte import MatteSource, check_matte, person_ids

class Mode(StrEnum):
    """What a result looks like: classes over the frame, the colours alone, both side by side,
    or a background effect around the chosen classes (see ``effects``)."""

    OVERLAY = "overlay"
    MASK = "mask"
    SIDE_BY_SIDE = "side-by-side"
    BLUR_BACKGROUND = Effect.BLUR.value
    REPLACE_BACKGROUND = Effect.REPLACE.value
    REMOVE_BACKGROUND = Effect.REMOVE.value  # RGBA


MODES = tuple(Mode)
EFFECT_MODES = frozenset(m.value for m in Effect)


def check_alpha(value: object, what: str = "--alpha") -> float:
    """The overlay's opacity as a float in 0..1; anything else (NaN included) is an InputError
    naming it as ``what`` (the app says "Overlay opacity")."""
    try:
        alpha = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number between 0 and 1, not {value!r}.") from None
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"{what} must be between 0 and 1, not {alpha:g}.")
    return alpha


@dataclass(frozen=True)
class DrawOptions:
    """How to draw a result: mode, overlay alpha, class filter (ids), outlines, background effect.

    ``outlines`` None (default) draws thin class boundaries in the overlay
    modes, where a class whose colour is close to the scene's (ADE20K's grey
    wall or road on grey asphalt) would otherwise vanish, and not on a mask.

    In the background-effect modes ``classes`` is the foreground (None: the
    model's ``person`` class, filled in by :meth:`resolve`), ``effect`` says
    how the background looks, and ``alpha`` and ``outlines`` do not apply.
    """

    mode: Mode = Mode.OVERLAY
    alpha: float = 0.5
    classes: tuple[int, ...] | None = None  # None = all classes (effects: person)
    outlines: bool | None = None
    effect: EffectOptions = EffectOptions()
    matte: MatteSource = MatteSource.AUTO  # effects: where the person matte's evidence comes from

    def __post_init__(self):
        object.__setattr__(self, "mode", parse_choice(Mode, self.mode, "output mode"))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "matte", check_matte(self.matte))

    def matte_ids(self, labels: Sequence[str]) -> tuple[int, ...]:
        """The foreground's ``person`` ids that a person matte stands for (empty: no matte needed).

        A matte source other than ``auto`` for a foreground without people is refused.
        """
        if self.background_effect is None:
            return ()
        fg = self.resolve(labels).classes or ()
        ids = tuple(i for i in person_ids(labels) if i in fg)
        if not ids and self.matte is not MatteSource.AUTO:
            names = ", ".join(labels[i] if i < len(labels) else str(i) for i in fg)
            raise InputError(f"--matte {self.matte} makes a person matte, but the foreground ({names}) "
                             "has no person.")
        return ids

    @property
    def show_outlines(self) -> bool:
        if self.background_effect is not None:
            return False
        return self.mode is not Mode.MASK if self.outlines is None else self.outlines

    @property
    def background_effect(self) -> Effect | None:
        """The mode's background effect, or None for overlay, mask and side-by-side."""
        return Effect(self.mode.value) if self.mode.value in EFFECT_MODES else None

    def resolve(self, labels: Sequence[str]) -> "DrawOptions":
        """These options for a model with ``labels``: a background effect without classes gets
        the model's ``person`` class (InputError if it has none); anything else is returned as is."""
        if self.background_effect is None or self.classes is not None:
            return self
        return replace(self, classes=default_foreground(labels))

    def opaque(self) -> "DrawOptions":
        """These options for an output without alpha (MP4, JPEG): ``remove-background`` becomes
        ``replace-background`` with the key colour (``EffectOptions.background``)."""
        return replace(self, mode=Mode.REPLACE_BACKGROUND) if self.mode is Mode.REMOVE_BACKGROUND else self


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


def _lut(palette: np.ndarray, classes: Iterable[int] | None, off=(0, 0, 0)) -> np.ndarray:
    """Palette as a 256-entry LUT; classes outside the filter get ``off``."""
    lut = np.asarray(palette, dtype=np.uint8)[:256].copy()
    if classes is not None:
        keep = np.zeros(256, dtype=bool)
        keep[[c for c in classes if 0 <= c < 256]] = True
        lut[~keep] = off
    return lut


def colorize(class_map: np.ndarray, palette: np.ndarray, classes: Iterable[int] | None = None,
             size_wh: tuple[int, int] | None = None) -> np.ndarray:
    """Colour mask (H, W, 3) of a class map, scaled to ``size_wh``; filtered-out classes are black."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = _lut(palette, classes)
    # One 32-bit gather per pixel: ~10x faster than indexing an (N, 3) palette at 720p.
    rgba = np.take(lut.view(np.uint32).ravel(), class_map).view(np.uint8).reshape(*class_map.shape[:2], 4)
    color = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    if size_wh is not None and (color.shape[1], color.shape[0]) != tuple(size_wh):
        color = cv2.resize(color, tuple(size_wh), interpolation=cv2.INTER_NEAREST)  # colours, not ids
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
        mask = upscale_nearest(keep[class_map], (frame.shape[1], frame.shape[0]))
        out = np.where(mask[..., None] > 0, out, frame)
    return out


_EDGE_KERNEL = np.ones((2, 2), np.uint8)
WHITE = (255, 255, 255)


def outline(image: np.ndarray, class_map: np.ndarray, color=WHITE,
            classes: Iterable[int] | None = None) -> np.ndarray:
    """Draw 1-pixel class boundaries (where a pixel's id differs from its left/upper neighbours).

    With ``classes``, only boundary pixels of those classes are drawn (the
    class filter leaves every other pixel untouched).
    """
    cm = upscale_nearest(class_map, (image.shape[1], image.shape[0]))
    edge = cv2.morphologyEx(cm, cv2.MORPH_GRADIENT, _EDGE_KERNEL)  # max - min over the 2x2 block: > 0 on edges
    if classes is not None:
        keep = np.zeros(256, dtype=np.uint8)
        keep[[c for c in classes if 0 <= c < 256]] = 255
        edge = cv2.bitwise_and(edge, cv2.LUT(cm, keep))
    out = image.copy()
    if tuple(color) == WHITE:
        cv2.add(out, (255, 255, 255, 0), dst=out, mask=edge)  # saturates to white: 3x faster than indexing
    else:
        out[edge > 0] = color
    return out


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two images next to each other (right resized to left's height if needed)."""
    if right.shape[0] != left.shape[0]:
        scale = left.shape[0] / right.shape[0]
        right = cv2.resize(right, (max(1, round(right.shape[1] * scale)), left.shape[0]))
    return np.concatenate([left, right], axis=1)


def render(frame: np.ndarray, class_map: np.ndarray, palette: np.ndarray,
           options: DrawOptions = DrawOptions(), matte: np.ndarray | None = None,
           person: tuple[int, ...] = ()) -> np.ndarray:
    """The output picture for one frame in the chosen mode (RGB; RGBA for ``remove-background``).

    ``matte``: the person alpha (``matte.PersonMatte``) that stands for the ``person`` class ids
    in a background effect's foreground.
    """
    if options.background_effect is not None:
        if options.classes is None:
            raise InputError("A background effect needs its foreground classes: set DrawOptions.classes "
                             "or call DrawOptions.resolve(labels) for the model's 'person' class.")
        effect = _effect(options.background_effect, options.classes, options.effect, tuple(person))
        return effect(frame, class_map, matte)
    if options.mode is Mode.MASK:
        h, w = frame.shape[:2]
        out = colorize(class_map, palette, options.classes, (w, h))
    else:
        out = overlay(frame, class_map, palette, options.alpha, options.classes)
    if options.show_outlines:
        out = outline(out, class_map, classes=options.classes)
    if options.mode is Mode.SIDE_BY_SIDE:
        out = side_by_side(frame, out)
    return out


@lru_cache(maxsize=4)
def _effect(effect: Effect, classes: tuple[int, ...], options: EffectOptions,
            person: tuple[int, ...] = ()) -> BackgroundEffect:
    """One annotator per (effect, foreground, options): it keeps the scaled background between frames."""
    return BackgroundEffect(effect, classes, options, person)


def output_size(width: int, height: int, mode: Mode | str) -> tuple[int, int]:
    """``size_wh`` of what ``render`` returns for a frame of this size."""
    return (width * 2, height) if parse_choice(Mode, mode, "output mode") is Mode.SIDE_BY_SIDE else (width, height)


def class_histogram(class_map: np.ndarray) -> np.ndarray:
    """Pixel count per class id (length 256)."""
    cm = np.ascontiguousarray(class_map, dtype=np.uint8)
    return cv2.calcHist([cm], [0], None, [256], [0, 256]).ravel().astype(np.int64)  # 6x np.bincount


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
        elif key.isdigit() and int(key) < len(labels):
            out.append(int(key))
        elif key.isdigit():
            raise ValueError(f"Unknown class id {key}: the model's classes are 0 to {len(labels) - 1}.")
        else:
            raise ValueError(f"Unknown class {n!r}; known: {', '.join(labels)}.")
    return tuple(out)


def chosen_classes(names: Iterable[str], labels: Sequence[str]) -> tuple[int, ...]:
    """:func:`class_ids` for classes a user chose: an unknown name or id is an InputError, the
    one error every front end reports as bad input."""
    try:
        return class_ids(names, labels)
    except ValueError as exc:
        raise InputError(str(exc)) from None
