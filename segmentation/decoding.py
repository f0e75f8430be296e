"""Decoding a video with PyAV (FFmpeg): opening the input and reading its frames.

* ``open_input``: the container, or one ``InputError`` sentence for a file FFmpeg cannot read.
* ``read_frames`` yields every decoded frame as RGB with its own timestamp and
  duration, rotated upright (the display matrix is applied the way FFmpeg's
  autorotate does: ``rotation`` is counter-clockwise, so 90 means the coded
  picture is turned a quarter turn to the left for display). It is built from
  ``_Packets`` (the stream's frames, skipping what the decoder rejects) and
  ``_Clock`` (index, repaired timestamp, upright pixels of each frame).

``segmentation.video`` re-exports what is public here (``video.read_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from .errors import InputError

MAX_BAD_PACKETS = 50  # consecutive undecodable video packets before the file is called damaged


def open_input(path: str | Path) -> av.container.InputContainer:
    """The file opened for reading by FFmpeg; a missing, empty or unreadable one is an ``InputError``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"File not found: {path}")
    if p.is_dir():
        raise InputError(f"{path} is a folder, not a video file.")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    try:
        return av.open(str(p), "r", timeout=30.0)
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{p.name} is not a video file FFmpeg can read, or it is damaged or incomplete "
                         f"({ffmpeg_reason(exc)}).") from None


def ffmpeg_reason(exc: Exception) -> str:
    """What an FFmpeg error says, for a sentence."""
    return getattr(exc, "strerror", None) or str(exc)


def display_rotation(frame) -> int:
    """The frame's display rotation snapped to 0/90/180/270 (counter-clockwise)."""
    return int(round((frame.rotation or 0) / 90.0)) * 90 % 360


def stream_rate(v) -> Fraction:
    """The stream's frame rate: average, guessed or base, the first that is known; else 25."""
    for r in (v.average_rate, v.guessed_rate, v.base_rate):
        if r and r > 0:
            return Fraction(r)
    return Fraction(25)


@dataclass
class DecodedFrame:
    """One decoded frame: upright RGB pixels, timestamp and duration (``time_base`` units)."""

    index: int
    rgb: np.ndarray
    pts: int
    time_base: Fraction
    duration: int | None = None  # None when the container does not say


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    # np.rot90 turns counter-clockwise, the direction of FFmpeg's display rotation.
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def repair_pts(pts: int | None, last_pts: int | None, last_duration: int | None, step: int) -> int:
    """A timestamp that moves forward: ``pts`` itself if it does; else (none, as in raw streams,
    or one going back) one frame after the last -- the last frame's own duration if it said,
    else ``step``, a frame at the stream's rate; 0 for a first frame without one."""
    if pts is None or (last_pts is not None and pts <= last_pts):
        return 0 if last_pts is None else last_pts + (last_duration or step)
    return int(pts)


@dataclass
class ReadState:
    """What ``read_frames`` met: frames decoded, and whether the file broke off before its end
    (the container failed, or a GIF lacks its end marker)."""

    frames: int = 0
    broken: bool = False

    def shortfall(self, expected: int, max_frames: int | None = None) -> str:
        """"decoded 9 of 35 frames; the file is truncated" when fewer frames came than the file
        holds (``expected``: the header's count, 0 if unknown) and no ``max_frames`` cut them; else ""."""
        if max_frames is not None and self.frames >= max_frames:
            return ""
        if expected and self.frames < expected:
            why = "truncated" if self.broken else "truncated or damaged"
            return f"decoded {self.frames} of {expected} frames; the file is {why}."
        if self.broken:
            return f"decoded {self.frames} frames; the file is truncated (it breaks off before its end)."
        return ""


