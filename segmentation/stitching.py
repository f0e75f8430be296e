"""Stitching the chunks of one video (``segmentation.chunks``): video by stream copy, audio once
from the source, labels frame by frame into the asked format.

* Video: each chunk is an H.264 MP4 that starts with an IDR frame (a fresh
  encoder) and has the same encoder settings, so its packets can follow the
  previous chunk's as they are. Every packet keeps its own pts and dts, moved
  by the chunk's start on the source clock. With B-frames a chunk's first
  dts lies below its first pts by the encoder's delay; the previous chunk's
  last dts lies below *its* last pts by the same delay, so decode times stay
  increasing across the seam (checked; a stitch that would break this is
  refused rather than written).
* Audio: the source's first audio track, muxed by ``audio.open_audio``
  (what ``VideoSink`` uses: copied or re-encoded, cut to the video's span).
* Labels: each chunk keeps its class maps as the .npz writer does, one
  ``zlib`` blob per frame (``exports.LabelsPartWriter``); they are read back
  one frame at a time into the ``exports`` writer of ``labels_out``, with
  each frame's time from the chunk's timeline. An .npz takes the blobs as
  they are (no work per frame); other formats decode each frame.
"""

from __future__ import annotations

import zipfile
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

from . import video
from .audio import open_audio
from .errors import SegmentationError
from .exports import LabelsNpzWriter, Timeline, labels_writer, read_part
from .files import AtomicFile


class StitchError(SegmentationError):
    """The chunks cannot be joined into one valid file (this is a bug, not bad input)."""


def stitch_video(parts: Sequence[str | Path], offsets: Sequence[int], time_base: Fraction, src: str | Path,
                 dst: str | Path, origin_s: float, end_s: float) -> Path:
    """``parts`` (MP4s, each starting at 0) one after another into ``dst``, part ``i`` moved by
    ``offsets[i]`` (``time_base`` units, the source's); the source's audio from ``origin_s`` (s,
    source clock) for ``end_s`` seconds. Written atomically."""
    fmt = video.container_for(dst)
    out = AtomicFile(dst)
    audio = None
    try:
        c = av.open(str(out.tmp), "w", format=fmt.muxer, container_options=dict(fmt.muxer_options))
        try:
            copy = _PacketCopy(c, parts[0], time_base)
            audio = _source_audio(src, c, fmt, origin_s)
            for part, offset in zip(parts, offsets):
                copy.part(part, offset, audio)
            if audio is not None:
                audio.pump(end_s, final=True)
        finally:
            c.close()
            if audio is not None:
                audio.close()
        out.commit()
    except BaseException:
        out.discard()
        raise
    return Path(dst)


def _source_audio(src: str | Path, out, fmt: video.ContainerFormat, origin_s: float):
    """The source's first audio track muxed into ``out`` from ``origin_s`` (s); None without one."""
    try:
        audio = open_audio(src, out, fmt)
    except (LookupError, av.FFmpegError):
        return None
    audio.origin = origin_s
    return audio


class _PacketCopy:
    """The chunks' video packets into one output stream (a copy of the first chunk's), each chunk
    moved by its start on the source clock, with decode times increasing across the seams."""

    def __init__(self, out, first_part: str | Path, time_base: Fraction):
        self.out, self.time_base = out, time_base
        with av.open(str(first_part)) as first:
            tv = first.streams.video[0]
            self.stream = out.add_stream_from_template(tv)
            self.stream.time_base = tv.time_base
            self.extradata = tv.codec_context.extradata
        self.last_dts: int | None = None

    def part(self, part: str | Path, offset: int, audio) -> None:
        """Every packet of ``part``, moved by ``offset`` (source ``time_base`` units); the audio
        muxed up to each packet's time."""
        with av.open(str(part)) as ic:
            iv = ic.streams.video[0]
            if iv.codec_context.extradata != self.extradata:
                raise StitchError(f"chunk {Path(part).name} was encoded with other settings.")
            shift = Fraction(offset) * self.time_base / Fraction(iv.time_base)
            if shift.denominator != 1:
                raise StitchError(f"chunk {Path(part).name} starts between two ticks of its clock.")
            for p in ic.demux(iv):
                if p.pts is None and p.dts is None:
                    continue
                self._move(p, int(shift), part)
                t = float(p.pts * iv.time_base)
                p.stream = self.stream
                self.out.mux(p)
                if audio is not None:
                    audio.pump(t)

    def _move(self, p, shift: int, part: str | Path) -> None:
        p.pts += shift
        p.dts = (p.dts if p.dts is not None else p.pts - shift) + shift
        if self.last_dts is not None and p.dts <= self.last_dts:
            # a variable frame rate with B-frames: the encoder's delay before this chunk's first
            # frame reaches back past the last decode time. Decode times only order the packets:
            # one tick after the last (the clock has >= 10,000 ticks per second) keeps the order
            # and every pts.
            p.dts = self.last_dts + 1
            if p.dts > p.pts:
                raise StitchError(f"decode times go back at the start of {Path(part).name}.")
        self.last_dts = p.dts


def npz_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The ``labels`` frames of an ``exports`` .npz, one at a time (streamed from the zip)."""
    with zipfile.ZipFile(path) as z, z.open("labels.npy") as f:
        np.lib.format.read_magic(f)  # exports.LabelsNpzWriter writes version 1.0 headers
        shape, _, _ = np.lib.format.read_array_header_1_0(f)
        size = int(np.prod(shape[1:]))
        for _ in range(shape[0]):
            yield np.frombuffer(f.read(size), dtype=np.uint8).reshape(shape[1:])


def merge_labels(parts: Sequence[str | Path], dst: str | Path, segmenter, fps: float,
                 timelines: Sequence[Timeline]) -> Path:
    """The chunks' class maps (``exports.LabelsPartWriter`` files), in order, as one ``labels_out``
    file (any ``exports`` format): an .npz takes each frame's compressed bytes as they are."""
    from .pipeline import export_info

    writer = None
    try:
        for part, tl in zip(parts, timelines):
            h, w, blobs = read_part(part)
            if writer is None:
                writer = labels_writer(dst, w, h, export_info(segmenter, fps))
            for blob, t in zip(blobs, tl.times):
                if isinstance(writer, LabelsNpzWriter):
                    writer.add_compressed(blob, t)
                else:
                    writer.add(np.frombuffer(zlib.decompress(blob), dtype=np.uint8).reshape(h, w), t)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return Path(dst)
