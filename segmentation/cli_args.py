"""The command line's options, help and listings: ``python -m segmentation --help``.

Every option has a help text, choices are printed by their plain names, and a
mistyped option or choice is one ``error:`` line (with the closest name), exit
status 2, never the whole usage. ``--list-models``, ``--list-classes [MODEL]``
and ``--version`` answer without an input.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from pathlib import Path

from . import catalog
from .batch import BatchOptions, labels_formats, library_version
from .draw import DrawOptions, Mode
from .effects import EffectOptions
from .matte import MatteSource
from .pipeline import VideoOptions
from .segmenter import ResizePolicy
from .temporal import Speed

EXIT_OK, EXIT_MODEL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  %(prog)s photo.jpg -o out.png --legend
  %(prog)s clip.mp4 -o out.mp4 --speed realtime --max-frames 100
  %(prog)s clip.mp4 -o blurred.mp4 --mode blur-background
  %(prog)s clip.mp4 -o out.mp4 --model deeplabv3-pascal --classes person car
  %(prog)s clip.mp4 -o out.mp4 --labels-out labels.zip --timeline-out shares.csv
  %(prog)s videos/ -o out/ --workers 2            # a batch: a folder into a folder
  %(prog)s --list-models
  %(prog)s --list-classes deeplabv3-pascal

exit status:
  0    done
  1    a model could not be loaded or fetched, the disk filled up, or (batch) some inputs failed
  2    bad usage or input: an unknown option, choice, model or class, an unreadable input, an output
       that cannot be written or that would overwrite an input; nothing is written
  130  interrupted (Ctrl-C); nothing is kept

models: """


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: unknown --mode 'maks' (did you mean mask?); choose from ...``."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"error: {plain_error(message)}", file=sys.stderr)
        sys.exit(EXIT_INPUT)


def plain_error(message: str) -> str:
    """argparse's message as one sentence a user can act on."""
    m = re.match(r"argument (\S+?)(?:/(\S+))?: invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if m:
        flag = m.group(2) or m.group(1)
        choices = [c.strip().strip("'") for c in m.group(4).split(",")]
        close = difflib.get_close_matches(m.group(3), choices, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown {flag} {m.group(3)!r}{hint}; choose from {', '.join(choices)}."
    m = re.match(r"argument (\S+?)(?:/(\S+))?: invalid (int|float) value: '(.*)'$", message)
    if m:
        kind = "a whole number" if m.group(3) == "int" else "a number"
        return f"{m.group(2) or m.group(1)} takes {kind}, not {m.group(4)!r}."
    m = re.match(r"unrecognized arguments: (.*)$", message)
    if m:
        return f"unknown option or extra argument: {m.group(1)}; see --help."
    m = re.match(r"argument (\S+?)(?:/(\S+))?: expected one argument$", message)
    if m:
        return f"{m.group(2) or m.group(1)} needs a value."
    return message.rstrip(".") + "; see --help."


def _prog() -> str:
    return "segmentation" if Path(sys.argv[0]).name == "segmentation" else "python -m segmentation"


def build_parser() -> Parser:
    """The whole command line: input and output, listings, drawing, video and batch options."""
    p = Parser(prog=_prog(), formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Semantic segmentation of an image or a video: every pixel labelled with a class,\n"
                           "drawn over the picture, as a mask, or as a background effect.",
               epilog=EXAMPLES + textwrap.fill(
                   ", ".join(catalog.CATALOG) + " (default " + catalog.DEFAULT_MODEL_ID + "), or a .tflite file, "
                   "SavedModel folder or TF Hub handle; --list-models describes them.", 100,
                   initial_indent=" " * 8, subsequent_indent="  ").lstrip())
    p.add_argument("input", nargs="*", help="image or video file (several, a folder or a glob pattern: a batch "
                   "into the -o folder, see below)")
    p.add_argument("-o", "--output",
                   help="output image (.png/.jpg/.bmp/.webp) or video (.mp4, or .webm: VP9, with alpha for "
                        "remove-background); never one of the inputs")
    p.add_argument("--version", action="version", version=f"%(prog)s {library_version()}",
                   help="print the version and exit")
    p.add_argument("--list-models", action="store_true", help="list the catalog's models and exit")
    p.add_argument("--list-classes", nargs="?", const="", metavar="MODEL",
                   help="list the class ids and names of MODEL (default: --model) and exit")
    p.add_argument("--model", default=catalog.DEFAULT_MODEL_ID,
                   help="catalog id (see --list-models), .tflite file, SavedModel folder or TF Hub handle")
    p.add_argument("--labels", metavar="FILE",
                   help="class names for a custom model, one per line in id order (as many as the model's classes)")
    _add_drawing_arguments(p)
    _add_video_arguments(p)
    _add_batch_arguments(p)
    return p


def _add_drawing_arguments(p: argparse.ArgumentParser) -> None:
    """How a result looks: mode, opacity, classes, background effects, outlines, the model's input."""
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.OVERLAY.value,
                   help="overlay (default), mask, side-by-side, or a background effect around the --classes "
                        "(default person): blur-background, replace-background (--background), "
                        "remove-background (photo: transparent PNG/WebP; video: .webm with alpha, or a "
                        "green-screen .mp4)")
    p.add_argument("--alpha", type=float,
                   help="overlay and side-by-side: the colours' opacity, 0..1 (default 0.5)")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="show only these classes (names or ids, see --list-classes); background effects: the "
                        "foreground")
    p.add_argument("--blur", type=float, metavar="SIGMA",
                   help="blur-background: Gaussian sigma in pixels (default 15, for 720p)")
    p.add_argument("--background", metavar="COLOUR|IMAGE",
                   help="replace-background: a colour (#00ff00, green) or an image (scaled to cover, centre-"
                        "cropped); remove-background to .mp4: the key colour (default #00ff00)")
    p.add_argument("--feather", type=float, metavar="PX",
                   help="background effects: soft foreground edge, Gaussian sigma in pixels (default 3; 0: hard)")
    p.add_argument("--matte", choices=[m.value for m in MatteSource], metavar="SOURCE",
                   help="background effects with people in the foreground: where the person matte comes "
                        "from: auto (default: the MediaPipe selfie models and the model's own person score, "
                        "and DeepLab PASCAL on photos), selfie, pascal, or model (the --model's person class)")
    p.add_argument("--outlines", action=argparse.BooleanOptionalAction, default=None,
                   help="thin class boundaries over the picture (default: on for overlay and side-by-side)")
    p.add_argument("--resize", choices=[r.value for r in ResizePolicy], default=ResizePolicy.STRETCH.value,
                   help="how a frame meets the model's square input: stretch (default, as the models were "
                        "trained) or letterbox (keep the aspect ratio, pad)")


