"""The video path: frame count, timing, rotation, audio, container, failures, CLI.

Every output is read back with PyAV and checked against the input. Clips are
generated here with PyAV (tiny sizes, a few dozen frames); the shared real
videos are run with ``max_frames`` except car-detection, which goes through
the whole pipeline once at full length with the real model.

Most pipeline runs use ``StubSegmenter`` (a constant class map, drawn with
alpha 0 so the output pixels are the input's): the model is not what these
tests are about and a real one costs ~80 ms a frame on the CI's CPU.
"""

from __future__ import annotations

import struct
import threading
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from media import (TONE_HZ, StubSegmenter, assert_same_timing, audio_only, damage, decoded_frames, make_clip,
                   no_leftovers, run_bounded, run_cli, stream_facts, video_times)

from segmentation import video
from segmentation.draw import DrawOptions
from segmentation.errors import InputError
from segmentation.pipeline import Cancelled, VideoOptions, segment_video

PLAIN = VideoOptions(draw=DrawOptions(alpha=0.0))  # output pixels == input pixels


# -- reading outputs back (more in media.py) ------------------------------------------------
def audio_span(path: Path) -> tuple[float, float, int]:
    """(start, end, packets) of the first audio track, from its packets' timestamps."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        ps = [p for p in c.demux(a) if p.pts is not None]
        start = min(float(p.pts * a.time_base) for p in ps)
        end = max(float((p.pts + p.duration) * a.time_base) for p in ps)
        return max(0.0, start), end, len(ps)


def audio_samples(path: Path) -> tuple[np.ndarray, int]:
    """The first audio track decoded to mono float samples."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        rs = av.AudioResampler(format="flt", layout="mono", rate=a.codec_context.sample_rate)
        chunks = []
        for f in c.decode(a):
            for g in rs.resample(f):
                chunks.append(g.to_ndarray().reshape(-1))
        return np.concatenate(chunks), a.codec_context.sample_rate


