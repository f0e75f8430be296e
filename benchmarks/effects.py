"""What the background effects, label exports and output containers cost per 720p frame.

Usage: ``python3 benchmarks/effects.py [--frames 30] [--runs 40]``

Frames 300.. of one-by-one-person-detection (a person in view) scaled to
1280x720 and their class maps from the default model (so the masks are real).
Prints a markdown table of median / min ms per frame for

* ``draw.render`` in every mode (the effects with default options; replace
  also with a background image),
* each ``--labels-out`` writer's ``add`` (and the bytes it writes per frame),
* each sink's ``write`` over the clip, close included (H.264 MP4, VP9 WebM,
  VP9 WebM with alpha), at the accurate speed's preset.

Single-threaded numpy/OpenCV calls on a shared 2-core machine: compare rows
of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
os.environ.setdefault("SEGMENTATION_WEIGHTS", str(SHARED / "models"))

from segmentation import Segmenter, draw, exports, video  # noqa: E402
from segmentation.draw import DrawOptions  # noqa: E402
from segmentation.effects import EffectOptions  # noqa: E402

SIZE = (1280, 720)
FIRST = 300


def clip(n: int) -> list[np.ndarray]:
    frames = []
    for f in video.read_frames(SHARED / "videos" / "one-by-one-person-detection.mp4", FIRST + n):
        if f.index >= FIRST:
            frames.append(cv2.resize(f.rgb, SIZE, interpolation=cv2.INTER_LINEAR))
    return frames


def timed(fn, runs: int) -> tuple[float, float]:
    fn()
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t)
    return statistics.median(xs) * 1000, min(xs) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    seg = Segmenter.create()
    frames = clip(args.frames)
    maps = [seg.segment(f).class_map for f in frames]
    frame, cm = frames[0], maps[0]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        bg = Path(d) / "bg.png"
        cv2.imwrite(str(bg), cv2.resize(frames[-1], (640, 480)))
        modes = [("overlay", EffectOptions()), ("mask", EffectOptions()), ("blur-background", EffectOptions()),
                 ("replace-background", EffectOptions()), ("replace-background (image)", EffectOptions(background=bg)),
                 ("remove-background", EffectOptions())]
        for name, eff in modes:
            opts = DrawOptions(mode=name.split()[0], effect=eff).resolve(seg.labels)
            rows.append((f"render {name}", *timed(lambda: draw.render(frame, cm, seg.palette, opts), args.runs), ""))
        info = exports.ExportInfo(seg.labels, seg.palette, seg.entry.id, 30.0)
        for suffix in (".npz", ".zip", ".json"):
            path = Path(d) / f"labels{suffix}"
            w = exports.labels_writer(path, *SIZE, info)
            i = iter(range(10 ** 9))
            med, low = timed(lambda: w.add(maps[next(i) % len(maps)], 0.0), args.runs)
            w.close()
            rows.append((f"labels {suffix} add", med, low, f"{path.stat().st_size / w.frames / 1024:.1f} KiB/frame"))
        rgba = [draw.render(f, m, seg.palette, DrawOptions(mode="remove-background").resolve(seg.labels))
                for f, m in zip(frames, maps)]
        for name, alpha, pics in (("mp4", False, frames), ("webm", False, frames), ("webm", True, rgba)):
            path = Path(d) / f"out.{name}"
            t = time.perf_counter()
            with video.VideoSink(path, *SIZE, Fraction(30), Fraction(1, 30), preset="superfast", alpha=alpha) as s:
                for k, p in enumerate(pics):
                    s.write(p, k)
            ms = (time.perf_counter() - t) / len(pics) * 1000
            rows.append((f"sink {name}{' alpha' if alpha else ''} write+close", ms, ms,
                         f"{path.stat().st_size * 8 / (len(pics) / 30) / 1e6:.2f} Mbit/s"))
    print(f"1280x720, {len(frames)} frames of one-by-one-person-detection from {FIRST}, "
          f"person share {np.mean([(m == seg.labels.index('person')).mean() for m in maps]):.2f}\n")
    print("| step | median ms | min ms | note |\n|---|---:|---:|---|")
    for name, med, low, note in rows:
        print(f"| {name} | {med:.1f} | {low:.1f} | {note} |")


if __name__ == "__main__":
    main()
