#!/usr/bin/env python3
"""Realtime keyframe schedules at a live camera's pace, in one process: per-frame time, model
runs, and agreement with the model's own answer on every frame.

Run from the project root::

    SEGMENTATION_WEIGHTS=../shared/models python benchmarks/live_schedules.py [--slow 3.7] [--frames 150]

A clip of the person video (640x480, from frame 300) is fed at 15 frames/s to the live view's
frame segmenter for each schedule (``clock``: the model in the frame's path; ``background``: the
model in a background thread, what the live view uses). ``--slow`` makes each model call cost that
many times as much (``SEGMENTATION_LIVE_SLOW_MODEL``'s stand-in: 3.7 is Autoseg on a 2-core AVX2
machine). A frame over the camera's 67 ms makes the browser skip a frame: the *late* column. The
agreement is with ``Segmenter.segment`` of each frame (not slowed), the share of equal pixels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation import Segmenter  # noqa: E402
from segmentation.temporal import frame_segmenter  # noqa: E402
from segmentation.video import read_frames  # noqa: E402
from webapp.live import SLOW_MODEL_ENV, slowed  # noqa: E402

FPS = 15


def frames(n: int) -> list[np.ndarray]:
    """``n`` frames of the person video from frame 300 (people in view), as the 640x480 camera."""
    out = []
    for i, f in enumerate(read_frames(ROOT.parent / "shared" / "videos" / "one-by-one-person-detection.mp4")):
        if i >= 300:
            out.append(cv2.resize(f.rgb, (640, 480), interpolation=cv2.INTER_AREA))
        if len(out) >= n:
            break
    return out


def replay(seg, clip: list[np.ndarray], schedule: str, truth: list[np.ndarray]) -> dict:
    fs = frame_segmenter(seg, "realtime", FPS, schedule=schedule)
    times, agree = [], []
    start = time.perf_counter()
    for i, rgb in enumerate(clip):
        due = start + i / FPS
        time.sleep(max(0.0, due - time.perf_counter()))
        t = time.perf_counter()
        out = fs(rgb)
        times.append(1000 * (time.perf_counter() - t))
        agree.append(float(np.mean(out.class_map == truth[i])))
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "late": sum(t > 1000 / FPS for t in times), "runs": fs.keyframes, "agreement": float(np.mean(agree))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slow", type=float, default=3.7, help="model calls cost this many times as much")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    seg = Segmenter.create("autoseg-edgetpu-xs")
    clip = frames(args.frames)
    truth = [seg.segment(f).class_map for f in clip]
    os.environ[SLOW_MODEL_ENV] = str(args.slow)
    slow = slowed(seg)
    rows = []
    for r in range(args.rounds):
        for schedule in ("clock", "background"):  # interleaved: the same machine state for both
            rows.append((r + 1, schedule, replay(slow, clip, schedule, truth)))
    print(f"model calls x{args.slow:g}, {len(clip)} frames at {FPS} fps\n")
    print("| round | schedule | median ms/frame | p95 ms/frame | frames over 67 ms | model runs | agreement |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r, s, m in rows:
        print(f"| {r} | {s} | {m['median_ms']:.1f} | {m['p95_ms']:.1f} | {m['late']} | {m['runs']} | "
              f"{m['agreement']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