def _audio_payloads(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def top_boxes(path: Path) -> list[str]:
    """Top-level MP4 box types in file order."""
    data, i, boxes = path.read_bytes(), 0, []
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        i += size
    return boxes


def assert_h264_mp4(path: Path) -> None:
    facts = stream_facts(path)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p", facts
    boxes = top_boxes(path)
    assert "moov" in boxes and "mdat" in boxes, boxes
    assert boxes.index("moov") < boxes.index("mdat"), f"moov after mdat (no faststart): {boxes}"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> SimpleNamespace:
    """The generated inputs, made once for the module."""
    d = tmp_path_factory.mktemp("clips")
    ntsc_pts = [i * 1001 for i in range(36)]
    vfr_pts = [0, 40, 80, 90, 100, 200, 250, 330, 333, 400, 520, 540, 600, 700, 710, 760, 900, 950, 1000, 1033]
    return SimpleNamespace(
        ntsc=make_clip(d / "ntsc.mp4", pts=ntsc_pts, time_base=Fraction(1, 30000), rate=Fraction(30000, 1001)),
        vfr=make_clip(d / "vfr.mkv", pts=vfr_pts, time_base=Fraction(1, 1000), rate=Fraction(20)),
        vfr_mp4=make_clip(d / "vfr.mp4", pts=[p * 90 for p in vfr_pts], time_base=Fraction(1, 90000), rate=Fraction(20)),
        odd=make_clip(d / "odd.mp4", size=(65, 49), frames=12),
        rot={r: make_clip(d / f"rot{r}.mp4", rotation=r, frames=10, marker=True) for r in (90, 180, 270)},
        opus=make_clip(d / "opus.mkv", frames=50, audio="libopus", audio_rate=48000),
        pcm=make_clip(d / "pcm.mov", frames=50, audio="pcm_s16le", audio_rate=44100, audio_layout="mono"),
        aac=make_clip(d / "aac.mp4", frames=50, audio="aac", audio_rate=44100),
        mp3=make_clip(d / "mp3.mkv", frames=50, audio="libmp3lame", audio_rate=44100),
        # MPEG-TS: ADTS AAC, and the video starts a little after the audio
        ts=make_clip(d / "ts.ts", frames=50, audio="aac", audio_rate=44100, time_base=Fraction(1, 90000)),
    )


def segment(src: Path, dst: Path, options: VideoOptions = PLAIN, segmenter=None, **kw):
    return segment_video(segmenter or StubSegmenter(), src, dst, options, **kw)


# -- timing -------------------------------------------------------------------------------
def test_ntsc_rate_kept_exactly(clips, tmp_path):
    dst = tmp_path / "out.mp4"
    res = segment(clips.ntsc, dst)
    assert res.frames == 36
    assert_h264_mp4(dst)
    assert_same_timing(clips.ntsc, dst)
    assert stream_facts(dst)["rate"] == Fraction(30000, 1001)


@pytest.mark.parametrize("kind", ["vfr", "vfr_mp4"])
def test_variable_frame_rate_keeps_each_timestamp(clips, tmp_path, kind):
    src = getattr(clips, kind)
    dst = tmp_path / "out.mp4"
    res = segment(src, dst)
    assert res.frames == 20
    assert_same_timing(src, dst)
    gaps = np.diff(video_times(dst))
    assert gaps.max() > 4 * gaps.min()  # still variable, not resampled to a constant rate


def test_odd_size_padded_not_scaled(clips, tmp_path):
    dst = tmp_path / "out.mp4"
    segment(clips.odd, dst)
    assert_h264_mp4(dst)
    assert stream_facts(dst)["size"] == (66, 50)
    assert_same_timing(clips.odd, dst)
    src_frames = decoded_frames(clips.odd)
    out_frames = decoded_frames(dst)
    assert len(out_frames) == len(src_frames) == 12
    for a, b in zip(src_frames, out_frames):
        ia, ib = a.to_ndarray(format="rgb24").astype(int), b.to_ndarray(format="rgb24").astype(int)
        assert ib.shape == (50, 66, 3)
        assert np.abs(ib[:49, :65] - ia).mean() < 6, "picture content moved or was scaled"
        assert np.abs(ib[:49, 65] - ia[:, 64]).mean() < 10  # the pad repeats the edge
        assert np.abs(ib[49, :65] - ia[48]).mean() < 10


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_applied(clips, tmp_path, rotation):
    src = clips.rot[rotation]
    first = decoded_frames(src, 1)[0]
    assert first.rotation % 360 == rotation and (first.width, first.height) == (64, 48)  # PyAV: 270 reads -90
    dst = tmp_path / "out.mp4"
    res = segment(src, dst)
    assert res.frames == 10
    expected = (64, 48) if rotation == 180 else (48, 64)
    assert (res.info.width, res.info.height) == expected
    assert stream_facts(dst)["size"] == expected
    frames = decoded_frames(dst)
    assert len(frames) == 10
    f = frames[0]
    assert f.rotation == 0, "the output still carries a rotation"
    img = f.to_ndarray(format="rgb24").astype(int)
    red = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)
    h, w = red.shape
    # The marker sits in the coded top-left corner (16x12). FFmpeg's autorotate
    # (ffmpeg -i rot90.mp4, checked once by hand) shows a display rotation of 90
    # counter-clockwise: top-left goes to bottom-left; 270 puts it top-right.
    corner = {90: (slice(h - 16, h), slice(0, 12)), 180: (slice(h - 12, h), slice(w - 16, w)),
              270: (slice(0, 16), slice(w - 12, w))}[rotation]
    assert red[corner].mean() > 0.8, f"marker not in the expected corner for rotation {rotation}"
    assert red.sum() < 1.3 * 16 * 12 and red.sum() > 0.8 * 16 * 12


