"""Benchmark one long video on several processes and on Ray (issue #18).

Usage (from the project root)::

    SEGMENTATION_WEIGHTS=../shared/models python benchmarks/chunks.py [--frames 3000] [--skip-ray]

Makes (cached in ``$TMPDIR/segmentation-bench-inputs``) a 1280x720 30 fps
clip of ``--frames`` frames from the shared videos in turn (H.264 veryfast,
x264's default keyframe interval of 250, an AAC tone), then runs, each in a
fresh process (the CLI, with ``--labels-out .npz``), accurate then realtime:

* one process (``--workers 1``, 2 model threads),
* ``--workers 2`` (two chunks, two processes, one model thread each),
* ``--ray local`` (two chunks as two Ray tasks on a Ray started in the child).

Frames/s is all frames over the child's whole life (imports, model loads,
Ray's start, the index, the chunks, the stitch). Peak RSS is the largest sum
of the resident memory of the child and all its descendants (Ray's
processes included), sampled every 0.2 s. Then the outputs are compared with
the one-process output: frame count, every timestamp, the audio packets,
the class maps per frame (streamed from the .npz files). Writes
``benchmarks/results-chunks.md`` (and ``.json``). Not a test: the machine is
shared, so the numbers move with its load (printed with the results).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from bench_common import ROOT, SHARED_VIDEOS, git_commit, log, scaled_frames

WORK = Path(tempfile.gettempdir()) / "segmentation-bench-inputs"
RUNS = {"1 process": ["--workers", "1"], "--workers 2": ["--workers", "2"], "--ray local (2)": ["--ray", "local"]}


def make_clip(dst: Path, frames: int) -> Path:
    """``frames`` frames of the shared videos at 1280x720, 30 fps, with a 440 Hz AAC tone."""
    if dst.exists():
        return dst
    import av
    import numpy as np

    t = time.perf_counter()
    tmp = dst.with_name(f".{dst.name}.part")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(tmp), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        s.time_base = Fraction(1, 30)
        s.options = {"crf": "20", "preset": "veryfast"}
        a = c.add_stream("aac", rate=48000, layout="mono")
        sent = 0
        for i, rgb in enumerate(scaled_frames(SHARED_VIDEOS, (1280, 720), loop=True)):
            if i >= frames:
                break
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 30)
            c.mux(s.encode(f))
            while sent < (i + 1) * 1600:
                x = 0.2 * np.sin(2 * np.pi * 440 * np.arange(sent, sent + 1024) / 48000, dtype=np.float32)
                af = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, sent
                c.mux(a.encode(af))
                sent += 1024
        c.mux(s.encode(None))
        c.mux(a.encode(None))
    os.replace(tmp, dst)
    log(f"  made {dst.name} ({frames} frames, {time.perf_counter() - t:.0f} s)")
    return dst


PAPER = """## On paper: a two-hour 1080p30 file (216,000 frames), accurate, nodes of this size

Assumptions: a quiet 2-core node of this class makes ~30 frames/s at 1080p
with two 1-thread processes (720p single process 38-41 frames/s when the
machine is quiet, docs/quality-and-speed.md; the model's ~29 core-ms per frame do not
grow with the frame, decode/draw/encode's ~21 core-ms at 720p grow 2.25x;
two 1-thread processes gained 1.35x over one 2-thread process on short clips,
`results-batch.md`). Source ~7 GB (8 Mbit/s), output ~4 GB, shared storage
at ~100 MB/s for the driver. Chunks: 2 per node (one per process), plus 90
frames of warm-up each.

| nodes | chunks | longest chunk | index (driver) | stitch (driver) | total |
|---:|---:|---:|---:|---:|---:|
| 1 | 2 | 108,000 frames: 2.0 h | ~70 s | ~80 s (read 4 GB, write 4 GB) | ~2.05 h |
| 4 | 8 | 27,000 frames: 15 min | ~70 s | ~80 s | ~18 min |
| 16 | 32 | 6,750 frames: 3.8 min | ~70 s | ~80 s | ~6.5 min |

