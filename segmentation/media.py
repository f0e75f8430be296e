"""What kind of media a file is, told by its content: one answer for the CLI, batches and the app.

A file's name can lie (a photo saved as ``.mp4``, a clip without a suffix),
so :func:`sniff_kind` reads the file: Pillow decides for photos, and
anything Pillow cannot open (or a GIF, an animated WebP or APNG) is a video,
which the decoder then accepts or refuses with its own sentence.
:func:`looks_like_media` is the cheaper question a batch asks of every file
it meets in a folder: is it worth sniffing at all?
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path

from .errors import InputError, SegmentationError
from .images import IMAGE_SUFFIXES


class MediaKind(StrEnum):
    """A video (decoded frame by frame) or a still image; the values are what manifests record."""

    VIDEO = "video"
    IMAGE = "image"


# Suffixes of the videos a batch takes from a folder or glob (the decoder reads many more; the
# outputs it writes are ``video.OUTPUT_VIDEO_SUFFIXES``).
INPUT_VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv", ".flv",
    ".3gp", ".ogv", ".gif", ".h264", ".264", ".hevc", ".y4m"})
# Container signatures (offset, bytes): a folder's file with none of these and no media suffix
# is not a video; Pillow decides for photos.
_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"OggS"), (0, b"FLV"), (0, b"GIF8"),
          (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"), (0, b"\x00\x00\x00\x01"),
          (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"), (0, b"YUV4MPEG2"))
_TS_PACKET = 188  # MPEG transport stream: a sync byte 0x47 every 188 bytes


def sniff_kind(path: str | Path) -> MediaKind:
    """Image or video, decided from the file's content, not its name; a missing or empty file is
    an InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"File not found: {path}")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    with open(p, "rb") as f:
        head = f.read(64)
    if head.startswith(b"GIF8"):
        return MediaKind.VIDEO  # animated or not, a GIF is decoded frame by frame
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # load_image applies the limits
            with Image.open(p) as im:
                if getattr(im, "n_frames", 1) > 1 and im.format in ("WEBP", "PNG"):
                    return MediaKind.VIDEO
                return MediaKind.IMAGE
    except Image.DecompressionBombError:
        return MediaKind.IMAGE  # far too many pixels: load_image refuses it with the numbers
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return MediaKind.VIDEO


def looks_like_media(path: str | Path) -> bool:
    """For files met in a folder or glob: a media suffix, a container signature or a Pillow image.
    A notes.txt beside the clips is left alone instead of failing as a broken video."""
    path = Path(path)
    if path.suffix.lower() in INPUT_VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(200)
        if any(head[o:o + len(m)] == m for o, m in _MAGIC):
            return True
        if len(head) > _TS_PACKET and head[0] == head[_TS_PACKET] == 0x47:
            return True
        return sniff_kind(path) == MediaKind.IMAGE
    except (OSError, SegmentationError):
        return False
