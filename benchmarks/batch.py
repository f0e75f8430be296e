"""Benchmark the batch command: one folder of clips, local pools of different shapes, and Ray.

Usage (from the project root)::

    SEGMENTATION_WEIGHTS=../shared/models python benchmarks/batch.py [--clips 12] [--reps 1] [--skip-ray]

Cuts ``--clips`` segments of 40-200 frames from the three shared MP4s
(re-encoded with PyAV, H.264, video only) into ``$TMPDIR/segmentation-bench-batch``
(cached), then runs, each in a fresh process and interleaved over reps:

* ``python -m segmentation CLIPS/ -o OUT/ --workers 1 --threads 2`` (one process, both cores for the model),
* the same with ``--workers 2 --threads 1`` (two processes, one model thread each),
* ``--ray local`` through a Ray started in the child (2 CPUs, one task per clip, 1 thread each),
  Ray's start-up timed apart.

Wall time is the child's whole life (interpreter, imports, model loads, every
clip, report); frames/s is all frames over that wall time. Writes
``benchmarks/results-batch.md`` (and ``.json``). Not a test: the machine is
shared, so numbers move with its load (printed with the results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SOURCES = ("bottle-detection.mp4", "car-detection.mp4", "one-by-one-person-detection.mp4")
sys.path.insert(0, str(ROOT))

# Ray in a child: start-up timed apart from the batch itself.
_RAY_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import ray
ray.init(num_cpus={cpus}, include_dashboard=False, log_to_driver=False)
t1 = time.perf_counter()
from segmentation.batch import run_batch
r = run_batch([{clips!r}], {out!r}, ray="local", threads={threads})
t2 = time.perf_counter()
ray.shutdown()
print(json.dumps({{"ray_start_s": t1 - t0, "batch_s": t2 - t1, "frames": r.frames, "failed": r.count("failed"),
                  "done": r.count("done"), "runner": r.runner}}))
"""


