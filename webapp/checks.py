"""Validation of every user-supplied value before anything runs.

A model id is only ever looked up in the catalog (TFLite entries only), never treated as a path
or handle, so ``"../../x.tflite"`` or ``"/etc/passwd"`` is refused with a sentence naming the
valid ids. Every refusal is an ``InputError`` / ``ModelError`` with one sentence for the user.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from segmentation import catalog, draw
from segmentation.catalog import HUB, SAVED_MODEL, ModelEntry
from segmentation.draw import EFFECT_MODES, MODES, Mode
from segmentation.effects import EffectOptions
from segmentation.errors import InputError, ModelError, parse_choice
from segmentation.pipeline import SPEEDS, sniff_kind
from segmentation.temporal import check_speed
from segmentation.video import VideoInfo

from .limits import Limits

__all__ = ["EFFECT_MODES", "MODES", "SPEEDS", "check_alpha", "check_colour", "check_mode", "check_model_id",
           "check_speed", "check_upload", "check_video_budget", "class_filter", "class_names", "effect_options",
           "model_choices", "safe_stem", "selectable_models"]

UNSELECTABLE_FORMATS = (HUB, SAVED_MODEL)


def selectable_models() -> list[ModelEntry]:
    """Catalog entries the app offers: TFLite ones (no TF Hub / SavedModel: slow, TensorFlow)."""
    return [e for e in catalog.list_models() if e.format not in UNSELECTABLE_FORMATS]


def model_choices() -> list[tuple[str, str]]:
    """(label, id) pairs for the model dropdown, default model first."""
    entries = selectable_models()
    entries.sort(key=lambda e: e.id != catalog.DEFAULT_MODEL_ID)
    return [(f"{e.id} — {e.name}", e.id) for e in entries]


def check_model_id(model_id: object) -> ModelEntry:
    """The catalog entry for an id the app offers; anything else is refused (never a path)."""
    ids = [e.id for e in selectable_models()]
    if isinstance(model_id, str) and model_id in ids:
        return catalog.CATALOG[model_id]
    shown = repr(model_id) if len(repr(model_id)) <= 80 else repr(model_id)[:77] + "..."
    raise ModelError(f"Unknown model {shown}: choose one of {', '.join(ids)}.")


def class_names(model_id: str) -> list[str]:
    """Label names of a catalog model (for the class filter), without loading it."""
    return list(check_model_id(model_id).labels)


def check_mode(mode: object) -> str:
    return str(parse_choice(Mode, mode, "output mode"))


def check_alpha(alpha: object) -> float:
    """The page's overlay opacity as a number in 0..1 (the library's own check, in the page's words)."""
    return draw.check_alpha(alpha, "Overlay opacity")


def check_colour(value: object) -> tuple[int, int, int]:
    """A background colour (``#0f0``, ``#00ff00``, ``rgb(0, 255, 0)``, ``green``) as RGB.

    Only ever a colour: the library also reads a file name there as a background image, which
    would let a visitor composite any picture on the server into their result."""
    from PIL import ImageColor

    text = str(value).strip() if isinstance(value, str) else ""
    try:
        if 0 < len(text) <= 64:
            return tuple(ImageColor.getrgb(text)[:3])
    except ValueError:
        pass
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise InputError(f"Unknown background colour {shown}: give #rrggbb, #rgb or a colour name such as green.")


def effect_options(blur: object = None, colour: object = None, image: str | os.PathLike | None = None,
                   feather: object = None, limits: Limits | None = None) -> EffectOptions:
    """The background effect's settings from the page or the API (None: the library's default).

    ``image``, an uploaded photo, replaces the background instead of ``colour``; it is checked as an
    upload (size limit) and by content. Ranges are checked by ``EffectOptions``."""
    default = EffectOptions()
    if image not in (None, ""):
        path = check_upload(image, limits or Limits())
        if sniff_kind(path) != "image":
            raise InputError(f"The background image {path.name} is not a photo.")
        background: object = str(path)
    else:
        background = default.background if colour in (None, "") else check_colour(colour)
    return EffectOptions(blur=default.blur if blur is None else blur, background=background,
                         feather=default.feather if feather is None else feather)


def class_filter(names: Sequence[str] | str | None, labels: Sequence[str]) -> tuple[int, ...] | None:
    """Class names (or ids) -> ids for ``DrawOptions.classes``; empty -> None (all classes)."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n for n in re.split(r"[,;]", names) if n.strip()]
    elif not isinstance(names, (list, tuple)):
        raise InputError(f"Classes must be a list of class names, got {type(names).__name__}.")
    names = [str(n) for n in names if str(n).strip()]
    if not names:
        return None
    return draw.chosen_classes(names, labels)


def check_upload(path: str | os.PathLike | None, limits: Limits) -> Path:
    """An uploaded file that exists and is within the upload limit."""
    if path is None or str(path) == "":
        raise InputError("No file was given: drop a video or a photo first.")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"The uploaded file {p.name!r} was not found on the server; upload it again.")
    size = p.stat().st_size
    if size > limits.max_upload_bytes:
        raise InputError(f"{p.name} is {size / 2**20:.1f} MB; the upload limit is {limits.max_upload_mb:g} MB.")
    if size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    return p


def _number(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def check_video_budget(info: VideoInfo, limits: Limits) -> None:
    """Refuse, from the header alone, a video over the frame-rate or frame-count limit.

    Headers can lie or say nothing (variable rates, raw streams, files still being written), so
    ``pipeline.segment_video`` holds the frame and duration limits again while decoding (and the
    pixel limit, from the first decoded frame)."""
    fps = float(info.fps)
    if fps > limits.max_fps:
        raise InputError(f"The video runs at {_number(fps)} frames per second; the limit is {_number(limits.max_fps)}.")
    frames = info.expected_frames
    if frames > limits.max_frames:
        raise InputError(f"The video has {frames:,} frames; the limit is {limits.max_frames:,} frames "
                         f"({limits.max_frames / 30:.3g} s at 30 frames per second).")


def safe_stem(name: str, default: str = "result") -> str:
    """A file-name stem safe to put in a download name."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._")[:60]
    return stem or default
