"""The video benchmark's measurements, each method in a fresh process.

Methods (``one``), run by ``run_one`` in a new Python process so that a run's
peak RSS is its own:

* ``model-published`` / ``model-cut``: the ceiling. Frames are decoded into
  memory first; only ``Segmenter.predict`` is timed, for the published
  fused-argmax file and for the cut model (the default).
* ``old-design``: the old design (``old_design.py``), the floor.
* ``accurate`` / ``realtime``: ``segment_video`` with the default model and
  overlay drawing, end to end (decode .. H.264 file).

Built on them: the interleaved throughput runs, realtime on the whole 720p
clip, realtime-vs-accurate agreement (labels .npz of both), cut-vs-published
agreement (in this process) and peak RSS against video length.

Run as a script it measures one method and prints the result as a JSON line::

    python3 benchmarks/video_methods.py METHOD VIDEO N [--scratch DIR] [--labels-out X.npz] [--old-format jpg]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from bench_common import ROOT, log

METHODS = ("model-published", "model-cut", "old-design", "accurate", "realtime")
PUBLISHED_ID = "autoseg-edgetpu-xs-published"
CUT_ID = "autoseg-edgetpu-xs"
RESULT_TAG = "BENCH_RESULT "


# -- process memory and CPU -----------------------------------------------------------------
def _proc_status_mb(key: str) -> float | None:
    """A memory figure from /proc/self/status (e.g. VmHWM, VmRSS) in MB, None if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM: the post-exec address space only)."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / (1024.0 * 1024.0) if sys.platform == "darwin" else ru / 1024.0


def current_rss_mb() -> float:
    rss = _proc_status_mb("VmRSS")
    return float("nan") if rss is None else rss


class Timed:
    """Wall and process-CPU seconds (all threads) of a ``with`` block."""

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c


# -- one method, in this process ---------------------------------------------------------------
def _model_alone(method: str, src: Path, limit: int | None, res: dict) -> tuple[int, Timed]:
    from segmentation import Segmenter, video

    seg = Segmenter.create(PUBLISHED_ID if method == "model-published" else CUT_ID)
    frames = [f.rgb for f in video.read_frames(src, limit)]
    res["rss_loaded_mb"] = current_rss_mb()
    seg.predict(frames[0])  # warm-up (XNNPACK packs weights on the first run)
    with Timed() as t:
        for rgb in frames:
            seg.predict(rgb)
    res["model_file"] = seg.entry.filename
    return len(frames), t


