"""Video in and out with PyAV (FFmpeg): probing, decoding frames, writing H.264.

* ``probe`` -> ``VideoInfo`` (size as displayed, exact fractional frame rate,
  frame count, duration, rotation, audio).
* ``read_frames`` yields every decoded frame as RGB with its own timestamp,
  rotated upright, plus the audio packets demuxed before it (so the writer can
  interleave them without a second pass or a buffer of the whole track).
* ``VideoSink`` is a context manager that encodes RGB frames to H.264
  yuv420p in MP4 with the index at the front (faststart), keeps each frame's
  timestamp (so fractional and variable frame rates survive), copies AAC/MP3
  audio or re-encodes anything else to AAC, and pads odd sizes by one
  replicated pixel (no scaling, no distortion). It writes to a temporary file
  and renames it onto the target only when closed cleanly: a failed or
  cancelled job never leaves a half-written video under the output name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from .errors import InputError

COPY_AUDIO_CODECS = {"aac", "mp3"}
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts", ".flv", ".3gp", ".ogv", ".wmv"}


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, as a viewer sees it (width/height after rotation)."""

    width: int
    height: int
    fps: Fraction
    frames: int  # from the container; may be 0 when unknown
    duration: float  # seconds
    rotation: int  # degrees counter-clockwise the frames are turned to display
    codec: str
    time_base: Fraction
    audio_codec: str | None = None
    variable_fps: bool = False

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _open_input(path: str | Path) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise InputError(f"File not found: {path}")
    if p.stat().st_size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    try:
        return av.open(str(p), "r", timeout=30.0)
    except av.FFmpegError as exc:
        raise InputError(f"{p.name} is not a video file FFmpeg can read ({_reason(exc)}).") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def probe(path: str | Path) -> VideoInfo:
    """Read a video's facts without decoding it all (one frame is decoded for rotation)."""
    with _open_input(path) as c:
        if not c.streams.video:
            kind = "an audio-only file" if c.streams.audio else "a file without a video stream"
            raise InputError(f"{Path(path).name} is {kind}; give a video or an image.")
        v = c.streams.video[0]
        fps = v.average_rate or v.guessed_rate or v.base_rate or Fraction(25)
        rotation = 0
        try:
            first = next(c.decode(v))
            rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
        except (StopIteration, av.FFmpegError):
            raise InputError(f"{Path(path).name} has a video stream but no decodable frame.") from None
        w, h = v.codec_context.width, v.codec_context.height
        if rotation in (90, 270):
            w, h = h, w
        duration = float(v.duration * v.time_base) if v.duration else (c.duration or 0) / av.time_base
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        variable = bool(v.base_rate and v.average_rate and abs(float(v.base_rate) - float(v.average_rate)) > 0.01)
        return VideoInfo(w, h, Fraction(fps), int(v.frames or 0), duration, rotation,
                         v.codec_context.name, Fraction(v.time_base or Fraction(1, 90000)), audio, variable)


@dataclass
class DecodedFrame:
    """One decoded frame: RGB pixels, timestamp (in ``time_base`` units), audio before it."""

    index: int
    rgb: np.ndarray
    pts: int
    time_base: Fraction
    audio_packets: list


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def read_frames(path: str | Path, max_frames: int | None = None, with_audio: bool = True) -> Iterator[DecodedFrame]:
    """Decode every frame (upright RGB, own pts). Audio packets ride along for remuxing.

    Frames without a timestamp get one from the frame rate. Damage mid-file
    ends the stream with an ``InputError`` naming the frame it stopped at.
    """
    c = _open_input(path)
    try:
        if not c.streams.video:
            raise InputError(f"{Path(path).name} has no video stream.")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        a = c.streams.audio[0] if (with_audio and c.streams.audio) else None
        tb = Fraction(v.time_base or Fraction(1, 90000))
        fps = Fraction(v.average_rate or v.guessed_rate or 25)
        step = max(1, round(1 / (fps * tb))) if tb else 1
        index, last_pts, pending = 0, None, []
        streams = [v] + ([a] if a is not None else [])

        def emit(frame):
            nonlocal index, last_pts, pending
            pts = frame.pts
            if pts is None or (last_pts is not None and pts <= last_pts):
                pts = (last_pts + step) if last_pts is not None else 0
            last_pts = pts
            rgb = _upright(frame.to_ndarray(format="rgb24"), int(round((frame.rotation or 0) / 90.0)) * 90)
            item = DecodedFrame(index, rgb, pts, tb, pending)
            pending = []
            index += 1
            return item

        try:
            for packet in c.demux(streams):
                if max_frames is not None and index >= max_frames:
                    break
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        pending.append(packet)
                    continue
                for frame in packet.decode():
                    yield emit(frame)
                    if max_frames is not None and index >= max_frames:
                        break
        except av.FFmpegError as exc:
            if index == 0:
                raise InputError(f"{Path(path).name}: cannot decode video ({_reason(exc)}).") from None
            raise InputError(f"{Path(path).name} is damaged: decoding stopped at frame {index} ({_reason(exc)}).") from None
        if index == 0:
            raise InputError(f"{Path(path).name} has no decodable video frames.")
    finally:
        c.close()