def test_bframes_input(tmp_path):
    src = make_clip(tmp_path / "b.mp4", frames=40, options={"bframes": "3", "preset": "medium"})
    with av.open(str(src)) as c:  # the clip really has B-frames: decode order != presentation order
        pts = [p.pts for p in c.demux(video=0) if p.pts is not None]
    assert pts != sorted(pts)
    dst = tmp_path / "out.mp4"
    res = segment(src, dst)
    assert res.frames == 40
    assert_same_timing(src, dst)
    out = [f.pts for f in decoded_frames(dst)]
    assert len(out) == 40 and all(b > a for a, b in zip(out, out[1:]))


def test_frames_without_timestamps(tmp_path):
    """A raw H.264 stream has no timestamps at all: frames get them from their durations."""
    src = make_clip(tmp_path / "raw.h264", fmt="h264", frames=20, rate=Fraction(30000, 1001),
                    time_base=Fraction(1001, 30000))
    assert all(f.pts is None for f in decoded_frames(src, 3))
    dst = tmp_path / "out.mp4"
    res = segment(src, dst)
    assert res.frames == 20
    t = np.array(video_times(dst))
    assert len(t) == 20 and np.all(np.diff(t) > 0)
    assert np.allclose(np.diff(t), 1001 / 30000, atol=2e-3)


def test_sink_fills_missing_and_repeated_pts(tmp_path):
    dst = tmp_path / "s.mp4"
    img = np.zeros((32, 32, 3), np.uint8)
    with video.VideoSink(dst, 32, 32, Fraction(10), Fraction(1, 1000)) as sink:
        for pts in (None, None, 300, 300, None, 250):
            sink.write(img, pts)
    assert np.allclose(video_times(dst), [0, 0.1, 0.3, 0.4, 0.5, 0.6], atol=1e-3)
    assert stream_facts(dst)["duration"] == pytest.approx(0.7, abs=1e-3)


# -- shared real videos -----------------------------------------------------------------------
@pytest.mark.parametrize("name,rate,n", [("bottle-detection.mp4", Fraction(179, 6), 40),
                                         ("one-by-one-person-detection.mp4", Fraction(10), 15)])
def test_shared_video_head(shared_videos, tmp_path, name, rate, n):
    src = shared_videos / name
    dst = tmp_path / "out.mp4"
    res = segment(src, dst, VideoOptions(draw=DrawOptions(alpha=0.0), max_frames=n))
    assert res.frames == n
    assert_h264_mp4(dst)
    assert stream_facts(dst)["rate"] == rate
    assert stream_facts(dst)["audio"] is None
    assert_same_timing(src, dst, max_frames=n)
    assert stream_facts(dst)["duration"] == pytest.approx(n / float(rate), abs=1e-3)


def test_car_detection_full_realtime(shared_videos, default_segmenter, tmp_path):
    """The whole file with the real model: every frame, its duration and all of its audio."""
    src = shared_videos / "car-detection.mp4"
    dst = tmp_path / "car.mp4"
    res = segment_video(default_segmenter, src, dst, VideoOptions(speed="realtime"))
    assert res.frames == 377 and 0 < res.keyframes < 377
    assert_h264_mp4(dst)
    assert_same_timing(src, dst)
    facts = stream_facts(dst)
    assert facts["rate"] == Fraction(25, 2) and facts["size"] == (768, 432)
    assert facts["duration"] == pytest.approx(30.16, abs=1e-3)
    assert facts["audio"] == "aac"
    a_in, a_out = audio_span(src), audio_span(dst)
    assert a_out[2] == a_in[2] == 1414, "audio packets lost (copy mode keeps them all)"
    assert a_out[1] == pytest.approx(a_in[1], abs=1e-3)
    assert abs(a_out[1] - facts["duration"]) < 0.1


