"""Benchmark the catalog's TFLite models and the cost of the TensorFlow path.

Usage: ``python3 benchmarks/models.py [--runs 20] [--threads N]``

Prints a markdown table: median ms per frame of ``Segmenter.predict`` for every
TFLite catalog model on a real video frame (../shared/videos), and, each
measured in a fresh subprocess, the start-up time (imports + model load), the
first segmentation and the peak RSS of

* the TFLite path: segment one image with the default model (LiteRT only), and
* the TensorFlow path: the same segmentation through ``TFRunner`` with a tiny
  SavedModel of the TF Hub Autoseg signature (so TensorFlow + TF Hub import
  and load costs are measured without network access).

Weights come from ``SEGMENTATION_WEIGHTS`` (default ../shared/models).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_common import ROOT, SHARED, interleaved, shared_video, source_frames

FRAME_VIDEO = shared_video("one-by-one-person-detection.mp4")
FRAME_INDEX = 300
IMAGE = SHARED / "images" / "bird.bmp"

# Runs in a fresh interpreter: start-up cost, first segmentation, peak RSS.
_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from segmentation import Segmenter, load_image
seg = Segmenter.create({model!r}, threads={threads})
t1 = time.perf_counter()
cm = seg.segment(load_image({image!r})).class_map
t2 = time.perf_counter()
print(json.dumps({{"load_s": t1 - t0, "first_s": t2 - t1, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "runner": type(seg.runner).__name__, "shape": list(cm.shape),
                  "tensorflow": "tensorflow" in sys.modules}}))
"""

# Writes the tiny SavedModel (outside the measured process).
_MAKE_SAVEDMODEL = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

class RedGreen(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, 512, 512, 3], tf.float32, name="images")])
    def serve(self, images):
        return {"classes": tf.where(images[..., 0] > images[..., 1], tf.constant(1, tf.int32), tf.constant(2, tf.int32))}

m = RedGreen()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.serve})
"""


def real_frame():
    for i, rgb in enumerate(source_frames(FRAME_VIDEO, FRAME_INDEX + 1)):
        if i == FRAME_INDEX:
            return rgb
    raise SystemExit(f"{FRAME_VIDEO} has fewer than {FRAME_INDEX + 1} frames")


def time_models(runs: int, threads: int) -> list[dict]:
    from segmentation import CATALOG, Segmenter
    from segmentation.catalog import TFLITE

    frame = real_frame()
    rows = []
    for entry in CATALOG.values():
        if entry.format != TFLITE:
            continue
        seg = Segmenter.create(entry.id, threads=threads)
        seg.predict(frame)  # warm-up (XNNPACK packs weights on the first run)
        times = [wall for wall, _ in interleaved({"predict": lambda: seg.predict(frame)}, runs)["predict"]]
        rows.append({"id": entry.id, "input": "x".join(map(str, seg.input_size_wh)),
                     "output": seg.runner.output_kind, "median_ms": statistics.median(times),
                     "min_ms": min(times)})
    return rows


def child(model: str, threads: int) -> dict:
    code = textwrap.dedent(_CHILD.format(model=model, threads=threads, image=str(IMAGE)))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child for {model} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    print(f"Machine: {os.cpu_count()} CPU cores; LiteRT with {args.threads} threads; "
          f"frame {FRAME_INDEX} of {FRAME_VIDEO.name}; median of {args.runs} runs after one warm-up.\n")
    print("| model | input | output | median ms/frame | min ms |")
    print("|---|---|---|---:|---:|")
    for r in time_models(args.runs, args.threads):
        print(f"| {r['id']} | {r['input']} | {r['output']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tiny_savedmodel"
        subprocess.run([sys.executable, "-c", _MAKE_SAVEDMODEL, str(folder)], check=True,
                       capture_output=True, text=True)
        lite = child("autoseg-edgetpu-xs", args.threads)
        tf = child(str(folder), args.threads)

    print("\nStart-up, each in a fresh process, segmenting bird.bmp once:\n")
    print("| path | runner | imports + model load s | first segment ms | process wall s | peak RSS MB | tensorflow imported |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, r in (("TFLite (default model)", lite), ("TensorFlow (tiny SavedModel via TF Hub)", tf)):
        print(f"| {name} | {r['runner']} | {r['load_s']:.2f} | {r['first_s'] * 1000:.0f} | {r['wall_s']:.2f} | "
              f"{r['rss_mb']:.0f} | {'yes' if r['tensorflow'] else 'no'} |")


if __name__ == "__main__":
    main()
