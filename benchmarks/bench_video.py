#!/usr/bin/env python3
"""Video benchmark: our streaming pipeline vs. the model alone vs. the old design.

Run from the project root (see benchmarks/README.md for what every column means)::

    SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py --quick
    SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py

For each input video (the three shared videos and a generated 1280x720 30 fps
clip) and each method, the first ``--max-frames`` frames are processed in a
fresh subprocess (so peak RSS is the method's own); methods run interleaved
(for rep: for video: for method), and the tables report medians over reps and
ratios paired within each rep. Then: realtime on the whole 720p clip,
realtime-vs-accurate pixel agreement, cut-vs-published agreement, peak RSS on
a 1-minute vs a 10-minute input, and a per-stage profile of the pipeline on
the 720p clip. Results go to ``benchmarks/results.md`` (``results-quick.md``
with ``--quick``) and a JSON file beside it.

This file is the entry point; the work is in video_inputs.py (the clips),
video_methods.py (the measurements), video_profile.py (stages and
alternatives) and video_report.py (tables and targets).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_common import HERE, log
import video_inputs
import video_methods
import video_profile
import video_report
from video_methods import METHODS

PRESETS_COMPARED = ("ultrafast", "superfast", "veryfast", "faster")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few frames and reps (~5 min): 40 frames, 2 reps")
    p.add_argument("--frames", type=int, metavar="N",
                   help="smoke test: N frames for every run and scan, including the whole-clip and long-clip "
                        "runs (results not comparable; written to $TMPDIR/segmentation-bench-smoke unless --output)")
    p.add_argument("--max-frames", type=int, help="frames per video per method (default 100; quick 40)")
    p.add_argument("--reps", type=int, help="interleaved repetitions (default 3; quick 2)")
    p.add_argument("--agree-frames", type=int, help="frames for realtime-vs-accurate agreement (default 300; 0 = all)")
    p.add_argument("--cut-frames", type=int, help="frames scanned for cut-vs-published agreement (default 0 = all)")
    p.add_argument("--long-fps", type=int, help="frame rate of the 1-/10-minute RSS clips (default 2; quick 1)")
    p.add_argument("--profile-frames", type=int, help="frames profiled (default = --max-frames)")
    p.add_argument("--methods", help=f"comma list of methods (default all: {','.join(METHODS)})")
    p.add_argument("--videos", help="comma list of video names/stems to benchmark (default all four)")
    p.add_argument("--old-format", default="jpg", choices=("jpg", "png"), help="old design savefig format")
    p.add_argument("--workdir", help="where generated inputs are cached (default: $TMPDIR/segmentation-bench-inputs)")
    p.add_argument("--output", help="results path without suffix (default benchmarks/results[-quick])")
    p.add_argument("--skip-agreement", action="store_true")
    p.add_argument("--skip-cut", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--skip-profile", action="store_true")
    p.add_argument("--skip-whole", action="store_true", help="skip realtime on the whole 720p clip")
    p.add_argument("--one", nargs=3, metavar=("METHOD", "VIDEO", "N"),
                   help="internal: measure one method, print JSON (as video_methods.py METHOD VIDEO N)")
    p.add_argument("--scratch", help=argparse.SUPPRESS)
    p.add_argument("--labels-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(argv)
    return args


def settings(args) -> dict:
    """Frame counts and reps from the flags (``--quick`` and ``--frames`` change the defaults)."""
    quick, smoke = args.quick, args.frames
    n = args.max_frames if args.max_frames is not None else (smoke or (40 if quick else 100))
    return {"max_frames": n,
            "reps": args.reps or (1 if smoke else 2 if quick else 3),
            "agree_frames": args.agree_frames if args.agree_frames is not None else (smoke or (n if quick else 300)),
            "cut_frames": args.cut_frames if args.cut_frames is not None else (smoke or (200 if quick else 0)),
            "long_fps": args.long_fps or (1 if quick or smoke else 2),
            "profile_frames": args.profile_frames or n,
            "old_format": args.old_format,
            **({"smoke_frames": smoke} if smoke else {})}


def output_base(args) -> Path:
    if args.output:
        return Path(args.output)
    if args.frames:
        return Path(tempfile.gettempdir()) / "segmentation-bench-smoke"
    return HERE / ("results-quick" if args.quick else "results")


def measure(args, s: dict, workdir: Path, scratch: Path) -> dict:
    """Every part of the benchmark that the flags leave in; the report's measured sections."""
    n, reps, smoke = s["max_frames"], s["reps"], args.frames or 0
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    log(f"bench_video: {n} frames/video, {reps} reps, methods {', '.join(methods)}; inputs in {workdir}")
    log("generating inputs (cached between runs) ...")
    inputs = video_inputs.make_inputs(workdir, s["long_fps"])
    videos = video_inputs.benchmark_videos(inputs, args.videos)
    clip720 = inputs["clip720"]
    out = {"methods": methods, "videos": videos, "whole": [], "agreement": [], "cut": [], "rss": [],
           "profiles": [], "micro": None}

    # 1. throughput, interleaved; 1b. realtime on the whole 720p clip (20 s, three scenes)
    out["runs"] = video_methods.throughput(videos, methods, n, reps, scratch, args.old_format)
    if "realtime" in methods and clip720 in videos and not args.skip_whole:
        out["whole"] = video_methods.whole_clip(clip720, reps, scratch, smoke)
    # 2. agreement realtime vs accurate
    if not args.skip_agreement:
        log("agreement realtime vs accurate ...")
        for v in videos:
            a = video_methods.realtime_agreement(v, s["agree_frames"], scratch)
            out["agreement"].append(a)
            log(f"  {v.name:34s} mean {a['mean']:.4f} worst {a['worst']:.4f} ({a['frames']} frames)")
    # 3. cut model vs published
    if not args.skip_cut:
        log("cut model vs published ...")
        out["cut"] = video_methods.cut_agreement(video_inputs.shared_videos(), 10, s["cut_frames"] or None)
        for c in out["cut"]:
            log(f"  {c['video']:34s} mean {c['mean']:.4f} min {c['min']:.4f} ({c['frames']} frames)")
    # 4. peak RSS vs video length
    if not args.skip_rss:
        log("peak RSS vs video length (realtime, whole clip) ...")
        out["rss"] = video_methods.rss_vs_length([inputs[f"long{m}"] for m in video_inputs.LONG_MINUTES], scratch, smoke)
    # 5. profile and alternatives
    if not args.skip_profile:
        log("profile on the 720p clip ...")
        pn = s["profile_frames"]
        out["profiles"] = [
            video_profile.profile(clip720, pn, scratch, "accurate", temporal=False, split=True, presets=PRESETS_COMPARED),
            video_profile.profile(clip720, pn, scratch, "accurate", temporal=True),
            video_profile.profile(clip720, pn, scratch, "realtime", temporal=True)]
        log("alternatives (micro-benchmarks) on the 720p clip ...")
        out["micro"] = video_profile.micro(clip720, min(pn, 60), 3, scratch)
    return out


