"""webapp.previews: which files browsers play as they are, and the copies the page shows otherwise."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from media import ROOT, make_clip, video_times
from PIL import Image

from segmentation.video import VideoSink
from webapp.previews import (CHECKER_DARK, CHECKER_LIGHT, MAX_START, checkerboard_copy, playable_copy,
                             plays_in_browsers)

# name, codec, pixel format, container: what the page's players cannot show as it is
NOT_PLAYABLE = [
    ("mpeg4.avi", "mpeg4", "yuv420p", None),
    ("h264.mkv", "libx264", "yuv420p", None),
    ("h264-10bit.mp4", "libx264", "yuv420p10le", None),
    ("h264-444.mp4", "libx264", "yuv444p", None),
    ("prores.mov", "prores", "yuv422p10le", None),
    ("h264.mov", "libx264", "yuv420p", None),
]


def _stream(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.codec_context.name, v.codec_context.pix_fmt, len(c.streams.audio)


def test_playable_files_are_shown_as_they_are(tmp_path):
    assert plays_in_browsers(make_clip(tmp_path / "h264.mp4", frames=5))
    assert plays_in_browsers(make_clip(tmp_path / "vp9.webm", frames=5, codec="libvpx-vp9"))
    assert plays_in_browsers(make_clip(tmp_path / "aac.mp4", frames=5, audio="aac"))
    assert not plays_in_browsers(tmp_path / "missing.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    assert not plays_in_browsers(tmp_path / "notes.mp4")


@pytest.mark.parametrize("name,codec,pix,fmt", NOT_PLAYABLE, ids=[c[0] for c in NOT_PLAYABLE])
def test_a_copy_browsers_play_keeps_frames_and_times(tmp_path, name, codec, pix, fmt):
    pts = [0, 40, 80, 200, 240, 280, 400, 440]  # variable gaps (ms)
    src = make_clip(tmp_path / name, frames=len(pts), pts=pts, time_base=Fraction(1, 1000), codec=codec,
                    pix_fmt=pix, fmt=fmt, audio="aac" if name.endswith(".mkv") else None)
    assert not plays_in_browsers(src)
    out = playable_copy(src, tmp_path / "preview.mp4")
    assert plays_in_browsers(out)
    assert _stream(out)[:2] == ("h264", "yuv420p")
    assert video_times(out) == pytest.approx([p / 1000 for p in pts], abs=0.002)
    if name.endswith(".mkv"):
        assert _stream(out)[2] == 1, "the audio is kept"
    with open(out, "rb") as f:  # faststart: the index (moov) before the media (mdat)
        head = f.read(4096)
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_the_classroom_gif_gets_a_copy(tmp_path):
    gif = ROOT / "examples" / "classroom.gif"
    assert not plays_in_browsers(gif)
    out = playable_copy(gif, tmp_path / "classroom.mp4")
    with Image.open(gif) as im:
        frames = im.n_frames
    assert len(video_times(out)) == frames


def test_transparent_result_over_a_checkerboard(tmp_path):
    w, h = 64, 48
    webm = tmp_path / "cut.webm"
    with VideoSink(webm, w, h, Fraction(10), Fraction(1, 1000), alpha=True) as sink:
        for i in range(6):
            rgba = np.zeros((h, w, 4), np.uint8)
            rgba[:, : w // 2] = (200, 30, 30, 255)  # an opaque left half, a transparent right half
            sink.write(rgba, i * 100)
    out = checkerboard_copy(webm, tmp_path / "shown.mp4")
    assert _stream(out)[:2] == ("h264", "yuv420p")
    assert video_times(out) == pytest.approx([i / 10 for i in range(6)], abs=0.002)
    with av.open(str(out)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(rgb[4:-4, 4:w // 2 - 4] - (200, 30, 30)).max() < 24, "the opaque part is the picture"
    right = rgb[:, w // 2 + 2:]
    assert right.min() > CHECKER_DARK - 30, "the transparent part is black, not the checkerboard"
    squares = right[2:6, 2:6].mean(), right[10:14, 2:6].mean()  # two neighbouring 8 px squares
    assert abs(squares[0] - squares[1]) > 0.6 * (CHECKER_LIGHT - CHECKER_DARK), squares


def test_a_clip_starting_late_gets_a_copy_starting_at_zero(tmp_path):
    """A clip cut out of a longer one with its timestamps kept (first frame at 30 s): Chromium plays
    it, WebKit's GStreamer player refuses it (tests/browser/test_browser_webkit.py found this)."""
    src = make_clip(tmp_path / "late.mp4", frames=5, pts=[750 + i for i in range(5)])  # 1/25 s units
    assert not plays_in_browsers(src)
    copy = playable_copy(src, tmp_path / "late_original.mp4")
    with av.open(str(copy)) as c:
        v = c.streams.video[0]
        assert float((v.start_time or 0) * v.time_base) <= MAX_START
    assert plays_in_browsers(copy)
