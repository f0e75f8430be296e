"""Video in and out with PyAV (FFmpeg): probing, decoding frames, writing H.264 (or VP9).

* ``probe`` -> ``VideoInfo`` (size as displayed, exact fractional frame rate,
  frame count, duration, rotation, audio).
* ``read_frames`` (``segmentation.decoding``, re-exported here) yields every
  decoded frame as upright RGB with its own timestamp and duration.
* ``VideoSink`` is a context manager that encodes RGB frames to H.264
  yuv420p in MP4 with the index at the front (faststart) -- or, for a
  ``.webm`` name, to VP9 in WebM, with an alpha channel (yuva420p) when
  asked for (``alpha=True``, RGBA frames) -- keeps each frame's
  timestamp (so fractional and variable frame rates survive; the first frame
  starts at 0), and pads odd sizes by one replicated pixel (no scaling, no
  distortion). With ``audio_from`` it reads that file's first audio track
  itself, in step with the video, and copies it (MP4: AAC/MP3; WebM:
  Opus/Vorbis) or re-encodes it (MP4: to AAC; WebM: to Opus), cut to the
  video written: from the first frame's time to the end of the last frame
  (so ``max_frames`` and a truncated video keep their audio in sync, and the
  audio after the last video packet is not lost). It writes to a temporary
  file and renames it onto the target only when closed cleanly: a failed or
  cancelled job never leaves a half-written video under the output name.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .audio import AudioTrack, codec_name, open_audio
from .decoding import (DecodedFrame, ReadState, display_rotation, open_input, read_frames, repair_pts,
                       stream_rate)
from .errors import InputError
from .files import AtomicFile

__all__ = ["CONTAINERS", "MP4", "OUTPUT_VIDEO_SUFFIXES", "WEBM", "ContainerFormat", "DecodedFrame", "ReadState",
           "VideoInfo", "VideoSink", "container_for", "probe", "read_frames", "repair_pts"]

COPY_AUDIO_CODECS = {"aac", "mp3"}
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


@dataclass(frozen=True)
class ContainerFormat:
    """An output container: its muxer, video codec, whether it can carry alpha, and its audio
    (codecs copied as they are, the codec anything else is re-encoded to, its rates and layouts)."""

    muxer: str
    video_codec: str
    alpha: bool
    copy_audio: frozenset[str]
    audio_codec: str
    audio_rates: tuple[int, ...]
    audio_layouts: tuple[tuple[int, str], ...]  # channels -> layout; anything else: stereo
    muxer_options: tuple[tuple[str, str], ...] = ()


MP4 = ContainerFormat("mp4", "libx264", False, frozenset(COPY_AUDIO_CODECS), "aac", AAC_RATES,
                      ((1, "mono"), (2, "stereo"), (6, "5.1")), (("movflags", "+faststart"),))
WEBM = ContainerFormat("webm", "libvpx-vp9", True, frozenset({"opus", "vorbis"}), "libopus", OPUS_RATES,
                       ((1, "mono"), (2, "stereo")))
CONTAINERS = {".mp4": MP4, ".m4v": MP4, ".webm": WEBM}
OUTPUT_VIDEO_SUFFIXES = tuple(CONTAINERS)  # what a video can be written as (inputs: media.INPUT_VIDEO_SUFFIXES)
# x264 preset -> libvpx-vp9 realtime speed (cpu-used): what the speed setting buys in either codec
VP9_SPEEDS = {"ultrafast": 8, "superfast": 7, "veryfast": 6}
VP9_CRF_OFFSET = 9  # x264 CRF 23 ~ VP9 CRF 32 (what the pipeline's crf means for a WebM)


def container_for(path: str | Path) -> ContainerFormat:
    """The output container a file name asks for: WebM for ``.webm``, MP4 for anything else."""
    return CONTAINERS.get(Path(path).suffix.lower(), MP4)


def _codec_options(fmt: ContainerFormat, crf: int, preset: str) -> dict[str, str]:
    if fmt.video_codec == "libx264":
        return {"crf": str(crf), "preset": preset}
    # constant quality ("b" 0), real-time speed, rows in parallel on the cores left by the model
    return {"crf": str(min(63, max(0, crf + VP9_CRF_OFFSET))), "b": "0", "deadline": "realtime",
            "cpu-used": str(VP9_SPEEDS.get(preset, 5)), "row-mt": "1"}


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

    @property
    def expected_frames(self) -> int:
        """The frame count the header states, or its duration x rate implies; 0 when it says neither.
        Headers can lie: what a job may take is checked again while decoding."""
        return self.frames or round(self.duration * float(self.fps))



def probe(path: str | Path) -> VideoInfo:
    """Read a video's facts without decoding it all (one frame is decoded for rotation)."""
    name = Path(path).name
    with open_input(path) as c:
        if not c.streams.video:
            kind = "an audio-only file" if c.streams.audio else "a file without a video stream"
            raise InputError(f"{name} is {kind}; give a video or an image.")
        v = c.streams.video[0]
        fps = stream_rate(v)
        try:
            first = next(c.decode(v))
        except (StopIteration, av.FFmpegError):
            raise InputError(f"{name} has a video stream but no decodable frame.") from None
        rotation = display_rotation(first)
        w, h = first.width or v.codec_context.width, first.height or v.codec_context.height  # what read_frames gives
        if w <= 0 or h <= 0:
            raise InputError(f"{name} has a video stream without a picture size.")
        if rotation in (90, 270):
            w, h = h, w
        duration = float(v.duration * v.time_base) if (v.duration and v.time_base) else (c.duration or 0) / av.time_base
        audio = codec_name(c.streams.audio[0]) if c.streams.audio else None
        variable = bool(v.base_rate and v.average_rate and abs(float(v.base_rate) - float(v.average_rate)) > 0.01)
        return VideoInfo(w, h, fps, int(v.frames or 0), duration, rotation,
                         codec_name(v), Fraction(v.time_base or Fraction(1, 90000)), audio, variable)


