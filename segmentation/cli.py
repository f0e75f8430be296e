"""Command line: ``python -m segmentation INPUT -o OUTPUT [options]``.

Images and videos are told apart by content. Errors print one line on stderr
and exit with status 2 (bad usage or input, a file that cannot be read or
written, an output that would overwrite an input), 1 (a model that cannot be
loaded or fetched) or 130 (interrupted), never a traceback; a failed run leaves
nothing at OUTPUT. The options, help and listings are in ``cli_args``, the
checks of what the options mean together in ``cli_checks``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import batch, cli_args, config, draw
from . import cli_checks as checks
from .cli_args import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_MODEL, build_parser  # noqa: F401 (re-exported)
from .draw import DrawOptions, Mode
from .errors import InputError, SegmentationError
from .files import atomic_path, describe_os_error, is_disk_full, refuse_overwriting_input


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    writing: set[str] = set()
    try:
        try:
            config.check(config.LIBRARY)  # a bad SEGMENTATION_* value: one sentence, before any work
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if args.list_models:
            return cli_args.list_models()
        if args.list_classes is not None:
            return cli_args.list_classes(args.list_classes or args.model, args.labels)
        if not args.input:
            raise InputError("give an input file (or several, a folder, a glob pattern) and -o OUTPUT; "
                             "see --help.")
        if not args.output:
            raise InputError("-o OUTPUT is needed: the file (or, for several inputs, the folder) to write.")
        writing = {p for p in (args.output, args.labels_out, args.timeline_out) if p}
        checks.check_numbers(args)
        checks.check_model_name(args.model, args.labels)
        checks.check_mode_options(args)
        if batch.is_batch(args):
            checks.refuse_file_output_for_batch(args)
            checks.fill_defaults(args)
            return batch.main(args)
        batch.refuse_batch_flags(args, "video")  # --workers/--ray: checked again once the input's kind is known
        args.input = args.input[0]
        return _run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except OSError as exc:  # a file that cannot be read or written (folder missing, permission, disk full, ...)
        if is_disk_full(exc):
            print(f"error: the disk is full (no space left on device) while writing {args.output}; "
                  "nothing was kept.", file=sys.stderr)
            return EXIT_MODEL
        print(f"error: {describe_os_error(exc, writing)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; no output was kept.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from .effects import EffectOptions
    from .exports import check_labels_path
    from .pipeline import VideoOptions, segment_image, segment_video, sniff_kind
    from .segmenter import Segmenter, SegmenterOptions

    src, out = Path(args.input), Path(args.output)
    outputs = {"-o": out, "--labels-out": args.labels_out, "--timeline-out": args.timeline_out}
    for read in (src, args.background, args.labels, args.model):  # every file the command reads
        if read and (read is src or Path(read).expanduser().is_file()):
            refuse_overwriting_input(read, outputs)
    kind = sniff_kind(src)
    batch.refuse_batch_flags(args, kind)
    checks.check_kind_options(args, kind, src)
    checks.fill_defaults(args)
    given = {"blur": args.blur, "background": args.background, "feather": args.feather}
    effect = EffectOptions(**{k: v for k, v in given.items() if v is not None})  # checked (image read) here
    if kind == "video" and out.suffix.lower() not in (".mp4", ".m4v", ".webm"):
        raise InputError(f"{src.name} is a video: the output must be an .mp4 or .webm file, not {out.name!r}.")
    if kind == "image" and out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        raise InputError(f"{src.name} is an image: the output must be .png, .jpg, .bmp or .webp, not {out.name!r}.")
    if kind == "image" and args.mode == Mode.REMOVE_BACKGROUND and out.suffix.lower() not in (".png", ".webp"):
        raise InputError(f"remove-background makes a transparent picture: the output must be .png or .webp, "
                         f"not {out.name!r}.")
    if args.labels_out:
        check_labels_path(args.labels_out, kind)
    if args.timeline_out and Path(args.timeline_out).suffix.lower() != ".csv":
        raise InputError("--timeline-out must be a .csv file.")
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
                        outlines=args.outlines, effect=effect, matte=args.matte or "auto")
    if kind == "image":
        from .images import default_max_pixels, displayed_size

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
        note = f" (downscaled from {size[0]}x{size[1]}: over {default_max_pixels():,} pixels)" if size and size != (w, h) else ""
        print(f"{src.name}: {w}x{h}{note} segmented with {seg.entry.id} "
              f"in {res.seconds * 1000:.0f} ms -> {out}", file=sys.stderr)
    else:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="frame", desc=src.name, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        vopts = VideoOptions(draw=dopts, speed=args.speed, temporal=args.temporal == "on", max_frames=args.max_frames)
        try:
            if (args.workers or 1) > 1 or args.ray is not None:  # one video on several processes or Ray
                from .chunks import segment_video_chunks

                ray = None if args.ray is None else (args.ray or os.environ.get("RAY_ADDRESS") or "auto")
                res = segment_video_chunks(seg, src, out, vopts, workers=args.workers or 2, ray=ray,
                                           threads=args.threads, progress=progress, labels_out=args.labels_out)
            else:
                res = segment_video(seg, src, out, vopts, progress=progress, labels_out=args.labels_out)
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
        if res.warning:
            print(f"warning: {src.name}: {res.warning}", file=sys.stderr)
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