def test_car_detection_cut_audio(shared_videos, tmp_path):
    src = shared_videos / "car-detection.mp4"
    dst = tmp_path / "car.mp4"
    res = segment(src, dst, VideoOptions(draw=DrawOptions(alpha=0.0), max_frames=25))
    assert res.frames == 25
    assert_same_timing(src, dst, max_frames=25)
    start, end, _ = audio_span(dst)
    assert start == pytest.approx(0, abs=0.03)
    assert end == pytest.approx(2.0, abs=0.05)  # 25 frames at 12.5 fps


# -- audio -----------------------------------------------------------------------------------
def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize("kind,codec,out_codec", [
    ("opus", "opus", "aac"), ("pcm", "pcm_s16le", "aac"),  # re-encoded
    ("aac", "aac", "aac"), ("mp3", "mp3", "mp3"), ("ts", "aac", "aac"),  # copied
])
@pytest.mark.parametrize("max_frames", [None, 20])
def test_audio_kept(clips, tmp_path, kind, codec, out_codec, max_frames):
    src = getattr(clips, kind)
    assert stream_facts(src)["audio"] == codec
    dst = tmp_path / "out.mp4"
    res = segment(src, dst, VideoOptions(draw=DrawOptions(alpha=0.0), max_frames=max_frames))
    n = max_frames or 50
    assert res.frames == n
    assert_h264_mp4(dst)
    assert_same_timing(src, dst, max_frames=max_frames)
    facts = stream_facts(dst)
    assert facts["audio"] == out_codec
    if kind in ("aac", "mp3"):  # copied: the very same packets
        assert _audio_payloads(dst)[:10] == _audio_payloads(src)[:10]
    assert facts["duration"] == pytest.approx(n / 25, abs=1e-3)
    start, end, _ = audio_span(dst)
    assert start == pytest.approx(0, abs=0.03)
    # copied audio is cut between packets; re-encoded audio to the sample
    assert abs(end - facts["duration"]) < (0.1 if out_codec == codec else 0.002), (end, facts["duration"])
    samples, rate = audio_samples(dst)
    assert len(samples) / rate == pytest.approx(n / 25, abs=0.05)
    body = samples[rate // 10: -rate // 10]
    assert np.sqrt(np.mean(body ** 2)) > 0.2, "the tone is missing or silent"
    assert _dominant_hz(body, rate) == pytest.approx(TONE_HZ, abs=5)


# -- failures ---------------------------------------------------------------------------------
def test_cancel_leaves_nothing(clips, tmp_path):
    dst = tmp_path / "out" / "cancelled.mp4"
    cancel = threading.Event()

    def progress(done, total):
        if done >= 5:
            cancel.set()

    box = run_bounded(lambda: segment(clips.opus, dst, progress=progress, cancel=cancel))
    assert isinstance(box.get("error"), Cancelled), box
    no_leftovers(dst.parent, dst)


def test_model_error_leaves_nothing(clips, tmp_path):
    dst = tmp_path / "failed.mp4"
    labels = tmp_path / "failed.npz"
    box = run_bounded(lambda: segment(clips.opus, dst, segmenter=StubSegmenter(fail_at=10), labels_out=labels))
    assert isinstance(box.get("error"), RuntimeError) and "exploded" in str(box["error"])
    no_leftovers(tmp_path, dst)
    assert not labels.exists()


def test_labels_failure_leaves_nothing(clips, tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    dst, labels = tmp_path / "out.mp4", tmp_path / "file" / "labels.npz"
    box = run_bounded(lambda: segment(clips.odd, dst, labels_out=labels))
    assert isinstance(box.get("error"), OSError), box
    no_leftovers(tmp_path, dst)


def test_labels_match_output(clips, tmp_path):
    dst, labels = tmp_path / "out.mp4", tmp_path / "sub" / "labels.npz"
    res = segment(clips.rot[90], dst, VideoOptions(draw=DrawOptions(alpha=0.0), max_frames=7, temporal=False),
                  labels_out=labels)
    arr = np.load(labels)["labels"]
    assert arr.dtype == np.uint8 and arr.shape == (res.frames, 64, 48) == (len(video_times(dst)), 64, 48)
    assert (arr[:, :32] == 1).all() and (arr[:, 32:] == 0).all()  # the stub's map, upright, at display size


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
@pytest.mark.parametrize("faststart", [True, False])
def test_damaged_input(tmp_path, how, faststart):
    whole = make_clip(tmp_path / f"whole_{faststart}.mp4", size=(160, 120), frames=60, audio="aac",
                      audio_rate=44100, faststart=faststart)
    src = damage(whole, tmp_path / f"{how}_{faststart}.mp4", how)
    dst = tmp_path / "out.mp4"
    box = run_bounded(lambda: segment(src, dst))
    if "error" in box:
        assert isinstance(box["error"], InputError), repr(box["error"])
        no_leftovers(tmp_path, dst)
        return
    res = box["result"]
    assert 0 < res.frames <= 60
    if how == "truncated":
        assert res.frames < 60
    assert_h264_mp4(dst)
    out_t = np.array(video_times(dst))
    assert len(out_t) == res.frames and np.all(np.diff(out_t) > 0)
    # the frames that could be decoded, each at its own time (frames lost to damage leave a gap)
    slots = out_t * 25
    assert np.allclose(slots, np.round(slots), atol=0.05) and out_t[-1] < 60 / 25
    if how == "truncated":
        assert np.allclose(slots, np.arange(res.frames), atol=0.05)
    _, end, _ = audio_span(dst)
    assert abs(end - (out_t[-1] + 1 / 25)) < 0.1, "audio not cut to the video"


@pytest.mark.parametrize("kind,words", [("text", "not a video"), ("empty", "empty"), ("audio", "audio-only")])
def test_not_a_video(tmp_path, kind, words):
    src = tmp_path / "input.mp4"
    if kind == "text":
        src.write_text("This is a shopping list, not a film.\nmilk\neggs\n" * 20)
    elif kind == "empty":
        src.write_bytes(b"")
    else:
        audio_only(src)
    dst = tmp_path / "out.mp4"
    box = run_bounded(lambda: segment(src, dst), timeout=30)
    err = box.get("error")
    assert isinstance(err, InputError), repr(err)
    assert words in str(err) and "input.mp4" in str(err)
    assert "\n" not in str(err)
    no_leftovers(tmp_path, dst)


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_labels_out(shared_models, tmp_path):
    """Rotated, odd-sized clip: labels have the display size, one per output frame."""
    src = make_clip(tmp_path / "in.mp4", size=(65, 49), frames=8, rotation=90)
    out, npz = tmp_path / "out.mp4", tmp_path / "labels.npz"
    r = run_cli(str(src), "-o", str(out), "--max-frames", "5", "--labels-out", str(npz))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert stream_facts(out)["size"] == (50, 66)
    labels = np.load(npz)["labels"]
    assert labels.dtype == np.uint8
    assert labels.shape == (len(video_times(out)), 65, 49) == (5, 65, 49)
    assert labels.max() < 32


def test_cli_labels_out_unwritable(shared_models, tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "out.mp4"
    r = run_cli(str(src), "-o", str(out), "--labels-out", str(tmp_path / "file" / "labels.npz"))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    no_leftovers(tmp_path, out)


@pytest.mark.parametrize("kind", ["text", "empty", "missing", "audio"])
def test_cli_bad_input(tmp_path, kind):
    src = tmp_path / "bad.mp4"
    if kind == "text":
        src.write_text("hello\n" * 100)
    elif kind == "empty":
        src.write_bytes(b"")
    elif kind == "audio":
        audio_only(src)
    out = tmp_path / "out.mp4"
    r = run_cli(str(src), "-o", str(out), timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    no_leftovers(tmp_path, out)