What limits it: on 1 node the segmentation itself (~1x real time at 1080p).
On 16 nodes the serial steps in the driver (the index pass over the source and
the remux of the output, both bound by the storage: ~40% of the total) and the
longest chunk: a straggler or a lost node (its chunk redone: +3.8 min) sets
the finish, so more, smaller chunks than processes shorten the tail at 90
frames of warm-up each. **Labels** (.npz): the chunks' compressed frames
are taken as they are, but finishing the .npz (every frame decompressed and
deflated into the zip, as a single pass does at its end too) runs in the
driver at 4.5 ms per 720p frame under load 7 (~1.3 ms on a quiet machine,
docs/quality-and-speed.md): ~10 min for 216,000 1080p frames, serial, and the writer holds
every frame compressed in memory (10-20 KB per 1080p frame: 2-4 GB). For
files this long, `--labels-out .npz` is the bound on 16 nodes; chunk-wise
label files (not built) would remove it.
The source is read once by the index and once by the chunks (each node reads
only its part, ~1 MB/s per node), so storage bandwidth is not the bound below
~100 nodes."""


def tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(src: Path, out: Path, speed: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "segmentation", str(src), "-o", str(out), "--speed", speed,
           "--labels-out", str(out.with_suffix(".npz")), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while p.poll() is None:
        peak = max(peak, tree_rss(p.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    err = p.stderr.read()
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20), "stderr": err.strip().splitlines()[-1]}


def compare(one: Path, other: Path) -> dict:
    """``other`` against the one-process output ``one``: packets, audio, class maps per frame."""
    import av
    import numpy as np

    from segmentation.stitching import npz_frames

    def packets(path):
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            pts = sorted(int(p.pts) for p in c.demux(v) if p.pts is not None)
        with av.open(str(path)) as c:
            audio = [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
        return pts, audio

    (pa, aa), (pb, ab) = packets(one), packets(other)
    agree = np.array([float(np.mean(x == y)) for x, y in zip(npz_frames(one.with_suffix(".npz")),
                                                          npz_frames(other.with_suffix(".npz")))])
    same_bytes = one.with_suffix(".npz").read_bytes() == other.with_suffix(".npz").read_bytes()
    return {"frames": [len(pa), len(pb)], "timestamps_equal": pa == pb, "audio_equal": aa == ab,
            "audio_packets": len(aa), "labels_bytes_equal": same_bytes,
            "min_pixel_agreement": float(agree.min()), "frames_not_identical": int((agree < 1).sum()),
            "frames_below_99.9": int((agree < 0.999).sum()),
            "differing_frames": [int(i) for i in np.flatnonzero(agree < 1)][:40]}


def serial_steps(src: Path, out_dir: Path) -> dict:
    """What the driver does alone, per frame: the index (read every packet), the video stitch (a
    remux of the whole output) and the .npz labels merge, timed on the one-process outputs."""
    from segmentation import Segmenter
    from segmentation.chunks import source_index
    from segmentation.exports import Timeline
    from segmentation.exports import PART_SUFFIX, labels_writer
    from segmentation.stitching import merge_labels, npz_frames, stitch_video
    from segmentation.video import probe

    one = out_dir / "accurate-1.mp4"
    n = len(source_index(src).pts)
    t = time.perf_counter()
    source_index(src)
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    stitch_video([one], [0], probe(one).time_base, src, out_dir / "restitched.mp4", 0.0, n / 30)
    stitch_s = time.perf_counter() - t
    tl = Timeline()
    tl.times.extend(i / 30 for i in range(n))
    part = out_dir / f"one{PART_SUFFIX}"  # what a chunk leaves (made here untimed)
    frames = npz_frames(one.with_suffix(".npz"))
    first = next(frames)
    with labels_writer(part, first.shape[1], first.shape[0]) as w:
        for cm in itertools.chain([first], frames):
            w.add(cm)
    t = time.perf_counter()
    merge_labels([part], out_dir / "merged.npz", Segmenter.create(), 30.0, [tl])
    labels_s = time.perf_counter() - t
    return {"index_ms_per_frame": round(1000 * index_s / n, 3), "stitch_ms_per_frame": round(1000 * stitch_s / n, 3),
            "labels_npz_merge_ms_per_frame": round(1000 * labels_s / n, 3),
            "source_mb": round(src.stat().st_size / 2**20, 1), "output_mb": round(one.stat().st_size / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--speeds", default="accurate,realtime")
    args = ap.parse_args()
    src = make_clip(WORK / f"clip_1280x720_30fps_{args.frames}f_aac.mp4", args.frames)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-chunks-"))
    runs = {k: v for k, v in RUNS.items() if not (args.skip_ray and "ray" in k)}
    results: dict = {"commit": git_commit(("segmentation",)), "cpu": platform.processor() or platform.machine(),
                     "frames": args.frames, "load_before": os.getloadavg(), "runs": {}}
    for speed in args.speeds.split(","):
        for name, extra in runs.items():
            out = out_dir / f"{speed}-{name.split()[0].strip('-')}.mp4"
            log(f"{speed}, {name} ...")
            r = run(src, out, speed, extra)
            r["frames_per_s"] = round(args.frames / r["wall_s"], 1)
            r["x_real_time"] = round(r["frames_per_s"] / 30, 2)
            r["load"] = os.getloadavg()
            results["runs"][f"{speed}, {name}"] = r
            log(f"  {r['frames_per_s']} frames/s, {r['x_real_time']}x real time, peak RSS {r['peak_rss_mb']} MB, "
                f"load {r['load'][0]:.1f}")
        one = out_dir / f"{speed}-1.mp4"
        for name in runs:
            if name != "1 process":
                out = out_dir / f"{speed}-{name.split()[0].strip('-')}.mp4"
                results["runs"][f"{speed}, {name}"]["vs_1_process"] = c = compare(one, out)
                log(f"  {name} vs 1 process: {json.dumps(c)[:400]}")
    results["serial_steps"] = serial_steps(src, out_dir)
    results["load_after"] = os.getloadavg()
    (ROOT / "benchmarks" / "results-chunks.json").write_text(json.dumps(results, indent=1))
    write_md(results)


def write_md(res: dict) -> None:
    lines = ["# One long video on 2 processes and on Ray (`benchmarks/chunks.py`)", "",
             f"Code {res['commit']}; {res['frames']} frames of 1280x720 at 30 fps; load before "
             f"{res['load_before'][0]:.1f}, after {res['load_after'][0]:.1f}.", "",
             "| speed, runner | wall s | frames/s | x real time | peak RSS MB | load | vs 1 process |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for k, r in res["runs"].items():
        c = r.get("vs_1_process")
        vs = "–" if c is None else (
            f"frames {c['frames'][1]}/{c['frames'][0]}, timestamps {'equal' if c['timestamps_equal'] else 'DIFFER'}, "
            f"audio {'equal' if c['audio_equal'] else 'DIFFERS'}, labels "
            + ("byte-identical" if c["labels_bytes_equal"] else
               f"min {c['min_pixel_agreement'] * 100:.3f}% of pixels, {c['frames_not_identical']} frames not "
               f"identical, {c['frames_below_99.9']} below 99.9%"))
        lines.append(f"| {k} | {r['wall_s']} | {r['frames_per_s']} | {r['x_real_time']} | {r['peak_rss_mb']} | "
                     f"{r['load'][0]:.1f} | {vs} |")
    st = res.get("serial_steps")
    if st:
        lines += ["", f"Serial steps in the driver, per 720p frame: index {st['index_ms_per_frame']} ms (reads "
                  f"{st['source_mb']} MB of source), video stitch {st['stitch_ms_per_frame']} ms (remux of "
                  f"{st['output_mb']} MB), .npz labels merge {st['labels_npz_merge_ms_per_frame']} ms."]
    lines += ["", PAPER]
    (ROOT / "benchmarks" / "results-chunks.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
