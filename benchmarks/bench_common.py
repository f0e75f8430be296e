"""What the benchmarks share: paths, the shared inputs, logging, interleaved timing, clip writing.

Importing it puts the project root on ``sys.path`` (so ``segmentation`` is the
checkout's) and defaults ``SEGMENTATION_WEIGHTS`` to ``../shared/models``.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("SEGMENTATION_WEIGHTS", str(SHARED / "models"))

SHARED_VIDEOS = ("one-by-one-person-detection.mp4", "car-detection.mp4", "bottle-detection.mp4")


def shared_video(name: str) -> Path:
    return SHARED / "videos" / name


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median(xs):
    """Median of the values that are not None; None when there are none."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# -- timing ---------------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, process-CPU ms) of each call in each rep, the calls interleaved (for rep: for
    call) so that drift in the machine's load hits them alike."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append((1000 * (time.perf_counter() - t), 1000 * (time.process_time() - c)))
    return times


def median_ms(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median wall ms of each call, the calls interleaved."""
    return {k: statistics.median(w for w, _ in v) for k, v in interleaved(fns, reps).items()}


# -- inputs -----------------------------------------------------------------------------------
def source_frames(path: Path, n: int | None = None) -> Iterator:
    """RGB frames of a clip, decoded as the pipeline decodes them (``video.read_frames``)."""
    from segmentation import video

    return (f.rgb for f in video.read_frames(path, n))


def scaled_frames(names: Iterable[str], size: tuple[int, int], per_video: int | None = None,
                  loop: bool = False) -> Iterator:
    """The first ``per_video`` frames (None: all) of each shared video in turn, resized to
    ``size`` = (w, h) (INTER_LINEAR up, INTER_AREA down); ``loop``: round and round, forever."""
    import cv2

    names = tuple(names)
    while True:
        for name in names:
            for rgb in source_frames(shared_video(name), per_video):
                if (rgb.shape[1], rgb.shape[0]) != size:
                    up = size[0] > rgb.shape[1]
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)
                yield rgb
        if not loop:
            return


def write_clip(dst: Path, frames: Iterable, fps: int, count: int | None = None, crf: int = 20,
               preset: str = "veryfast", threads: int | None = None) -> Path:
    """RGB frames (the first ``count``; None: all) -> H.264 MP4 at a constant ``fps``, yuv420p,
    written to a ``.part`` file renamed into place. ``threads=1`` makes it bit-reproducible."""
    import av

    frames = iter(frames) if count is None else itertools.islice(frames, count)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    first = next(frames)
    with av.open(str(tmp), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        s.time_base = Fraction(1, fps)
        s.options = {"crf": str(crf), "preset": preset, **({"threads": str(threads)} if threads else {})}
        if threads:
            s.codec_context.thread_count = threads
        for i, rgb in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    os.replace(tmp, dst)
    return dst


# -- provenance -------------------------------------------------------------------------------
def git_commit(dirty_paths: tuple[str, ...] = ()) -> str:
    """Short HEAD commit, with a note when ``dirty_paths`` have uncommitted changes; "?" without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "?"
        dirty = bool(dirty_paths) and bool(subprocess.run(
            ["git", "status", "--porcelain", "--", *dirty_paths], cwd=ROOT, capture_output=True,
            text=True).stdout.strip())
    except OSError:
        return "?"
    return commit + (f" + uncommitted changes in {', '.join(dirty_paths)}" if dirty else "")