def _old_design(src: Path, limit: int | None, scratch: Path, old_format: str, res: dict) -> tuple[int, Timed]:
    from old_design import OldDesign

    from segmentation import CATALOG, weights

    old = OldDesign(weights.fetch(CATALOG[PUBLISHED_ID]), image_format=old_format)
    old.warm_up()
    res["rss_loaded_mb"] = current_rss_mb()
    work = Path(tempfile.mkdtemp(prefix="old-", dir=scratch))
    try:
        with Timed() as t:
            phases = old.process_video(src, work / "out.mp4", work, limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t.seconds = phases.pop("seconds")  # the old design's own clock (its phases add up to it)
    count = phases.pop("frames")
    res["phases_s"] = phases
    return count, t


def _pipeline(speed: str, src: Path, limit: int | None, scratch: Path, labels_out: str | None,
              res: dict) -> tuple[int, Timed]:
    from segmentation import Segmenter, VideoOptions, segment_video, video

    seg = Segmenter.create(CUT_ID)
    info = video.probe(src)
    seg.predict(np.zeros((info.height, info.width, 3), dtype=np.uint8))  # warm-up, as a loaded app has done
    res["rss_loaded_mb"] = current_rss_mb()
    out = Path(tempfile.mkdtemp(prefix="pipe-", dir=scratch)) / "out.mp4"
    try:
        with Timed() as t:
            r = segment_video(seg, src, out, VideoOptions(speed=speed, max_frames=limit), labels_out=labels_out)
        res["out_mb"] = out.stat().st_size / 1e6
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    res["keyframes"] = r.keyframes
    res["pipeline_seconds"] = r.seconds
    return r.frames, t


def one(method: str, src: Path, n: int, scratch: Path, labels_out: str | None = None,
        old_format: str = "jpg") -> dict:
    """Measure one method on the first ``n`` frames of ``src`` (0 = all); wall time excludes model load."""
    from segmentation import video

    info = video.probe(src)
    limit = n or None
    res: dict = {"method": method, "video": src.name, "source_fps": float(info.fps),
                 "size": f"{info.width}x{info.height}"}
    if method in ("model-published", "model-cut"):
        count, t = _model_alone(method, src, limit, res)
    elif method == "old-design":
        count, t = _old_design(src, limit, scratch, old_format, res)
    elif method in ("accurate", "realtime"):
        count, t = _pipeline(method, src, limit, scratch, labels_out, res)
    else:
        raise SystemExit(f"unknown method {method!r}")
    res.update(frames=count, seconds=t.seconds, fps=count / t.seconds if t.seconds else 0.0,
               cpu_ms=1000 * t.cpu / max(count, 1))
    res["rtf"] = res["fps"] / res["source_fps"] if res["source_fps"] else 0.0
    res["peak_rss_mb"] = peak_rss_mb()
    return res


# -- one method, in a fresh process ------------------------------------------------------------
def run_one(method: str, src: Path, n: int, scratch: Path, labels_out: Path | None = None,
            old_format: str = "jpg") -> dict:
    """``one`` in a fresh Python process (this file run as a script); returns its result dict."""
    cmd = [sys.executable, str(Path(__file__).resolve()), method, str(src), str(n),
           "--scratch", str(scratch), "--old-format", old_format]
    if labels_out is not None:
        cmd += ["--labels-out", str(labels_out)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f"{method} on {src.name} failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")


def throughput(videos: list[Path], methods, n: int, reps: int, scratch: Path,
               old_format: str = "jpg") -> dict[tuple[str, str], list[dict]]:
    """Every method on every video, ``reps`` times, interleaved (for rep: for video: for method)."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for rep in range(reps):
        for v in videos:
            for m in methods:
                r = run_one(m, v, n, scratch, old_format=old_format)
                runs.setdefault((v.name, m), []).append(r)
                log(f"  rep {rep + 1}/{reps} {v.name:34s} {m:16s} {r['fps']:6.1f} fps  "
                    f"rtf {r['rtf']:5.2f}  peak {r['peak_rss_mb']:6.0f} MB")
    return runs


def whole_clip(src: Path, reps: int, scratch: Path, n: int = 0) -> list[dict]:
    """Realtime on the whole of ``src`` (``n`` frames: a smoke test), ``reps`` times."""
    runs = []
    for rep in range(reps):
        r = run_one("realtime", src, n, scratch)
        runs.append(r)
        log(f"  rep {rep + 1}/{reps} {src.name} (all {r['frames']} frames) realtime "
            f"{r['fps']:6.1f} fps  rtf {r['rtf']:5.2f}  peak {r['peak_rss_mb']:6.0f} MB")
    return runs


def rss_vs_length(clips: list[Path], scratch: Path, n: int = 0) -> list[dict]:
    """Realtime on each whole clip (``n`` frames: a smoke test): RSS after load and peak."""
    rows = []
    for src in clips:
        r = run_one("realtime", src, n, scratch)
        rows.append(r)
        log(f"  {src.name:34s} {r['frames']} frames {r['fps']:.1f} fps peak {r['peak_rss_mb']:.0f} MB")
    return rows


# -- agreement -----------------------------------------------------------------------------------
def iter_npz_labels(path: Path):
    """Frames of ``labels`` in a .npz written by segment_video, one at a time (no full load)."""
    with zipfile.ZipFile(path) as z, z.open("labels.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        frame_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        for _ in range(shape[0]):
            yield np.frombuffer(f.read(frame_bytes), dtype=dtype).reshape(shape[1:])


def realtime_agreement(src: Path, n: int, scratch: Path) -> dict:
    """Per-frame pixel agreement of realtime vs accurate class maps (labels_out of both speeds)."""
    acc, rt = scratch / f"{src.stem}.accurate.npz", scratch / f"{src.stem}.realtime.npz"
    ra = run_one("accurate", src, n, scratch, labels_out=acc)
    rr = run_one("realtime", src, n, scratch, labels_out=rt)
    per_frame = [float(np.mean(a == b)) for a, b in zip(iter_npz_labels(acc), iter_npz_labels(rt))]
    # The model's own flicker: accurate's class map vs accurate's previous frame.
    flicker, prev = [], None
    for a in iter_npz_labels(acc):
        if prev is not None:
            flicker.append(float(np.mean(a == prev)))
        prev = a
    acc.unlink(missing_ok=True)
    rt.unlink(missing_ok=True)
    worst = int(np.argmin(per_frame))
    return {"video": src.name, "frames": len(per_frame), "keyframes": rr.get("keyframes"),
            "mean": float(np.mean(per_frame)), "worst": per_frame[worst], "worst_frame": worst,
            "p05": float(np.percentile(per_frame, 5)),
            "accurate_consecutive_mean": float(np.mean(flicker)) if flicker else None,
            "accurate_consecutive_worst": float(np.min(flicker)) if flicker else None,
            "accurate_fps_with_labels": ra["fps"], "realtime_fps_with_labels": rr["fps"]}


def cut_agreement(videos: list[Path], every: int, limit: int | None) -> list[dict]:
    """Cut model vs published model: class maps at frame size on every ``every``-th frame."""
    from segmentation import Segmenter, video

    pub, cut = Segmenter.create(PUBLISHED_ID), Segmenter.create(CUT_ID)
    rows = []
    for src in videos:
        vals = []
        for f in video.read_frames(src, limit):
            if f.index % every:
                continue
            a = pub.segment(f.rgb).class_map
            b = cut.segment(f.rgb).class_map
            vals.append(float(np.mean(a == b)))
        rows.append({"video": src.name, "frames": len(vals), "every": every,
                     "mean": float(np.mean(vals)), "min": float(np.min(vals)),
                     "min_frame": int(np.argmin(vals)) * every})
    return rows


# -- as a script: one measurement --------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Measure one method on one video; prints the result as JSON.")
    p.add_argument("method", choices=METHODS)
    p.add_argument("video")
    p.add_argument("n", type=int, help="first N frames (0 = all)")
    p.add_argument("--scratch", help="temporary files (default: the system's)")
    p.add_argument("--labels-out", help="pipeline methods: write the class maps here (.npz)")
    p.add_argument("--old-format", default="jpg", choices=("jpg", "png"))
    args = p.parse_args(argv)
    scratch = Path(args.scratch or tempfile.gettempdir())
    res = one(args.method, Path(args.video), args.n, scratch, args.labels_out, args.old_format)
    print(RESULT_TAG + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