class VideoSink:
    """H.264/MP4 (or VP9/WebM) writer used as a context manager; see the module docstring.

    ``audio_from``: the input file whose first audio track is kept (read by
    the sink itself, cut to the frames written). The container follows the
    name (:func:`container_for`). ``alpha`` (WebM only): frames are RGBA and
    the video is yuva420p; an RGB frame is written opaque. ``crf`` and
    ``preset`` are x264's; for VP9 they map to its CRF (+9) and real-time speed.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, time_base: Fraction,
                 audio_from: str | Path | None = None, crf: int = 23, preset: str = "veryfast",
                 threads: int = 0, alpha: bool = False):
        self.path = Path(path)
        self.format = container_for(path)
        if alpha and not self.format.alpha:
            raise ValueError(f"{self.format.muxer} has no alpha channel: write {self.path.name} as .webm.")
        self.alpha = alpha
        self.width, self.height = width + (width & 1), height + (height & 1)
        self._pad = (self.height - height, self.width - width)
        self.fps, self.time_base = Fraction(fps), Fraction(time_base)
        if self.fps <= 0:
            self.fps = Fraction(25)
        self.crf, self.preset, self.threads = crf, preset, threads
        self.audio_from = audio_from
        self.frames = 0
        self.first_pts: int | None = None
        self.last_pts: int | None = None  # as given (source clock)
        self._last_duration: int | None = None  # the last frame's, as given with it
        self._last_gap: int | None = None  # between the last two frames
        self._step = max(1, round(1 / (self.fps * self.time_base)))
        self._audio: AudioTrack | None = None
        self._closed = False

    def __enter__(self) -> "VideoSink":
        self._out = AtomicFile(self.path)
        try:
            fmt = self.format
            self._c = av.open(str(self._out.tmp), "w", format=fmt.muxer, container_options=dict(fmt.muxer_options))
            s = self._c.add_stream(fmt.video_codec, rate=self.fps)
            s.width, s.height, s.pix_fmt = self.width, self.height, "yuva420p" if self.alpha else "yuv420p"
            s.time_base = self.time_base
            s.codec_context.time_base = self.time_base
            s.options = _codec_options(fmt, self.crf, self.preset)
            if self.threads:
                s.codec_context.thread_count = self.threads
            self._v = s
            if self.audio_from is not None:
                try:
                    self._audio = open_audio(self.audio_from, self._c, fmt)
                except (LookupError, av.FFmpegError):
                    self._audio = None  # no audio track, or one that cannot be read: keep the video
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, rgb: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """Encode one RGB (alpha sink: RGBA or RGB) frame at ``pts`` (``time_base`` units; default: one
        frame after the last).

        Timestamps must increase; one that does not is moved one frame past
        the previous. The first frame is written at time 0 and the audio is
        aligned to it.
        """
        if self._closed:
            raise ValueError("The sink is closed.")
        if rgb.ndim != 3 or rgb.shape[2] not in ((3, 4) if self.alpha else (3,)):
            raise ValueError(f"Expected an {'RGB(A)' if self.alpha else 'RGB'} frame, got shape {rgb.shape}.")
        pts = repair_pts(pts, self.last_pts, self._last_duration, self._step)
        if self.first_pts is None:
            self.first_pts = pts
            if self._audio is not None:
                self._audio.origin = float(pts * self.time_base)
        else:
            self._last_gap = pts - self.last_pts
        self._last_duration = int(duration) if duration and duration > 0 else None
        if self._pad != (0, 0):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        if self.alpha:
            if rgb.shape[2] == 3:
                rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
            # the encoder converts RGBA to yuva420p (swscale: ~3 ms at 720p, as fast as doing it here)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgba")
        else:
            # RGB -> I420 (BT.601, as FFmpeg's default) with OpenCV: ~3x cheaper than swscale's
            # rgb24 path at 720p (benchmarks/results.md); sizes are even after the padding above.
            yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts - self.first_pts
        frame.time_base = self.time_base
        if self._last_duration:
            frame.duration = self._last_duration
        self._c.mux(self._v.encode(frame))
        self.frames += 1
        self.last_pts = pts
        if self._audio is not None:
            self._audio.pump(float((pts - self.first_pts) * self.time_base))  # interleave as we go

    @property
    def end_pts(self) -> int | None:
        """The end of the last frame (its pts plus its duration), source clock; None before a frame."""
        if self.first_pts is None:
            return None
        return self.last_pts + (self._last_duration or self._last_gap or self._step)

    @property
    def end_time(self) -> float:
        """Seconds of video written: the last frame's time plus its duration."""
        if self.first_pts is None:
            return 0.0
        return float((self.end_pts - self.first_pts) * self.time_base)

    def close(self) -> None:
        """Flush encoders, finish the file and move it onto the target path."""
        if self._closed:
            return
        try:
            if self.frames == 0:
                raise InputError("No frames were written.")
            self._c.mux(self._v.encode(None))
            if self._audio is not None:
                self._audio.pump(self.end_time, final=True)
            self._c.close()
            self._closed = True
            self._close_audio()
            self._out.commit()
        except BaseException:
            self._abort()
            raise

    def _close_audio(self) -> None:
        if self._audio is not None:
            try:
                self._audio.close()
            except Exception:
                pass
            self._audio = None

    def _abort(self) -> None:
        self._closed = True
        try:
            c = getattr(self, "_c", None)
            if c is not None:
                c.close()
        except Exception:
            pass
        self._close_audio()
        out = getattr(self, "_out", None)
        if out is not None:
            out.discard()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
