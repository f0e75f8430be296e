"""The source's audio in a written video: copied as it is, or re-encoded, up to the frames written.

``open_audio(src, out, fmt)`` gives the track for a container: :class:`CopyAudio` when the
container takes the source's codec as it is (AAC/MP3 in MP4, Opus/Vorbis in WebM), else
:class:`EncodeAudio` (decoded, cut to the sample, re-encoded to ``fmt.audio_codec``). Both are
pumped with the output clock's time as the video frames are written (``VideoSink``) or stitched
(``stitching``), so audio and video interleave, and the track ends where the video does.
Times are seconds on the output's clock, where 0 is ``origin`` seconds in the source (the first
video frame).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def codec_name(stream) -> str:
    """The codec's own name ("mp3"), not the decoder's ("mp3float")."""
    ctx = stream.codec_context
    return getattr(ctx.codec, "canonical_name", None) or ctx.name


class AudioTrack:
    """The first audio track of a source, muxed into ``out`` up to a given time (see the module)."""

    def __init__(self, inp: av.container.InputContainer, stream, out: av.container.OutputContainer):
        self._in = inp
        self._a = stream
        ctx = stream.codec_context
        self._tb = Fraction(stream.time_base or Fraction(1, ctx.sample_rate or 48000))
        self._packets = inp.demux(stream)
        self._container = out
        self.origin: float | None = None
        self._held = None  # a packet read but not yet due
        self._done = False

    def _next_packet(self):
        if self._held is not None:
            p, self._held = self._held, None
            return p
        while not self._done:
            try:
                p = next(self._packets)
            except (StopIteration, av.FFmpegError):
                self._done = True  # end of file, or the rest is unreadable
                return None
            if p.pts is None and p.dts is None:
                continue  # the demuxer's flush marker
            return p
        return None

    def _start(self, p) -> float:
        t = p.pts if p.pts is not None else p.dts
        return float(t * self._tb) - self.origin

    def pump(self, until: float, final: bool = False) -> None:
        """Mux the source audio up to ``until`` seconds (output clock); ``final`` ends the track."""
        if self.origin is None:
            return
        while True:
            p = self._next_packet()
            if p is None:
                break
            start = self._start(p)
            if start >= until:
                self._held = p
                break
            self._take(p, start)
        self._flush(until, final)

    def _take(self, p, start: float) -> None:
        raise NotImplementedError

    def _flush(self, until: float, final: bool) -> None:
        """After the packets due by ``until``: what the track still owes the output."""

    def close(self) -> None:
        self._in.close()


class CopyAudio(AudioTrack):
    """Packets copied as they are, each kept if it starts before the end and ends after 0."""

    def __init__(self, inp, stream, out):
        super().__init__(inp, stream, out)
        self._out = out.add_stream_from_template(stream)
        self._before = None  # the last packet that ends before 0
        self._last_dts: int | None = None  # of the last packet muxed

    def _take(self, p, start: float) -> None:
        dur = float((p.duration or 0) * self._tb)
        if dur > 0 and start + dur <= 1e-6:
            # Wholly before the first video frame: dropped, except the one just before
            # (an encoder's priming packet; the MP4 edit list hides it, as in the source).
            self._before = p
            return
        if self._before is not None:
            before, self._before = self._before, None
            self._mux(before)
        self._mux(p)

    def _mux(self, p) -> None:
        shift = round(self.origin / self._tb)
        if p.pts is not None:
            p.pts -= shift
        if p.dts is not None:
            p.dts -= shift
            if self._last_dts is not None and p.dts <= self._last_dts:
                return  # a damaged source's timestamp going back: the muxer would refuse the file
            self._last_dts = p.dts
        p.stream = self._out
        self._container.mux(p)


class EncodeAudio(AudioTrack):
    """Decoded, cut to the sample (silence fills a late start) and encoded to the container's codec."""

    def __init__(self, inp, stream, out, fmt):
        super().__init__(inp, stream, out)
        ctx = stream.codec_context
        rate = ctx.sample_rate if ctx.sample_rate in fmt.audio_rates else 48000
        layout = dict(fmt.audio_layouts).get(ctx.channels, "stereo")
        self._rate, self._layout = rate, layout
        self._out = out.add_stream(fmt.audio_codec, rate=rate, layout=layout)
        self._out.time_base = Fraction(1, rate)
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self._buf: list[np.ndarray] = []  # decoded fltp samples not yet encoded
        self._buf_pos: int | None = None  # output sample position of the buffer's start
        self._written = 0  # output sample position reached by the encoder

    def _take(self, p, start: float) -> None:
        try:
            frames = self._a.codec_context.decode(p)
        except av.FFmpegError:
            return  # a damaged audio packet: drop it, keep the rest
        for f in frames:
            if self._buf_pos is None:
                t = start
                if f.pts is not None and f.time_base:
                    t = float(f.pts * f.time_base) - self.origin
                self._buf_pos = round(t * self._rate)
            f.pts = None
            try:
                self._add(self._resampler.resample(f))
            except ValueError:  # the source changed format or layout mid-stream: start a new resampler
                self._add(self._resampler.resample(None))
                self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
                self._add(self._resampler.resample(f))

    def _flush(self, until: float, final: bool) -> None:
        if final:
            self._add(self._resampler.resample(None))
        self._drain(until)
        if final:
            for pkt in self._out.encode(None):
                self._container.mux(pkt)

    def _add(self, frames) -> None:
        for f in frames:
            if f is not None and f.samples:
                self._buf.append(f.to_ndarray().reshape(-1, f.samples))

    def _encode(self, data: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data, dtype=np.float32), format="fltp",
                                           layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts = self._written
        frame.time_base = Fraction(1, self._rate)
        self._written += data.shape[1]
        for pkt in self._out.encode(frame):
            self._container.mux(pkt)

    def _drain(self, until: float) -> None:
        """Encode the buffered samples that fall in [written, until)."""
        if not self._buf:
            return
        end = round(until * self._rate)
        data = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf, axis=1)
        pos = self._buf_pos
        if pos < self._written:  # before 0 (or overlapping what is written): cut
            cut = min(self._written - pos, data.shape[1])
            data, pos = data[:, cut:], pos + cut
        if pos > self._written and data.shape[1]:  # the source starts late: silence up to it
            gap = min(pos, end) - self._written
            if gap > 0:
                self._encode(np.zeros((data.shape[0], gap), np.float32))
        if pos == self._written:
            n = max(0, min(data.shape[1], end - pos))
            if n:
                self._encode(data[:, :n])
            data, pos = data[:, n:], pos + n
        self._buf = [data] if data.shape[1] else []
        self._buf_pos = pos


def open_audio(src: str | Path, out: av.container.OutputContainer, fmt) -> AudioTrack:
    """The first audio track of ``src`` for a container of format ``fmt`` (``video.ContainerFormat``):
    copied when the container takes its codec, else re-encoded. LookupError when there is none."""
    inp = av.open(str(src), "r")
    try:
        if not inp.streams.audio:
            raise LookupError("no audio")
        a = inp.streams.audio[0]
        return CopyAudio(inp, a, out) if codec_name(a) in fmt.copy_audio else EncodeAudio(inp, a, out, fmt)
    except BaseException:
        inp.close()
        raise
