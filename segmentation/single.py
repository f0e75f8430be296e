"""One input file in, its outputs out: the one way the CLI and a batch worker segment a file.

:func:`segment_file` takes the input's kind (sniffed once, by content), checks
that the output names suit it, then segments and saves a photo or a video
(on several processes or Ray when asked, see ``chunks``) with its class ids
(``labels_out``) and, for a video, its per-frame class shares
(``timeline_out``). All outputs or none: when one cannot be written, the
others already written are taken back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .draw import Mode
from .errors import InputError
from .exports import check_labels_path
from .files import atomic_path
from .media import MediaKind, sniff_kind
from .pipeline import ImageResult, Progress, VideoOptions, VideoResult, segment_image, segment_video
from .segmenter import Segmenter
from .video import OUTPUT_VIDEO_SUFFIXES

OUTPUT_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ALPHA_IMAGE_SUFFIXES = (".png", ".webp")  # remove-background: a transparent picture


@dataclass(frozen=True)
class Split:
    """One video cut into chunks run by ``workers`` local processes, or Ray tasks on the cluster at
    ``ray`` ("local": a Ray started here); ``threads``: model threads per process or task."""

    workers: int = 2
    ray: str | None = None
    threads: int | None = None


@dataclass
class FileResult:
    """What :func:`segment_file` made: the kind it took the input for and the pipeline's result."""

    kind: MediaKind
    output: Path
    result: ImageResult | VideoResult

    @property
    def frames(self) -> int:
        return self.result.frames if isinstance(self.result, VideoResult) else 1

    @property
    def warning(self) -> str:
        """A video that ended before its own frame count: "decoded 9 of 35 frames; ..." (else empty)."""
        return self.result.warning if isinstance(self.result, VideoResult) else ""


def check_outputs(src: str | Path, kind: MediaKind, dst: str | Path, mode: Mode = Mode.OVERLAY,
                  labels_out: str | Path | None = None, timeline_out: str | Path | None = None) -> None:
    """Output names that suit a ``kind`` input, before any work; else an InputError naming them."""
    name, out = Path(src).name, Path(dst)
    suffix = out.suffix.lower()
    if kind == MediaKind.VIDEO and suffix not in OUTPUT_VIDEO_SUFFIXES:
        raise InputError(f"{name} is a video: the output must be an .mp4 or .webm file, not {out.name!r}.")
    if kind == MediaKind.IMAGE and suffix not in OUTPUT_IMAGE_SUFFIXES:
        raise InputError(f"{name} is an image: the output must be .png, .jpg, .bmp or .webp, not {out.name!r}.")
    if kind == MediaKind.IMAGE and mode is Mode.REMOVE_BACKGROUND and suffix not in ALPHA_IMAGE_SUFFIXES:
        raise InputError(f"remove-background makes a transparent picture: the output must be .png or .webp, "
                         f"not {out.name!r}.")
    if labels_out:
        check_labels_path(labels_out, kind)
    if timeline_out and kind == MediaKind.IMAGE:
        raise InputError(f"--timeline-out is for videos; {name} is an image.")
    if timeline_out and Path(timeline_out).suffix.lower() != ".csv":
        raise InputError("--timeline-out must be a .csv file.")


def save_image(rgb, path: str | Path) -> None:
    """Write an RGB(A) array as the picture format ``path``'s suffix names, atomically."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])


def segment_file(segmenter: Segmenter, src: str | Path, dst: str | Path, options: VideoOptions = VideoOptions(),
                 *, kind: MediaKind | None = None, labels_out: str | Path | None = None,
                 timeline_out: str | Path | None = None, progress: Progress | None = None,
                 split: Split | None = None) -> FileResult:
    """Segment the photo or video ``src`` into ``dst`` (``options.draw`` draws both; the rest of
    ``options`` is for videos), with its class ids at ``labels_out`` and, for a video, its
    class shares per frame at ``timeline_out`` (CSV). ``kind``: the input's, when the caller
    has sniffed it already. ``split``: one video on several processes or Ray (``chunks``)."""
    kind = MediaKind(kind) if kind else sniff_kind(src)
    check_outputs(src, kind, dst, options.draw.mode, labels_out, timeline_out)
    if kind == MediaKind.IMAGE:
        res = segment_image(segmenter, src, options.draw, labels_out=labels_out)
        with _all_or_none(labels_out):
            save_image(res.rendered, dst)
        return FileResult(kind, Path(dst), res)
    if split is None:
        res = segment_video(segmenter, src, dst, options, progress=progress, labels_out=labels_out)
    else:
        from .chunks import segment_video_chunks

        res = segment_video_chunks(segmenter, src, dst, options, workers=split.workers, ray=split.ray,
                                   threads=split.threads, progress=progress, labels_out=labels_out)
    if timeline_out:
        with _all_or_none(dst, labels_out):
            res.timeline.to_csv(timeline_out, segmenter.labels)
    return FileResult(kind, Path(dst), res)


@contextlib.contextmanager
def _all_or_none(*written: str | Path | None) -> Iterator[None]:
    """Around the last output's writing: if it fails, the outputs already written are removed."""
    try:
        yield
    except BaseException:
        for p in filter(None, written):
            Path(p).unlink(missing_ok=True)
        raise
