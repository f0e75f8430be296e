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
import time
from pathlib import Path

from . import cli_args, config
from . import cli_checks as checks
from .batch import REPORT_NAME, BatchOptions, Outcome, Status, run_batch
from .cli_args import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_MODEL, build_parser  # noqa: F401 (re-exported)
from .errors import InputError, SegmentationError
from .files import describe_os_error, is_disk_full, refuse_overwriting_input
from .media import MediaKind, sniff_kind
from .pipeline import VideoOptions
from .segmenter import Segmenter, SegmenterOptions
from .single import FileResult, Split, check_outputs, segment_file


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
        if checks.is_batch(args):
            checks.refuse_file_outputs_for_batch(args)
            return _run_batch(args, cli_args.options_from_args(args))
        checks.refuse_batch_flags(args, MediaKind.VIDEO)  # --workers/--ray: checked again once the kind is known
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
    """One input file into one output (and its labels and timeline)."""
    src, out = Path(args.input), Path(args.output)
    kind, options = _check_single(args, src, out)
    if kind == MediaKind.VIDEO:
        from .video import probe

        probe(src)  # bad input is reported before the model loads
    seg = Segmenter(SegmenterOptions(model=options.model, labels_file=options.labels_file, threads=args.threads,
                                     resize=options.resize))
    video = options.video_for(seg.labels)
    if kind == MediaKind.IMAGE:
        res = segment_file(seg, src, out, video, kind=kind, labels_out=args.labels_out)
        _report_image(res, src, seg.entry.id)
    else:
        res = _segment_video(args, seg, src, out, video)
        _report_video(args, res, src, seg.entry.id)
    if args.legend:
        for it in res.result.legend:
            print(f"{it.id:3d}  {it.name:<20s} {it.share * 100:6.2f}%  {it.hex}")
    return 0


def _check_single(args: argparse.Namespace, src: Path, out: Path) -> tuple[MediaKind, BatchOptions]:
    """Everything about one input that can be refused before the model loads; its kind and options."""
    outputs = {"-o": out, "--labels-out": args.labels_out, "--timeline-out": args.timeline_out}
    for read in (src, args.background, args.labels, args.model):  # every file the command reads
        if read and (read is src or Path(read).expanduser().is_file()):
            refuse_overwriting_input(read, outputs)
    kind = sniff_kind(src)
    checks.refuse_batch_flags(args, kind)
    checks.check_kind_options(args, kind, src)
    checks.fill_defaults(args)
    options = cli_args.options_from_args(args)  # checked (a background image read) here
    check_outputs(src, kind, out, options.video.draw.mode, args.labels_out, args.timeline_out)
    return kind, options


def _segment_video(args: argparse.Namespace, seg: Segmenter, src: Path, out: Path, video: VideoOptions) -> FileResult:
    """The video with a progress bar, in this process or cut into chunks (--workers, --ray)."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="frame", desc=src.name, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    split = None
    if (args.workers or 1) > 1 or args.ray is not None:  # one video on several processes or Ray
        split = Split(workers=args.workers or 2, ray=_ray_address(args), threads=args.threads)
    try:
        return segment_file(seg, src, out, video, kind=MediaKind.VIDEO, labels_out=args.labels_out,
                            timeline_out=args.timeline_out, progress=progress, split=split)
    finally:
        bar.close()


def _report_image(res: FileResult, src: Path, model_id: str) -> None:
    from .images import default_max_pixels, displayed_size

    h, w = res.result.original.shape[:2]
    size = displayed_size(src)
    note = ""
    if size and size != (w, h):
        note = f" (downscaled from {size[0]}x{size[1]}: over {default_max_pixels():,} pixels)"
    print(f"{src.name}: {w}x{h}{note} segmented with {model_id} "
          f"in {res.result.seconds * 1000:.0f} ms -> {res.output}", file=sys.stderr)


def _report_video(args: argparse.Namespace, res: FileResult, src: Path, model_id: str) -> None:
    v = res.result
    if v.warning:
        print(f"warning: {src.name}: {v.warning}", file=sys.stderr)
    print(f"{src.name}: {v.frames} frames, {float(v.info.fps):.3f} fps -> {float(v.output_fps):.3f} fps, "
          f"{v.processing_fps:.1f} frames/s ({v.realtime_factor:.2f}x real time), "
          f"{v.keyframes} model runs, {model_id}, {args.speed}, temporal {args.temporal} -> {res.output}",
          file=sys.stderr)


def _ray_address(args: argparse.Namespace) -> str | None:
    """--ray's cluster: the one named, else $RAY_ADDRESS, else "auto"; None without --ray."""
    return None if args.ray is None else (args.ray or os.environ.get("RAY_ADDRESS") or "auto")


class _Progress:
    """One tqdm bar over files (files/s, ETA) with frames/s and the latest file; failures printed above it."""

    def __init__(self):
        self.bar = None
        self.frames = 0
        self.t0 = time.perf_counter()

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", desc="batch", disable=None, file=sys.stderr)
        self.t0 = time.perf_counter()

    def outcome(self, o: Outcome) -> None:
        if o.status == Status.FAILED:
            self.bar.write(f"failed: {o.input}: {o.reason}", file=sys.stderr)
        if o.warning:
            self.bar.write(f"warning: {o.input}: {o.warning}", file=sys.stderr)
        self.frames += o.frames if o.status == Status.DONE else 0
        fps = self.frames / max(1e-9, time.perf_counter() - self.t0)
        self.bar.set_postfix_str(f"{fps:.1f} frames/s, {Path(o.input).name}: {o.status}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_batch(args: argparse.Namespace, options: BatchOptions) -> int:
    """``python -m segmentation INPUT... -o OUT_DIR [options]``: exit 0 when nothing failed, 1 otherwise,
    2 when the command itself is refused (bad option, missing input for Ray, output not a folder)."""
    progress = _Progress()
    try:
        report = run_batch(args.input, args.output, options, workers=args.workers, threads=args.threads,
                           overwrite=args.overwrite, ray=_ray_address(args), on_start=progress.start,
                           on_outcome=progress.outcome)
    finally:
        progress.close()
    print(f"batch: {report.summary()} -> {report.out_dir / REPORT_NAME}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
