"""What the page's video players show: a copy every browser plays, when the file itself would not.

* ``plays_in_browsers``: whether a video file plays in a ``<video>`` element of every current
  browser as it is: H.264, VP8, VP9 or AV1 in MP4 (or WebM, for the VP codecs and AV1), 8-bit
  4:2:0 (``yuv420p``), with AAC / MP3 (MP4) or Opus / Vorbis (WebM) audio or none. A GIF, an AVI,
  an MKV, a QuickTime file with ProRes or HEVC, WMV, FLV, 10-bit or 4:4:4 H.264 is not, nor is a
  video whose first frame comes later than ``MAX_START`` (a clip cut out of a longer one keeping its
  timestamps: WebKit's GStreamer player refuses it, MEDIA_ERR_SRC_NOT_SUPPORTED).
* ``playable_copy``: such a file re-encoded as H.264 ``yuv420p`` MP4 with the index at the front
  (faststart), each frame at its own time, the audio kept (copied or re-encoded to AAC), with
  the library's ``VideoSink``; a fast x264 preset.
* ``checkerboard_copy``: a transparent result (VP9 WebM with alpha) over the page's light
  checkerboard, as an H.264 MP4: what the page shows of a remove-background video, so that an
  engine that ignores VP9's alpha (Safari) shows the same picture. The WebM stays the download.

Both write into the job's own folder (``webapp.jobs.TempStore``): they are reserved with the job,
swept with it, and stopped with it (``each_frame`` may raise to stop; nothing is left behind).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

from segmentation.video import VideoSink, read_frames

PREVIEW_PRESET = "veryfast"  # x264: a preview is watched once; size matters less than time
PREVIEW_CRF = 23
BROWSER_CODECS = {"mp4": {"h264", "vp9", "av1"}, "webm": {"vp8", "vp9", "av1"}}
BROWSER_AUDIO = {"mp4": {"aac", "mp3"}, "webm": {"opus", "vorbis"}}
BROWSER_PIXELS = {"yuv420p", "yuvj420p"}
CHECKER_SQUARE = 8  # px, as the page's CSS checkerboard
MAX_START = 0.1  # s: a video stream starting later is shown as a copy (starting at 0)
CHECKER_LIGHT, CHECKER_DARK = 255, 204


def _container_kind(c: av.container.InputContainer, path: Path) -> str | None:
    """"mp4", "webm" or None (anything else, e.g. a QuickTime .mov, an MKV or an AVI)."""
    names = set(c.format.name.split(","))
    suffix = path.suffix.lower()
    if "mp4" in names and suffix in (".mp4", ".m4v"):
        brand = str(c.metadata.get("major_brand", "")).strip().lower()
        return None if brand == "qt" else "mp4"
    if "webm" in names and suffix == ".webm":
        return "webm"
    return None


def plays_in_browsers(path: str | Path) -> bool:
    """Whether ``path`` plays as it is in every current browser's ``<video>`` (see the module doc).
    A file that cannot be read says no (the preview's decoder will say why)."""
    path = Path(path)
    try:
        with av.open(str(path)) as c:
            kind = _container_kind(c, path)
            if kind is None or not c.streams.video:
                return False
            v = c.streams.video[0]
            codec = v.codec_context.name
            pix = v.codec_context.pix_fmt or (v.format.name if v.format else None)
            if codec not in BROWSER_CODECS[kind] or pix not in BROWSER_PIXELS:
                return False
            if v.start_time is not None and v.time_base and float(v.start_time * v.time_base) > MAX_START:
                return False
            return all(a.codec_context.name in BROWSER_AUDIO[kind] for a in c.streams.audio)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


def playable_copy(src: str | Path, dst: str | Path, *, max_frames: int | None = None,
                  each_frame: Callable[[int, int], None] | None = None) -> Path:
    """``src`` as an H.264 ``yuv420p`` MP4 (faststart) at ``dst``: the frames upright, each at its own
    time, the audio kept; at most ``max_frames`` frames (the job's own limit)."""
    sink = None
    try:
        for i, f in enumerate(read_frames(src, max_frames=max_frames)):
            if sink is None:
                h, w = f.rgb.shape[:2]
                sink = VideoSink(dst, w, h, _rate(src), f.time_base, audio_from=src, crf=PREVIEW_CRF,
                                 preset=PREVIEW_PRESET).__enter__()
            sink.write(f.rgb, f.pts, f.duration)
            if each_frame is not None:
                each_frame(i + 1, max_frames or 0)
        if sink is None:
            raise ValueError(f"{Path(src).name} has no frame to preview.")
        sink.close()
    except BaseException:
        if sink is not None:
            sink.__exit__(*sys.exc_info())
        raise
    return Path(dst)


def _rate(path: str | Path) -> Fraction:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for r in (v.average_rate, v.guessed_rate, v.base_rate):
            if r and r > 0:
                return Fraction(r)
    return Fraction(25)


def checkerboard(height: int, width: int, square: int = CHECKER_SQUARE) -> np.ndarray:
    """The page's light checkerboard (grey levels), ``height`` x ``width``."""
    yy, xx = np.ogrid[:height, :width]
    odd = ((yy // square + xx // square) % 2).astype(bool)
    return np.where(odd, np.uint8(CHECKER_DARK), np.uint8(CHECKER_LIGHT))


def over_checkerboard(rgba: np.ndarray, board: np.ndarray | None = None) -> np.ndarray:
    """An RGBA picture over the checkerboard, as RGB (an RGB picture is returned as it is)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        return rgba
    h, w = rgba.shape[:2]
    board = checkerboard(h, w) if board is None else board
    a = rgba[..., 3:4].astype(np.uint16)
    out = (rgba[..., :3].astype(np.uint16) * a + board[..., None].astype(np.uint16) * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def checkerboard_copy(webm: str | Path, dst: str | Path, *,
                      each_frame: Callable[[int, int], None] | None = None) -> Path:
    """A VP9 WebM with alpha over the checkerboard, as an H.264 ``yuv420p`` MP4 (faststart) at
    ``dst``: the same frames at the same times, with its audio. Decoded with libvpx (FFmpeg's own
    VP9 decoder drops the alpha)."""
    sink = None
    board = None
    try:
        with av.open(str(webm)) as c:
            v = c.streams.video[0]
            rate, tb = Fraction(v.average_rate or v.guessed_rate or 25), Fraction(v.time_base)
            width, height = v.codec_context.width, v.codec_context.height
            dec = av.CodecContext.create("libvpx-vp9", "r")
            done = 0
            for packet in c.demux(v):
                if packet.pts is None and packet.size == 0:
                    continue
                for frame in dec.decode(packet):
                    rgba = frame.to_ndarray(format="rgba" if frame.format.name == "yuva420p" else "rgb24")
                    if board is None:
                        board = checkerboard(rgba.shape[0], rgba.shape[1])
                        sink = VideoSink(dst, width, height, rate, tb, audio_from=webm, crf=PREVIEW_CRF,
                                         preset=PREVIEW_PRESET).__enter__()
                    sink.write(over_checkerboard(rgba, board)[:height, :width], packet.pts, packet.duration)
                    done += 1
                    if each_frame is not None:
                        each_frame(done, 0)
        if sink is None:
            raise ValueError(f"{Path(webm).name} has no frame to preview.")
        sink.close()
    except BaseException:
        if sink is not None:
            sink.__exit__(*sys.exc_info())
        raise
    return Path(dst)