def main_bench(args) -> int:
    s = settings(args)
    out_base = output_base(args)
    workdir = Path(args.workdir) if args.workdir else video_inputs.default_workdir()
    scratch = Path(tempfile.mkdtemp(prefix="segbench-"))
    t_start = time.perf_counter()
    started = _dt.datetime.now().isoformat(timespec="seconds")
    machine = video_report.machine_info()
    try:
        m = measure(args, s, workdir, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    elapsed = time.perf_counter() - t_start
    machine["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    runs = m["runs"]
    summary = video_report.summarise(runs, m["videos"], m["methods"])
    targets = video_report.evaluate(summary, runs, m["videos"], m["agreement"], m["cut"], m["rss"], m["whole"])
    command = "SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py " + " ".join(args.argv)
    report = {"started": started, "elapsed_s": elapsed, "command": command.strip(), "machine": machine,
              "settings": s, "summary": summary, "runs": [r for rs in runs.values() for r in rs],
              "whole_clip_realtime": m["whole"], "agreement": m["agreement"], "cut_agreement": m["cut"],
              "rss_vs_length": m["rss"], "profiles": m["profiles"], "micro": m["micro"], "targets": targets}
    md = video_report.markdown(report)
    print(md)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    out_base.with_suffix(".md").write_text(md)
    out_base.with_suffix(".json").write_text(json.dumps(report, indent=1))
    log(f"wrote {out_base.with_suffix('.md')} and {out_base.with_suffix('.json')} ({elapsed / 60:.1f} min)")
    return 0 if all(t["ok"] is not False for t in targets if not t["target"].startswith("(info)")) else 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one:
        method, src, n = args.one
        extra = ["--old-format", args.old_format] + (["--scratch", args.scratch] if args.scratch else []) + (
            ["--labels-out", args.labels_out] if args.labels_out else [])
        return video_methods.main([method, src, n, *extra])
    return main_bench(args)


if __name__ == "__main__":
    sys.exit(main())
