"""The video benchmark's report: summary rows, paired ratios, targets, the markdown tables.

The JSON report (``bench_video.py`` writes it) holds every single run; this
module turns it into the tables of ``results[-quick].md``. Targets are those of
issue #3 section 5; an ``(info)`` row is printed but never fails the run.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from bench_common import git_commit, median
from video_inputs import CLIP_720P

# Targets (issue #3 section 5)
T_ACCURATE_VS_MODEL = 0.9
T_ACCURATE_VS_OLD = 2.0
T_REALTIME_RTF = 1.0
T_REALTIME_AGREEMENT = 0.95
T_REALTIME_VS_OLD = 5.0
T_RSS_MB = 1024.0
T_RSS_FLAT_MB = 50.0
T_CUT_AGREEMENT = 0.98

METHOD_NOTES = {
    "model-published": "model alone, published file (ceiling)",
    "model-cut": "model alone, cut model (ceiling)",
    "old-design": "old design (floor)",
    "accurate": "pipeline, speed=accurate",
    "realtime": "pipeline, speed=realtime",
}


def machine_info() -> dict:
    import av
    import cv2

    try:
        import ai_edge_litert
        litert = getattr(ai_edge_litert, "__version__", "?")
    except ImportError:
        litert = "missing"
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"commit": git_commit(("segmentation/",)),
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "opencv": cv2.__version__, "pyav": av.__version__, "ai_edge_litert": litert,
            "loadavg": load}


def fmt(x, spec=".1f", none="–"):
    return none if x is None else format(x, spec)


def verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("PASS" if ok else "FAIL")


def paired_ratio(runs: dict, video: str, a: str, b: str):
    """Median over reps of fps(a)/fps(b), both measured in the same rep (interleaved)."""
    ra, rb = runs.get((video, a), []), runs.get((video, b), [])
    vals = [x["fps"] / y["fps"] for x, y in zip(ra, rb) if y["fps"]]
    return median(vals)



def summarise(runs, videos, methods) -> list[dict]:
    """One row per (video, method): medians over reps, min/max frames/s, paired ratios."""
    rows = []
    for v in videos:
        for m in methods:
            rs = runs.get((v.name, m), [])
            if not rs:
                continue
            row = {"video": v.name, "method": m, "size": rs[0]["size"], "source_fps": rs[0]["source_fps"],
                   "frames": rs[0]["frames"], "reps": len(rs),
                   "fps": median([r["fps"] for r in rs]), "fps_min": min(r["fps"] for r in rs),
                   "fps_max": max(r["fps"] for r in rs), "rtf": median([r["rtf"] for r in rs]),
                   "cpu_ms": median([r.get("cpu_ms") for r in rs]),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                   "vs_published": paired_ratio(runs, v.name, m, "model-published"),
                   "vs_cut": paired_ratio(runs, v.name, m, "model-cut"),
                   "vs_old": paired_ratio(runs, v.name, m, "old-design")}
            if "keyframes" in rs[0]:
                row["keyframe_share"] = median([r["keyframes"] / r["frames"] for r in rs])
            if "phases_s" in rs[0]:
                row["phases_ms"] = {k: 1000 * median([r["phases_s"][k] for r in rs]) / rs[0]["frames"]
                                    for k in rs[0]["phases_s"]}
            rows.append(row)
    return rows


def evaluate(summary, runs, videos, agreement, cut_rows, rss, whole=()) -> list[dict]:
    """The PASS/FAIL/info rows: {"target", "ok" (True, False or None = info), "value"}."""
    by = {(r["video"], r["method"]): r for r in summary}
    names = [v.name for v in videos]
    targets = []

    def add(name, ok, value):
        targets.append({"target": name, "ok": ok, "value": value})

    def ratio_target(name, method, key, threshold):
        """A paired ratio (``key`` of ``method``'s summary rows) >= ``threshold`` on every video."""
        pv = [(v, by[(v, method)][key]) for v in names if (v, method) in by and by[(v, method)][key] is not None]
        add(name, all(x >= threshold for _, x in pv) if pv else None,
            ", ".join(f"{Path(v).stem}: {x:.2f}x" for v, x in pv))

    ratio_target(f"accurate >= {T_ACCURATE_VS_MODEL}x published model alone (every video)", "accurate", "vs_published",
                 T_ACCURATE_VS_MODEL)
    ratio_target(f"(info) accurate vs cut-model ceiling, {T_ACCURATE_VS_MODEL}x", "accurate", "vs_cut", T_ACCURATE_VS_MODEL)
    work = []
    for v in names:
        acc, pub, cut = by.get((v, "accurate")), by.get((v, "model-published")), by.get((v, "model-cut"))
        if acc and pub and cut and acc.get("cpu_ms") and pub.get("cpu_ms") and cut.get("cpu_ms"):
            work.append(f"{Path(v).stem}: {pub['cpu_ms'] / acc['cpu_ms']:.2f}x / {cut['cpu_ms'] / acc['cpu_ms']:.2f}x")
    if work:
        add("(info) load-independent: CPU ms/frame of published / cut model alone over accurate's "
            "(>= 1 means the whole pipeline costs less CPU than the model alone)", None, ", ".join(work))
    ratio_target(f"accurate >= {T_ACCURATE_VS_OLD}x old design (every video)", "accurate", "vs_old", T_ACCURATE_VS_OLD)
    r = by.get((CLIP_720P, "realtime"))
    add(f"realtime >= {T_REALTIME_RTF}x real time on the 720p30 clip", None if r is None else r["rtf"] >= T_REALTIME_RTF,
        "–" if r is None else f"{r['fps']:.1f} fps = {r['rtf']:.2f}x (runs: "
        + ", ".join(f"{x['fps']:.1f}" for x in runs.get((CLIP_720P, "realtime"), [])) + ")")
    if whole:
        fps = median([r["fps"] for r in whole])
        rtf = median([r["rtf"] for r in whole])
        add(f"realtime >= {T_REALTIME_RTF}x real time on the whole 720p30 clip ({whole[0]['frames']} frames)",
            rtf >= T_REALTIME_RTF, f"{fps:.1f} fps = {rtf:.2f}x, {median([r['keyframes'] / r['frames'] for r in whole]) * 100:.0f}% "
            f"keyframes (runs: " + ", ".join(f"{r['fps']:.1f}" for r in whole) + ")")
    a720 = [a for a in agreement if a["video"] == CLIP_720P]
    add(f"realtime mean agreement >= {T_REALTIME_AGREEMENT} vs accurate on the 720p30 clip",
        a720[0]["mean"] >= T_REALTIME_AGREEMENT if a720 else None,
        f"mean {a720[0]['mean']:.4f}, worst frame {a720[0]['worst']:.4f}" if a720 else "–")
    ash = [a for a in agreement if a["video"] != CLIP_720P]
    add(f"realtime mean agreement >= {T_REALTIME_AGREEMENT} vs accurate on each shared video",
        all(a["mean"] >= T_REALTIME_AGREEMENT for a in ash) if ash else None,
        ", ".join(f"{Path(a['video']).stem}: {a['mean']:.4f} (worst {a['worst']:.4f})" for a in ash) or "–")
    ratio_target(f"realtime >= {T_REALTIME_VS_OLD}x old design (every video)", "realtime", "vs_old", T_REALTIME_VS_OLD)
    peaks = [(f"{r['method']} {Path(r['video']).stem}", r["peak_rss_mb"]) for r in summary
             if r["method"] in ("accurate", "realtime")] + [(f"realtime {Path(r['video']).stem}", r["peak_rss_mb"]) for r in rss]
    if peaks:
        worst = max(peaks, key=lambda p: p[1])
        add(f"pipeline peak RSS < {T_RSS_MB:.0f} MB (every pipeline run)", worst[1] < T_RSS_MB,
            f"max {worst[1]:.0f} MB ({worst[0]})")
    else:
        add(f"pipeline peak RSS < {T_RSS_MB:.0f} MB", None, "–")
    if len(rss) == 2:
        d = rss[1]["peak_rss_mb"] - rss[0]["peak_rss_mb"]
        add(f"peak RSS flat in length: 10-min minus 1-min < {T_RSS_FLAT_MB:.0f} MB (realtime)", abs(d) < T_RSS_FLAT_MB,
            f"{rss[0]['peak_rss_mb']:.0f} MB ({rss[0]['frames']} frames) -> {rss[1]['peak_rss_mb']:.0f} MB "
            f"({rss[1]['frames']} frames): {d:+.1f} MB")
    else:
        add("peak RSS flat in length", None, "–")
    if cut_rows:
        mean_all = float(np.average([c["mean"] for c in cut_rows], weights=[c["frames"] for c in cut_rows]))
        add(f"cut model agrees with published >= {T_CUT_AGREEMENT} (mean, every 10th frame)",
            all(c["mean"] >= T_CUT_AGREEMENT for c in cut_rows),
            f"overall {mean_all:.4f}; " + ", ".join(f"{Path(c['video']).stem}: {c['mean']:.4f}" for c in cut_rows))
        add(f"(info) cut model worst single frame >= {T_CUT_AGREEMENT}", all(c["min"] >= T_CUT_AGREEMENT for c in cut_rows),
            ", ".join(f"{Path(c['video']).stem}: {c['min']:.4f} (frame {c['min_frame']})" for c in cut_rows))
    return targets


def markdown(rep: dict) -> str:
    lines = header_md(rep) + throughput_md(rep) + targets_md(rep) + agreement_md(rep) + rss_md(rep)
    for p in rep["profiles"]:
        lines += profile_md(p, rep["machine"]["cpus"] or 1)
    if rep.get("micro"):
        lines += micro_md(rep["micro"])
    return "\n".join(lines) + "\n"


def header_md(rep: dict) -> list[str]:
    m = rep["machine"]
    return [
        "# Video benchmark results",
        "",
        f"Run {rep['started']}, {rep['elapsed_s'] / 60:.1f} min, code at {m.get('commit', '?')}. Machine: {m['cpus']} CPUs, {m['platform']}, "
        f"Python {m['python']}, numpy {m['numpy']}, OpenCV {m['opencv']}, PyAV {m['pyav']}, "
        f"LiteRT {m['ai_edge_litert']}. Load average at start {fmt_load(m.get('loadavg'))}, "
        f"at end {fmt_load(m.get('loadavg_end'))} (the machine was shared: compare ratios, not absolute numbers).",
        "",
        "Reproduce (from the project root):",
        "",
        "```bash",
        rep["command"],
        "```",
    ]


def throughput_md(rep: dict) -> list[str]:
    s = rep["settings"]
    lines = [
        "",
        f"## Throughput: first {s['max_frames']} frames per video, median of {s['reps']} interleaved reps",
        "",
        "Ratios are medians of per-rep ratios (both methods measured in the same rep).",
        "",
        "| video | source | method | frames/s (min–max) | real-time factor | CPU ms/frame | peak RSS MB | vs published alone | vs cut alone | vs old design |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rep["summary"]:
        extra = ""
        if "keyframe_share" in r:
            extra = f" ({r['keyframe_share'] * 100:.0f}% keyframes)"
        lines.append(
            f"| {Path(r['video']).stem} | {r['size']} @ {r['source_fps']:.2f} | {METHOD_NOTES.get(r['method'], r['method'])}{extra} "
            f"| {r['fps']:.1f} ({r['fps_min']:.1f}–{r['fps_max']:.1f}) | {r['rtf']:.2f}x | {fmt(r['cpu_ms'], '.0f')} | {r['peak_rss_mb']:.0f} "
            f"| {fmt(r['vs_published'], '.2f')}x | {fmt(r['vs_cut'], '.2f')}x | {fmt(r['vs_old'], '.1f')}x |")
    olds = [r for r in rep["summary"] if r.get("phases_ms")]
    if olds:
        lines += ["", "Old design, ms per frame by phase (median):", "",
                  "| video | split to JPEG | model | matplotlib draw + savefig | join (mp4v) |", "|---|---|---|---|---|"]
        for r in olds:
            p = r["phases_ms"]
            lines.append(f"| {Path(r['video']).stem} | {p['split_s']:.0f} | {p['model_s']:.0f} | {p['draw_s']:.0f} | {p['join_s']:.0f} |")
    return lines


def targets_md(rep: dict) -> list[str]:
    lines = ["", "## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for t in rep["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {verdict(t['ok'])} |")
    return lines


def agreement_md(rep: dict) -> list[str]:
    s, lines = rep["settings"], []
    if rep["agreement"]:
        lines += ["", f"## Realtime vs accurate: per-frame pixel agreement (first {s['agree_frames'] or 'all'} frames)", "",
                  "The last column is the model's own flicker: accurate's class map vs accurate's previous frame "
                  "(realtime carries a keyframe's answer forward, so where the model flips between classes on a "
                  "near-static shot, realtime disagrees with accurate by about that much).", "",
                  "| video | frames | keyframes | mean | 5th percentile | worst (frame) | accurate vs its previous frame: mean / worst |",
                  "|---|---|---|---|---|---|---|"]
        for a in rep["agreement"]:
            lines.append(f"| {Path(a['video']).stem} | {a['frames']} | {a['keyframes']} | {a['mean']:.4f} | {a['p05']:.4f} "
                         f"| {a['worst']:.4f} ({a['worst_frame']}) | {fmt(a.get('accurate_consecutive_mean'), '.4f')} / "
                         f"{fmt(a.get('accurate_consecutive_worst'), '.4f')} |")
    if rep["cut_agreement"]:
        lim = s["cut_frames"] or "all"
        lines += ["", f"## Cut model vs published model: class maps at frame size, every 10th frame (of {lim} frames)", "",
                  "| video | frames compared | mean agreement | min (frame) |", "|---|---|---|---|"]
        for c in rep["cut_agreement"]:
            lines.append(f"| {Path(c['video']).stem} | {c['frames']} | {c['mean']:.4f} | {c['min']:.4f} ({c['min_frame']}) |")
    return lines


def rss_md(rep: dict) -> list[str]:
    if not rep["rss_vs_length"]:
        return []
    lines = ["", f"## Peak RSS vs video length (realtime, 320x180 at {rep['settings']['long_fps']} fps, whole clip)", "",
             "| input | frames | frames/s | RSS after model load MB | peak RSS MB |", "|---|---|---|---|---|"]
    for r in rep["rss_vs_length"]:
        lines.append(f"| {r['video']} | {r['frames']} | {r['fps']:.1f} | {r['rss_loaded_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    return lines


def profile_md(p: dict, cpus: int) -> list[str]:
    total_wall = sum(v["wall_ms"] for v in p["stages"].values())
    total_cpu = sum(v["cpu_ms"] for v in p["stages"].values())
    fusion = "" if "temporal" not in p else f" (temporal fusion {'on' if p['temporal'] else 'off'})"
    lines = ["", f"## Profile: {p['speed']} pipeline stages{fusion}, sequential, {p['video']} ({p['size']}), "
             f"{p['frames']} frames, x264 preset {p.get('preset', '?')}", "",
             "CPU = process CPU time (all threads) during the stage; x264 and FFmpeg work in their own threads, "
             "so some of their CPU lands in the next stage's row.", "",
             "| stage | wall ms/frame | CPU ms/frame | share of wall |", "|---|---|---|---|"]
    for k, v in p["stages"].items():
        lines.append(f"| {k} | {v['wall_ms']:.1f} | {v['cpu_ms']:.1f} | {100 * v['wall_ms'] / total_wall:.0f}% |")
    lines.append(f"| **total** | **{total_wall:.1f}** | **{total_cpu:.1f}** | |")
    lines += ["", f"Sequential: {1000 / total_wall:.1f} frames/s. CPU-bound limit with perfect overlap on {cpus} cores: "
              f"{1000 * cpus / total_cpu:.1f} frames/s."]
    if "keyframes" in p:
        lines.append(f"Realtime: {p['keyframes']} keyframes of {p['frames']} frames; {p['keyframe_ms']:.1f} ms per keyframe, "
                     f"{p['flow_frame_ms']:.1f} ms per flow frame.")
    if p.get("encode_presets"):
        lines += ["", "x264 cost per frame for the same rendered frames (crf 23, incl. flush):", "",
                  "| preset | wall ms/frame | CPU ms/frame | kbit/s |", "|---|---|---|---|"]
        for k, v in p["encode_presets"].items():
            lines.append(f"| {k} | {v['wall_ms']:.1f} | {v['cpu_ms']:.1f} | {v['kbit_s']:.0f} |")
    return lines


def micro_md(mi: dict) -> list[str]:
    lines = ["", f"## Alternatives: per-frame cost on {mi['video']} ({mi['size']}), {mi['frames']} frames, "
             f"median of {mi['reps']} interleaved reps", "",
             "| step | wall ms/frame | CPU ms/frame |", "|---|---|---|"]
    for k, v in mi["cases"].items():
        lines.append(f"| {k} | {v['wall_ms']:.1f} | {v['cpu_ms']:.1f} |")
    a = mi["linear_vs_area_agreement"]
    lines += ["", f"Class maps from an INTER_LINEAR vs an INTER_AREA model input agree {a['mean']:.4f} on average "
              f"(min {a['min']:.4f}, {a['frames']} frames). cv2 I420 vs swscale yuv420p: mean |diff| "
              f"{mi['i420_vs_swscale_mean_abs_diff']:.3f}, max {mi['i420_vs_swscale_max_abs_diff']} (8-bit levels)."]
    return lines


def fmt_load(load) -> str:
    return "–" if not load else "/".join(f"{x:.1f}" for x in load)

