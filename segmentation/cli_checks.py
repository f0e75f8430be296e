"""What the command line's options mean together: nothing a user types is silently ignored.

An option that has no effect in the chosen mode or for the input's kind
(``--background`` in overlay mode, ``--speed`` for a photo) is refused with
one sentence, as is a number out of range, an unknown model name or a
file-like ``-o`` for several inputs. Options left out get their defaults
here (``fill_defaults``), after the checks, so that "given" can be told from
"default".
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .batch.inputs import has_glob
from .draw import EFFECT_MODES, Mode
from .errors import InputError, ModelError
from .media import MediaKind
from .segmenter import check_labels_file

BATCH_FLAGS = ("workers", "overwrite", "ray", "labels_out_format")
DEFAULTS = {"alpha": 0.5, "speed": "accurate", "temporal": "on"}
VIDEO_ONLY = ("speed", "temporal", "max_frames", "timeline_out")
# names that look like a file, not a folder, for -o with several inputs
FILE_SUFFIXES = {".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".gif", ".png", ".jpg", ".jpeg", ".bmp",
                 ".webp", ".tif", ".tiff", ".npz", ".zip", ".json", ".csv"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_numbers(args: argparse.Namespace) -> None:
    """Counts below 1 (``--alpha`` is checked by ``DrawOptions``, as for every caller)."""
    for name in ("max_frames", "threads", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise InputError(f"{_flag(name)} must be at least 1, not {value}.")


def check_model_name(model: str, labels_file: str | None = None) -> None:
    """An unknown model id is a usage error (exit 2), found before anything is read; a model file
    that exists but cannot be used stays a model error (exit 1, when it is loaded)."""
    from .catalog import resolve_model

    try:
        resolve_model(model)
    except ModelError as exc:
        if not Path(os.path.expanduser(model)).exists():
            raise InputError(f"{exc} See --list-models.") from None
        raise
    check_labels_file(model, labels_file)  # one name per class of a catalog model


def check_mode_options(args: argparse.Namespace) -> None:
    """Options that only some modes read, given for another mode."""
    mode = Mode(args.mode)
    effect = mode in EFFECT_MODES
    if args.alpha is not None and mode not in (Mode.OVERLAY, Mode.SIDE_BY_SIDE):
        raise InputError(f"--alpha has no effect in {mode} mode; it is the overlay's opacity (overlay, "
                         "side-by-side).")
    if args.blur is not None and mode is not Mode.BLUR_BACKGROUND:
        raise InputError(f"--blur has no effect in {mode} mode; it is for blur-background.")
    if args.background is not None and mode not in (Mode.REPLACE_BACKGROUND, Mode.REMOVE_BACKGROUND):
        raise InputError(f"--background has no effect in {mode} mode; it is for replace-background (and the key "
                         "colour of remove-background to .mp4).")
    if args.feather is not None and not effect:
        raise InputError(f"--feather has no effect in {mode} mode; it is for the background effects.")
    if getattr(args, "matte", None) is not None and not effect:
        raise InputError(f"--matte has no effect in {mode} mode; it is for the background effects.")
    if args.outlines is not None and effect:
        raise InputError(f"--{'' if args.outlines else 'no-'}outlines has no effect in {mode} mode; outlines are "
                         "drawn in overlay, mask and side-by-side.")


def check_kind_options(args: argparse.Namespace, kind: MediaKind, src: Path) -> None:
    """Video-only options for a photo; the key colour for a remove-background output that keeps alpha."""
    if kind == MediaKind.IMAGE:
        given = [_flag(n) for n in VIDEO_ONLY if getattr(args, n, None) is not None]
        if given:
            raise InputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for videos; "
                             f"{src.name} is an image.")
    alpha_out = kind == MediaKind.IMAGE or Path(args.output).suffix.lower() == ".webm"
    if Mode(args.mode) is Mode.REMOVE_BACKGROUND and args.background is not None and alpha_out:
        raise InputError(f"--background has no effect for remove-background to {Path(args.output).name}: its "
                         "background is transparent (the key colour is for a .mp4 output only).")


def is_batch(args: argparse.Namespace) -> bool:
    """More than one input, a folder or glob input, or -o naming a folder (existing, or ending in /)."""
    inputs, out = args.input, args.output
    if len(inputs) > 1 or os.path.isdir(out) or out.endswith(("/", os.sep)):
        return True
    one = inputs[0]
    return os.path.isdir(one) or (not os.path.exists(one) and has_glob(one))


def refuse_batch_flags(args: argparse.Namespace, kind: MediaKind | None = None) -> None:
    """Single-file mode: the batch options make no sense, but for one video (``kind`` video)
    ``--workers`` and ``--ray`` split it into chunks; say how to get a batch."""
    flags = [f for f in BATCH_FLAGS if kind != MediaKind.VIDEO or f not in ("workers", "ray")]
    given = [_flag(f) for f in flags if getattr(args, f, None) not in (None, False)]
    if given:
        one = " (--workers and --ray also split one video)" if set(given) <= {"--workers", "--ray"} else ""
        raise InputError(f"{', '.join(given)}: batch options{one}; give several inputs, a folder or a glob "
                         "pattern, and an output folder (-o OUT_DIR/).")


def refuse_file_outputs_for_batch(args: argparse.Namespace) -> None:
    """Several inputs go into a folder: ``-o a.mp4`` would make a folder named a.mp4, and
    ``--labels-out`` or ``--timeline-out`` name one file."""
    out = args.output
    if not (os.path.isdir(out) or out.endswith(("/", os.sep))) and Path(out).suffix.lower() in FILE_SUFFIXES:
        raise InputError(f"several inputs (or a folder, or a pattern) go into a folder, and -o {out} names a file; "
                         "give a folder, such as -o out/.")
    for flag, instead in (("labels_out", "--labels-out-format"), ("timeline_out", None)):
        if getattr(args, flag, None):
            raise InputError(f"{_flag(flag)} names one file; in a batch "
                             + (f"use {instead} instead." if instead else "it is not available."))


def fill_defaults(args: argparse.Namespace) -> None:
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