def _gif_cut(path: str | Path) -> bool:
    """A GIF whose last byte is not the trailer (0x3B): cut off (FFmpeg reads it without a word)."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GIF8":
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\x3b"
    except OSError:
        return False


def read_frames(path: str | Path, max_frames: int | None = None,
                state: ReadState | None = None, seek: tuple[int, int] | None = None) -> Iterator[DecodedFrame]:
    """Decode every frame (upright RGB, own pts), in presentation order.

    ``seek`` = (pts, index): start at the source keyframe with that pts, which is frame
    number ``index`` of the whole video (frames decoded after the seek that come before it are
    dropped); ``max_frames`` is then the index to stop before (``segmentation.chunks``).

    Timestamps are strictly increasing: a frame without one (or one that does
    not move forward) gets the previous one plus a frame at the stream's rate.
    A packet the decoder rejects is skipped, as FFmpeg does; a file that
    cannot be read on (truncated, damaged container) ends where it breaks,
    with the frames decoded so far. Nothing decodable at all: ``InputError``.
    """
    name = Path(path).name
    c = open_input(path)
    try:
        if not c.streams.video:
            raise InputError(f"{name} has no video stream.")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        if seek is not None:
            c.seek(int(seek[0]), stream=v, backward=True, any_frame=False)
        clock = _Clock(v, 0 if seek is None else int(seek[1]))
        packets = _Packets(c, v)
        for frame in packets if max_frames is None or clock.index < max_frames else ():
            if seek is not None and clock.last_pts is None and _before_seek(frame, seek, name):
                continue
            item = clock.stamp(frame)
            if state is not None:
                state.frames = clock.index
            yield item
            if max_frames is not None and clock.index >= max_frames:
                break
        if state is not None:
            state.broken = packets.error is not None or _gif_cut(path)
        if clock.index == 0:
            why = f" ({ffmpeg_reason(packets.error)})" if packets.error is not None else ""
            raise InputError(f"{name} has no decodable video frames{why}.")
    finally:
        c.close()


class _Packets:
    """The video stream's frames, decoded packet by packet. A packet the decoder rejects is skipped
    (``MAX_BAD_PACKETS`` in a row: the file is damaged, the frames end); a container that breaks off
    ends them after the decoder's last frames. ``error``: why they ended early, else None."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[av.VideoFrame]:
        packets = self.container.demux(self.stream)
        bad = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the container itself breaks off
                self.error = exc
                packet = None  # flush what the decoder holds
            try:
                frames = self.stream.codec_context.decode(packet)
                bad = 0
            except av.FFmpegError as exc:
                bad += 1
                if bad >= MAX_BAD_PACKETS:
                    self.error = exc
                    return
                continue
            yield from frames
            if packet is None:
                return


class _Clock:
    """Numbers and stamps the frames read: index (from ``index``), a timestamp that moves forward
    (``repair_pts``), the frame's own duration, and its pixels upright."""

    def __init__(self, stream, index: int = 0):
        self.time_base = Fraction(stream.time_base or Fraction(1, 90000))
        self.step = max(1, round(1 / (stream_rate(stream) * self.time_base)))
        self.index = index
        self.last_pts: int | None = None
        self.last_duration: int | None = None

    def stamp(self, frame) -> DecodedFrame:
        """The next ``DecodedFrame`` from a decoded PyAV frame."""
        pts = repair_pts(frame.pts if frame.pts is not None else frame.dts, self.last_pts, self.last_duration,
                         self.step)
        duration = int(frame.duration) if frame.duration and frame.duration > 0 else None
        self.last_pts, self.last_duration = pts, duration
        rgb = _upright(frame.to_ndarray(format="rgb24"), display_rotation(frame))
        item = DecodedFrame(self.index, rgb, int(pts), self.time_base, duration)
        self.index += 1
        return item


def _before_seek(frame, seek: tuple[int, int], name: str) -> bool:
    """True for a frame decoded after a seek that comes before the keyframe sought (an open GOP's
    leading frames); a first frame past it means the seek landed elsewhere (``InputError``)."""
    t = frame.pts if frame.pts is not None else frame.dts
    if t is None or t < seek[0]:
        return True
    if t != seek[0]:
        raise InputError(f"{name}: seeking to frame {seek[1]} landed elsewhere.")
    return False