def _add_video_arguments(p: argparse.ArgumentParser) -> None:
    """Video speed and limits, model threads, and the extra outputs (labels, timeline, legend)."""
    p.add_argument("--speed", choices=[s.value for s in Speed],
                   help="video only: accurate (default) runs the model on every frame; realtime runs it on "
                        "keyframes and follows the motion between them with optical flow (2-3x faster)")
    p.add_argument("--temporal", choices=("on", "off"),
                   help="video only: fuse each frame with the flow-warped previous ones (on, default) "
                        "or segment every frame on its own (off)")
    p.add_argument("--max-frames", type=int, metavar="N", help="video only: process only the first N frames")
    p.add_argument("--threads", type=int, metavar="N", help="model threads, at least 1 (default: all cores)")
    p.add_argument("--labels-out", metavar="FILE",
                   help="class ids at the input's size, by suffix: .png (image: 8-bit ids), .npz (video: uint8 "
                        "'labels' [frames,h,w]), .zip (one 8-bit PNG per frame + labels.json), .json (COCO RLE)")
    p.add_argument("--timeline-out", metavar="FILE.csv",
                   help="video only: each frame's class shares as CSV (time, frame, one column per class)")
    p.add_argument("--legend", action="store_true", help="print the classes present with their pixel share")


def _add_batch_arguments(p: argparse.ArgumentParser) -> None:
    """The batch options of ``python -m segmentation INPUT... -o OUT_DIR``."""
    g = p.add_argument_group("batch (several inputs, a folder, a glob pattern, or -o naming a folder)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="processes, each with its own model (default: one per core); the cores are split "
                        "between them unless --threads gives each process's model threads. For one video: "
                        "cut it into N chunks run by N processes (or N Ray tasks with --ray)")
    g.add_argument("--overwrite", action="store_true",
                   help="redo inputs whose outputs are already there (default: skip them when made with the "
                        "same input, model and settings)")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="one Ray task per input (one video: per chunk) on the cluster at ADDRESS (default: "
                        "$RAY_ADDRESS, else the "
                        "cluster started on this machine with `ray start`); 'local' starts a Ray here. "
                        "One model thread per task unless --threads. Inputs and OUT_DIR must be on storage "
                        "every node shares.")
    g.add_argument("--labels-out-format", choices=labels_formats(),
                   help="also write each input's class ids beside its output: NAME.labels.npz for a video and "
                        "NAME.labels.png for a photo (npz), NAME.labels.zip (zip) or COCO NAME.labels.json (json)")


def options_from_args(args: argparse.Namespace) -> BatchOptions:
    """What the flags ask for, for one file or a batch; every value is checked by its options
    class (``EffectOptions`` reads a background image here). Flags not given keep the defaults."""
    given = {k: getattr(args, k, None) for k in ("blur", "background", "feather")}
    effect = EffectOptions(**{k: v for k, v in given.items() if v is not None})
    alpha = {} if args.alpha is None else {"alpha": args.alpha}
    dopts = DrawOptions(mode=args.mode, outlines=args.outlines, effect=effect,
                        matte=getattr(args, "matte", None) or "auto", **alpha)
    video = VideoOptions(draw=dopts, speed=args.speed or Speed.ACCURATE, temporal=args.temporal != "off",
                         max_frames=args.max_frames)
    return BatchOptions(model=args.model, labels_file=args.labels, resize=args.resize, video=video,
                        classes=tuple(args.classes) if args.classes else None,
                        labels_format=getattr(args, "labels_out_format", None))


def list_models(out=None) -> int:
    for e in catalog.list_models():
        note = " (default)" if e.id == catalog.DEFAULT_MODEL_ID else ""
        print(f"{e.id:<30s} {e.dataset or '-':<36s} {e.name}{note}", file=out)
    return EXIT_OK


def list_classes(model: str, labels_file: str | None, out=None) -> int:
    """The class ids and names of ``model``: a catalog id's without loading it; a model file's after loading."""
    from .errors import InputError, ModelError

    try:
        entry = catalog.resolve_model(model, labels_file)
    except ModelError as exc:
        raise InputError(str(exc)) from None
    labels = entry.labels
    if not labels:
        from .segmenter import Segmenter, SegmenterOptions

        labels = Segmenter(SegmenterOptions(model=model, labels_file=labels_file)).labels
    for i, name in enumerate(labels):
        print(f"{i:3d}  {name}", file=out)
    return EXIT_OK
