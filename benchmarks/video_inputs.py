"""The video benchmark's inputs: the shared MP4s and the clips made from them (cached).

* ``clip_1280x720_30fps_20s.mp4``: 200 consecutive frames of each shared
  video, upscaled to 1280x720, H.264 at 30 fps (600 frames, two scene cuts);
* ``long_320x180_<F>fps_<M>min.mp4`` (M = 1, 10): the shared videos looped at
  320x180, for peak RSS against video length.

Generated clips are cached in a work folder (default
``$TMPDIR/segmentation-bench-inputs``), never in the project or in ``../shared``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench_common import SHARED_VIDEOS, log, scaled_frames, shared_video, write_clip

CLIP_720P = "clip_1280x720_30fps_20s.mp4"
LONG_MINUTES = (1, 10)


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "segmentation-bench-inputs"


def shared_videos() -> list[Path]:
    return [shared_video(name) for name in SHARED_VIDEOS]


def cached_clip(dst: Path, frames, count: int, fps: int) -> Path:
    """``dst`` as is when it exists, else the first ``count`` of ``frames`` encoded at ``fps``
    (H.264 crf 20, veryfast)."""
    if dst.exists():
        return dst
    t = time.perf_counter()
    write_clip(dst, frames, fps, count=count, crf=20, preset="veryfast")
    log(f"  generated {dst.name} ({count} frames, {time.perf_counter() - t:.0f} s)")
    return dst


def clip_720p(workdir: Path) -> Path:
    """200 consecutive frames of each shared video, upscaled: 600 frames = 20 s at 30 fps."""
    return cached_clip(workdir / CLIP_720P, scaled_frames(SHARED_VIDEOS, (1280, 720), 200, loop=True), 600, 30)


def long_clip(workdir: Path, minutes: int, fps: int) -> Path:
    """The shared videos looped at 320x180 for ``minutes`` at ``fps``."""
    name = f"long_320x180_{fps}fps_{minutes}min.mp4"
    return cached_clip(workdir / name, scaled_frames(SHARED_VIDEOS, (320, 180), loop=True), minutes * 60 * fps, fps)


def make_inputs(workdir: Path, long_fps: int) -> dict[str, Path]:
    """``clip720`` and ``long1`` / ``long10``, made once and cached in ``workdir``."""
    inputs = {"clip720": clip_720p(workdir)}
    for minutes in LONG_MINUTES:
        inputs[f"long{minutes}"] = long_clip(workdir, minutes, long_fps)
    return inputs


def benchmark_videos(inputs: dict[str, Path], wanted: str | None = None) -> list[Path]:
    """The shared videos and the 720p clip, or those of them named in ``wanted`` (comma list of
    names or stems)."""
    videos = shared_videos() + [inputs["clip720"]]
    if wanted:
        names = set(wanted.split(","))
        videos = [v for v in videos if v.stem in names or v.name in names]
    return videos