class VideoSink:
    """H.264/MP4 writer used as a context manager; see the module docstring.

    ``audio_from``: the input file whose first audio stream is kept.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, time_base: Fraction,
                 audio_from: str | Path | None = None, crf: int = 23, preset: str = "veryfast",
                 threads: int = 0):
        self.path = Path(path)
        self.width, self.height = width + (width & 1), height + (height & 1)
        self._pad = (self.height - height, self.width - width)
        self.fps, self.time_base = Fraction(fps), Fraction(time_base)
        self.crf, self.preset, self.threads = crf, preset, threads
        self.audio_from = audio_from
        self.frames = 0
        self.last_pts: int | None = None
        self._audio_in = None
        self._audio_out = None
        self._audio_mode = None  # "copy" | "aac"
        self._audio_decoder = None
        self._closed = False

    def __enter__(self) -> "VideoSink":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".mp4.part", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._c = av.open(str(self._tmp), "w", format="mp4", container_options={"movflags": "+faststart"})
            s = self._c.add_stream("libx264", rate=self.fps)
            s.width, s.height, s.pix_fmt = self.width, self.height, "yuv420p"
            s.time_base = self.time_base
            s.codec_context.time_base = self.time_base
            s.options = {"crf": str(self.crf), "preset": self.preset}
            if self.threads:
                s.codec_context.thread_count = self.threads
            self._v = s
            if self.audio_from is not None:
                self._setup_audio()
        except BaseException:
            self._abort()
            raise
        return self

    def _setup_audio(self) -> None:
        src = av.open(str(self.audio_from), "r")
        if not src.streams.audio:
            src.close()
            return
        a = src.streams.audio[0]
        self._audio_src = src
        if a.codec_context.name in COPY_AUDIO_CODECS:
            self._audio_out = self._c.add_stream_from_template(a)
            self._audio_mode = "copy"
        else:
            rate = a.codec_context.sample_rate or 48000
            self._audio_out = self._c.add_stream("aac", rate=rate)
            self._audio_out.layout = a.codec_context.layout.name if a.codec_context.layout else "stereo"
            self._audio_mode = "aac"
        self._audio_in = a

    def write_audio(self, packets: list) -> None:
        """Mux audio packets demuxed from ``audio_from`` (copied or re-encoded to AAC)."""
        if self._audio_out is None:
            return
        for p in packets:
            if self._audio_mode == "copy":
                p.stream = self._audio_out
                self._c.mux(p)
            else:
                try:
                    for frame in self._audio_in.codec_context.decode(p):
                        frame.pts = None
                        self._c.mux(self._audio_out.encode(frame))
                except av.FFmpegError:
                    continue  # one damaged audio packet: drop it, keep the video

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one RGB frame at ``pts`` (time_base units); default: next frame at fps."""
        if pts is None:
            pts = self.frames and (self.last_pts or 0) + max(1, round(1 / (self.fps * self.time_base)))
        if self._pad != (0, 0):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int(pts)
        frame.time_base = self.time_base
        self._c.mux(self._v.encode(frame))
        self.frames += 1
        self.last_pts = int(pts)

    def close(self) -> None:
        """Flush encoders, finish the file and move it onto the target path."""
        if self._closed:
            return
        self._closed = True
        try:
            self._c.mux(self._v.encode(None))
            if self._audio_mode == "aac":
                self._c.mux(self._audio_out.encode(None))
            self._c.close()
            self._close_audio_src()
            if self.frames == 0:
                raise InputError("No frames were written.")
            os.replace(self._tmp, self.path)
        except BaseException:
            self._abort()
            raise

    def _close_audio_src(self) -> None:
        src = getattr(self, "_audio_src", None)
        if src is not None:
            src.close()
            self._audio_src = None

    def _abort(self) -> None:
        self._closed = True
        try:
            c = getattr(self, "_c", None)
            if c is not None:
                c.close()
        except Exception:
            pass
        self._close_audio_src()
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
