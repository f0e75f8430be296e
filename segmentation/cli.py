"""Command line: ``python -m segmentation INPUT -o OUTPUT [options]``.

Images and videos are told apart by content. Errors print one line on stderr
and exit with status 2 (bad input) or 1 (model/weights problem), never a
traceback; a failed run leaves nothing at OUTPUT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import batch, catalog, draw
from .draw import DrawOptions, Mode
from .errors import InputError, SegmentationError
from .matte import MatteSource
from .files import atomic_path, is_disk_full
from .segmenter import ResizePolicy
from .temporal import Speed

EXIT_INPUT, EXIT_MODEL = 2, 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segmentation" if Path(sys.argv[0]).name == "segmentation" else "python -m segmentation",
        description="Semantic segmentation of an image or a video.",
        epilog="Models: " + ", ".join(catalog.CATALOG) + " (or a .tflite file, SavedModel folder or TF Hub handle).",
    )
    p.add_argument("input", nargs="+", help="image or video file (several, a folder or a glob pattern: a batch "
                   "into the -o folder, see below)")
    p.add_argument("-o", "--output", required=True,
                   help="output image (.png/.jpg/.bmp/.webp) or video (.mp4, or .webm: VP9, with alpha for "
                        "remove-background)")
    p.add_argument("--model", default=catalog.DEFAULT_MODEL_ID, help="catalog id, .tflite, SavedModel folder or TF Hub handle")
    p.add_argument("--labels", help="labels file for a custom model (one name per line)")
    p.add_argument("--mode", choices=list(Mode), default=Mode.OVERLAY.value,
                   help="overlay (default), mask, side-by-side, or a background effect around the --classes "
                        "(default person): blur-background, replace-background (--background), "
                        "remove-background (photo: transparent PNG/WebP; video: .webm with alpha, or a "
                        "green-screen .mp4)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity, 0..1 (default 0.5)")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="show only these classes (names or ids); background effects: the foreground")
    p.add_argument("--blur", type=float, metavar="SIGMA",
                   help="blur-background: Gaussian sigma in pixels (default 15, for 720p)")
    p.add_argument("--background", metavar="COLOUR|IMAGE",
                   help="replace-background: a colour (#00ff00, green) or an image (scaled to cover, centre-"
                        "cropped); remove-background to .mp4: the key colour (default #00ff00)")
    p.add_argument("--feather", type=float, metavar="PX",
                   help="background effects: soft foreground edge, Gaussian sigma in pixels (default 3; 0: hard)")
    p.add_argument("--matte", choices=list(MatteSource), default=MatteSource.AUTO.value,
                   help="background effects with people in the foreground: where the person matte comes "
                        "from -- auto (default: MediaPipe selfie models + the model's own person score, "
                        "+ DeepLab PASCAL on photos), selfie, pascal, or model (the --model's person class)")
    p.add_argument("--outlines", action=argparse.BooleanOptionalAction, default=None,
                   help="thin class boundaries over the picture (default: on for overlay and side-by-side)")
    p.add_argument("--resize", choices=list(ResizePolicy), default=ResizePolicy.STRETCH.value)
    p.add_argument("--speed", choices=list(Speed), default=Speed.ACCURATE.value, help="video only")
    p.add_argument("--temporal", choices=("on", "off"), default="on",
                   help="video only: fuse each frame with the flow-warped previous ones (on, default) "
                        "or segment every frame on its own (off)")
    p.add_argument("--max-frames", type=int, help="video only: process only the first N frames")
    p.add_argument("--threads", type=int, help="model threads (default: all cores)")
    p.add_argument("--labels-out", metavar="FILE",
                   help="class ids at the input's size, by suffix: .png (image: 8-bit ids), .npz (video: uint8 "
                        "'labels' [frames,h,w]), .zip (one 8-bit PNG per frame + labels.json), .json (COCO RLE)")
    p.add_argument("--timeline-out", metavar="FILE.csv",
                   help="video only: each frame's class shares as CSV (time, frame, one column per class)")
    p.add_argument("--legend", action="store_true", help="print the classes present with their pixel share")
    batch.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if batch.is_batch(args):
            return batch.main(args)
        batch.refuse_batch_flags(args)
        args.input = args.input[0]
        return _run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except OSError as exc:  # an output that cannot be written (folder missing, disk full, ...)
        if is_disk_full(exc):
            print(f"error: the disk is full (no space left on device) while writing {args.output}; "
                  "nothing was kept.", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except KeyboardInterrupt:
        print("error: interrupted; no output was kept.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from .effects import EffectOptions
    from .exports import check_labels_path
    from .pipeline import VideoOptions, segment_image, segment_video, sniff_kind
    from .segmenter import Segmenter, SegmenterOptions

    if not 0.0 <= args.alpha <= 1.0:
        raise InputError("--alpha must be between 0 and 1.")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError("--max-frames must be at least 1.")
    given = {"blur": args.blur, "background": args.background, "feather": args.feather}
    effect = EffectOptions(**{k: v for k, v in given.items() if v is not None})  # checked (image read) here
    src, out = Path(args.input), Path(args.output)
    kind = sniff_kind(src)
    if kind == "video" and out.suffix.lower() not in (".mp4", ".m4v", ".webm"):
        raise InputError(f"{src.name} is a video: the output must be an .mp4 or .webm file, not {out.name!r}.")
    if kind == "image" and out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        raise InputError(f"{src.name} is an image: the output must be .png, .jpg, .bmp or .webp, not {out.name!r}.")
    if kind == "image" and args.mode == Mode.REMOVE_BACKGROUND and out.suffix.lower() not in (".png", ".webp"):
        raise InputError(f"remove-background makes a transparent picture: the output must be .png or .webp, "
                         f"not {out.name!r}.")
    if args.labels_out:
        check_labels_path(args.labels_out, kind)
    if args.timeline_out and (kind != "video" or Path(args.timeline_out).suffix.lower() != ".csv"):
        raise InputError("--timeline-out is for a video, and must be a .csv file." if kind == "video"
                         else f"--timeline-out is for videos; {src.name} is an image.")
    if kind == "video":
        from .video import probe

        probe(src)  # bad input is reported before the model loads
    seg = Segmenter(SegmenterOptions(model=args.model, labels_file=args.labels, threads=args.threads, resize=args.resize))
    classes = None
    if args.classes:
        try:
            classes = draw.class_ids(args.classes, seg.labels)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    dopts = DrawOptions(mode=args.mode, alpha=args.alpha, classes=classes,
                        outlines=args.outlines, effect=effect, matte=args.matte)
    if kind == "image":
        from .images import MAX_PIXELS, displayed_size

        res = segment_image(seg, src, dopts, labels_out=args.labels_out)
        try:
            _save_image(res.rendered, out)
        except BaseException:
            if args.labels_out:  # the picture could not be written: take its labels back
                Path(args.labels_out).unlink(missing_ok=True)
            raise
        legend = res.legend
        h, w = res.original.shape[:2]
        size = displayed_size(src)
        note = f" (downscaled from {size[0]}x{size[1]}: over {MAX_PIXELS:,} pixels)" if size and size != (w, h) else ""
        print(f"{src.name}: {w}x{h}{note} segmented with {seg.entry.id} "
              f"in {res.seconds * 1000:.0f} ms -> {out}", file=sys.stderr)
    else:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="frame", desc=src.name, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            res = segment_video(seg, src, out, VideoOptions(draw=dopts, speed=args.speed, temporal=args.temporal == "on",
                                                            max_frames=args.max_frames),
                                progress=progress, labels_out=args.labels_out)
        finally:
            bar.close()
        if args.timeline_out:
            try:
                res.timeline.to_csv(args.timeline_out, seg.labels)
            except BaseException:  # all outputs or none
                for done in (out, args.labels_out):
                    if done:
                        Path(done).unlink(missing_ok=True)
                raise
        legend = res.legend
        print(f"{src.name}: {res.frames} frames, {float(res.info.fps):.3f} fps -> {float(res.output_fps):.3f} fps, "
              f"{res.processing_fps:.1f} frames/s ({res.realtime_factor:.2f}x real time), "
              f"{res.keyframes} model runs, {seg.entry.id}, {args.speed}, temporal {args.temporal} -> {out}",
              file=sys.stderr)
    if args.legend:
        for it in legend:
            print(f"{it.id:3d}  {it.name:<20s} {it.share * 100:6.2f}%  {it.hex}")
    return 0


def _save_image(rgb, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])


if __name__ == "__main__":
    sys.exit(main())