def cut_clips(n: int, folder: Path) -> list[Path]:
    """``n`` segments, 40..200 frames, from the three shared MP4s in turn, at different offsets."""
    import av
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    lengths = np.linspace(40, 200, n).round().astype(int)
    rng = np.random.default_rng(11)
    lengths = rng.permutation(lengths)
    clips = []
    for i, frames in enumerate(lengths):
        src = SHARED / "videos" / SOURCES[i % len(SOURCES)]
        dst = folder / f"{i:02d}-{src.stem}-{frames}f.mp4"
        clips.append(dst)
        if dst.exists():
            continue
        start = 30 * (i // len(SOURCES))
        tmp = dst.with_suffix(".part.mp4")
        with av.open(str(src)) as cin, av.open(str(tmp), "w") as cout:
            vin = cin.streams.video[0]
            rate = vin.average_rate or Fraction(25)
            vout = cout.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
            vout.options = {"preset": "veryfast", "crf": "20"}
            k = 0
            for j, f in enumerate(cin.decode(vin)):
                if j < start:
                    continue
                g = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
                g.pts = k
                g.time_base = Fraction(1, 1) / rate
                cout.mux(vout.encode(g))
                k += 1
                if k >= frames:
                    break
            cout.mux(vout.encode(None))
        tmp.rename(dst)
    return clips


def run(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - t, p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segmentation-bench-batch")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results-batch")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("SEGMENTATION_WEIGHTS", str(SHARED / "models"))
    clips_dir = a.workdir / f"clips-{a.clips}"
    clips = cut_clips(a.clips, clips_dir)
    from segmentation.video import probe

    total_frames = sum(probe(c).frames for c in clips)
    print(f"{len(clips)} clips, {total_frames} frames in {clips_dir}", file=sys.stderr)
    configs = [("1 process x 2 threads", ["--workers", "1", "--threads", "2"]),
               ("2 processes x 1 thread", ["--workers", "2", "--threads", "1"])]
    if not a.skip_ray:
        configs.append(("Ray local, 2 CPUs, 1 task per clip x 1 thread", None))
    rows: list[dict] = []
    for rep in range(a.reps):
        for name, flags in configs:
            out = a.workdir / "out"
            shutil.rmtree(out, ignore_errors=True)
            load0 = os.getloadavg()[0]
            if flags is not None:
                wall, p = run([sys.executable, "-m", "segmentation", str(clips_dir), "-o", f"{out}/", *flags], env)
                rep_json = json.loads((out / "batch-report.json").read_text()) if p.returncode == 0 else {}
                row = {"config": name, "rep": rep, "wall_s": wall, "rc": p.returncode,
                       "frames": rep_json.get("summary", {}).get("frames"),
                       "batch_s": rep_json.get("wall_seconds")}
            else:
                code = _RAY_CHILD.format(cpus=2, clips=str(clips_dir), out=str(out), threads=1)
                wall, p = run([sys.executable, "-c", code], env)
                info = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
                row = {"config": name, "rep": rep, "wall_s": wall, "rc": p.returncode,
                       "frames": info.get("frames"), "batch_s": info.get("batch_s"),
                       "ray_start_s": info.get("ray_start_s")}
            row["load_before"] = load0
            row["out_bytes"] = sum(f.stat().st_size for f in out.rglob("*.mp4"))
            row["workers"] = sorted({i["worker"] for i in json.loads((out / "batch-report.json").read_text())["inputs"]}
                                    if (out / "batch-report.json").exists() else [])
            row["fps_wall"] = (row["frames"] or 0) / wall
            row["fps_batch"] = (row["frames"] or 0) / row["batch_s"] if row.get("batch_s") else None
            if p.returncode != 0:
                row["stderr"] = p.stderr[-2000:]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    in_bytes = sum(c.stat().st_size for c in clips)
    a.output.with_suffix(".json").write_text(json.dumps({"clips": [c.name for c in clips], "frames": total_frames,
                                                           "in_bytes": in_bytes, "rows": rows}, indent=1))
    md = report(rows, clips, total_frames, in_bytes, a)
    a.output.with_suffix(".md").write_text(md)
    print(md)
    return 0 if all(r["rc"] == 0 for r in rows) else 1


def report(rows: list[dict], clips: list[Path], total_frames: int, in_bytes: int, a) -> str:
    import statistics

    lines = [
        "# Batch benchmark (`benchmarks/batch.py`)", "",
        f"`SEGMENTATION_WEIGHTS=../shared/models python benchmarks/batch.py --clips {a.clips} --reps {a.reps}`"
        f" on {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{len(clips)} clips cut from the three shared MP4s (40-200 frames each, {total_frames} frames, "
        "640x360 and 768x432), default model, accurate speed, overlay.", "",
        "Wall: the whole command in a fresh process (interpreter, imports, model loads, all clips, report). "
        "Batch: `run_batch` alone as the report times it (for Ray: after `ray.init`). "
        "The machine was shared with other work while this ran (load average before each run in the table; it also counts the tail of the previous run's own processes, so it says little about the other work).", "",
        "| configuration | wall s | frames/s (wall) | batch s | frames/s (batch) | Ray start s | load before |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = r["config"] + (f" (rep {r['rep']})" if a.reps > 1 else "")
        lines.append(f"| {name} | {_f(r['wall_s'])} | {_f(r['fps_wall'])} | {_f(r.get('batch_s'))} | "
                     f"{_f(r.get('fps_batch'))} | {_f(r.get('ray_start_s'))} | {r['load_before']:.2f} |")
    by = {}
    for r in rows:
        by.setdefault(r["config"], []).append(r["fps_wall"])
    best = max(by, key=lambda k: statistics.median(by[k]))
    fps = statistics.median(by[best])
    out_bytes = statistics.median(r["out_bytes"] for r in rows if r["rc"] == 0)
    kb_in, kb_out = in_bytes / total_frames / 1024, out_bytes / total_frames / 1024
    # the manifest hashes each input and output once more: both are read twice, the output written once
    per_node = fps * (2 * kb_in + 2 * kb_out) / 1024
    ray_start = [r["ray_start_s"] for r in rows if r.get("ray_start_s")]
    lines += ["", f"Fastest (median frames/s over the wall time): **{best}**.", "",
              "## Scaling on paper", "",
              f"* Throughput: one task per input, one model thread each, so a node does about "
              f"{fps:.0f} frames/s per 2 cores at these sizes (this table) and a cluster of N such nodes "
              f"N x {fps:.0f} frames/s, as long as there are at least as many inputs as cores. "
              "A video is never split: the wall time is at least the longest clip at one task's pace "
              f"(about {fps / 2:.0f} frames/s here), so a few long videos among many short ones leave cores idle "
              "at the end.",
              f"* Storage: {kb_in:.1f} kB per input frame and {kb_out:.1f} kB per output frame here (H.264, "
              "no labels); with the manifest's sha256 of input and output that is about "
              f"{per_node:.2f} MB/s of shared-storage traffic per node, so a 100 MB/s NFS server saturates near "
              f"{100 / per_node:.0f} such nodes. Bigger or less compressed inputs carry more bytes per frame "
              "and lower that count in proportion. Labels add little as .npz (class maps compress ~100x), "
              "more as .zip or .json.",
              "* Model load: once per worker process, not per task (Ray reuses its workers and the batch module "
              "keeps the loaded model; the local pool's processes live for the whole batch): ~0.4 s for the "
              "default model (docs/quality-and-speed.md), against minutes of video per worker.",
              "* Fixed costs: " + (f"Ray's own start-up took {statistics.median(ray_start):.1f} s on this loaded "
                                   "2-core machine (a standing cluster pays it once); " if ray_start else "")
              + "the driver sniffs every input and checks its manifest before submitting (milliseconds each, "
              "serial: ~10,000 inputs take tens of seconds), and Ray's own processes (raylet, GCS, agents) "
              "run on every node beside the tasks: compare the Ray rows' batch frames/s with the local pool's.",
              ]
    return "\n".join(lines) + "\n"


def _f(x, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


if __name__ == "__main__":
    sys.exit(main())
