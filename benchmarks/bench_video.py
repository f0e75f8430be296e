#!/usr/bin/env python3
"""Video benchmark: our streaming pipeline vs. the model alone vs. the old design.

Run from the project root (see benchmarks/README.md for what every column means)::

    SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py --quick
    SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py

For each input video (the three shared videos and a generated 1280x720 30 fps
clip) and each method, the first ``--max-frames`` frames are processed in a
fresh subprocess (so peak RSS is the method's own); methods run interleaved
(for rep: for video: for method), and the tables report medians over reps and
ratios paired within each rep. Methods:

* ``model-published`` / ``model-cut``: the ceiling. Frames are decoded into
  memory first, then only ``Segmenter.predict`` is timed, for the published
  fused-argmax file and for the fast cut model (the default).
* ``old-design``: the old design (benchmarks/old_design.py), the floor.
* ``accurate`` / ``realtime``: ``segmentation.pipeline.segment_video`` with the
  default model and overlay drawing, end to end (decode .. H.264 file).

Then: realtime-vs-accurate pixel agreement, cut-vs-published agreement, peak
RSS on a 1-minute vs a 10-minute input, and a per-stage profile of the
accurate (and realtime) pipeline on the 720p clip. Results go to
``benchmarks/results.md`` (``results-quick.md`` with ``--quick``) and a JSON
file beside it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
os.environ.setdefault("SEGMENTATION_WEIGHTS", str(SHARED / "models"))

import numpy as np  # noqa: E402

SHARED_VIDEOS = ("one-by-one-person-detection.mp4", "car-detection.mp4", "bottle-detection.mp4")
CLIP_720P = "clip_1280x720_30fps_20s.mp4"
METHODS = ("model-published", "model-cut", "old-design", "accurate", "realtime")
PUBLISHED_ID = "autoseg-edgetpu-xs-published"
CUT_ID = "autoseg-edgetpu-xs"
RESULT_TAG = "BENCH_RESULT "

# Targets (issue #3 section 5)
T_ACCURATE_VS_MODEL = 0.9
T_ACCURATE_VS_OLD = 2.0
T_REALTIME_RTF = 1.0
T_REALTIME_AGREEMENT = 0.95
T_REALTIME_VS_OLD = 5.0
T_RSS_MB = 1024.0
T_RSS_FLAT_MB = 50.0
T_CUT_AGREEMENT = 0.98


# -- small helpers ----------------------------------------------------------------------
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


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# -- generated inputs -------------------------------------------------------------------
def _shared_frames(size: tuple[int, int], per_video: int | None = None):
    """Frames of the shared videos in turn (forever), resized to ``size`` = (w, h)."""
    import cv2

    from segmentation import video

    while True:
        for name in SHARED_VIDEOS:
            for f in video.read_frames(SHARED / "videos" / name, per_video):
                rgb = f.rgb
                if (rgb.shape[1], rgb.shape[0]) != size:
                    up = size[0] > rgb.shape[1]
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)
                yield rgb


def write_clip(dst: Path, frames, count: int, size: tuple[int, int], fps: int,
               crf: int = 20, preset: str = "veryfast") -> Path:
    """Encode ``count`` RGB frames to an H.264 MP4 (constant ``fps``), atomically."""
    import av

    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    t = time.perf_counter()
    with av.open(str(tmp), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.time_base = Fraction(1, fps)
        s.options = {"crf": str(crf), "preset": preset}
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(next(frames), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    os.replace(tmp, dst)
    log(f"  generated {dst.name} ({count} frames, {time.perf_counter() - t:.0f} s)")
    return dst


def make_inputs(workdir: Path, long_fps: int) -> dict[str, Path]:
    """The 720p30 clip (20 s) and the 1-minute / 10-minute 320x180 clips, cached in ``workdir``."""
    inputs = {}
    # 200 consecutive frames of each shared video, upscaled: 600 frames = 20 s at 30 fps.
    inputs["clip720"] = write_clip(workdir / CLIP_720P, _shared_frames((1280, 720), 200), 600, (1280, 720), 30)
    for minutes in (1, 10):
        n = minutes * 60 * long_fps
        name = f"long_320x180_{long_fps}fps_{minutes}min.mp4"
        inputs[f"long{minutes}"] = write_clip(workdir / name, _shared_frames((320, 180)), n, (320, 180), long_fps)
    return inputs


# -- one measurement (runs in its own subprocess) ---------------------------------------
def _warm(seg, info) -> None:
    seg.predict(np.zeros((info.height, info.width, 3), dtype=np.uint8))


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def one(method: str, src: Path, n: int, scratch: Path, labels_out: str | None = None,
        old_format: str = "jpg") -> dict:
    """Measure one method on the first ``n`` frames of ``src`` (0 = all); wall time excludes model load."""
    from segmentation import video
    from segmentation.segmenter import Segmenter, SegmenterOptions

    info = video.probe(src)
    limit = n or None
    res: dict = {"method": method, "video": src.name, "source_fps": float(info.fps),
                 "size": f"{info.width}x{info.height}"}
    if method in ("model-published", "model-cut"):
        seg = Segmenter(SegmenterOptions(model=PUBLISHED_ID if method == "model-published" else CUT_ID))
        frames = [f.rgb for f in video.read_frames(src, limit)]
        res["rss_loaded_mb"] = current_rss_mb()
        seg.predict(frames[0])  # warm-up (XNNPACK packs weights on the first run)
        t, cpu = time.perf_counter(), _cpu_s()
        for rgb in frames:
            seg.predict(rgb)
        seconds, cpu = time.perf_counter() - t, _cpu_s() - cpu
        count = len(frames)
        res["model_file"] = seg.runner.path.name
    elif method == "old-design":
        from old_design import OldDesign

        from segmentation import weights
        from segmentation.catalog import CATALOG

        model_path = weights.fetch(CATALOG[PUBLISHED_ID])
        old = OldDesign(model_path, image_format=old_format)
        old.warm_up()
        res["rss_loaded_mb"] = current_rss_mb()
        work = Path(tempfile.mkdtemp(prefix="old-", dir=scratch))
        try:
            cpu = _cpu_s()
            phases = old.process_video(src, work / "out.mp4", work, limit)
            cpu = _cpu_s() - cpu
        finally:
            shutil.rmtree(work, ignore_errors=True)
        seconds, count = phases.pop("seconds"), phases.pop("frames")
        res["phases_s"] = phases
    elif method in ("accurate", "realtime"):
        from segmentation.pipeline import VideoOptions, segment_video

        seg = Segmenter(SegmenterOptions(model=CUT_ID))
        _warm(seg, info)
        res["rss_loaded_mb"] = current_rss_mb()
        out = Path(tempfile.mkdtemp(prefix="pipe-", dir=scratch)) / "out.mp4"
        try:
            t, cpu = time.perf_counter(), _cpu_s()
            r = segment_video(seg, src, out, VideoOptions(speed=method, max_frames=limit), labels_out=labels_out)
            seconds, cpu = time.perf_counter() - t, _cpu_s() - cpu
            res["out_mb"] = out.stat().st_size / 1e6
        finally:
            shutil.rmtree(out.parent, ignore_errors=True)
        count = r.frames
        res["keyframes"] = r.keyframes
        res["pipeline_seconds"] = r.seconds
    else:
        raise SystemExit(f"unknown method {method!r}")
    res.update(frames=count, seconds=seconds, fps=count / seconds if seconds else 0.0,
               cpu_ms=1000 * cpu / max(count, 1))
    res["rtf"] = res["fps"] / res["source_fps"] if res["source_fps"] else 0.0
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def run_one(method: str, src: Path, n: int, scratch: Path, labels_out: Path | None = None,
            old_format: str = "jpg") -> dict:
    """``one`` in a fresh Python process; returns its result dict."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", method, str(src), str(n),
           "--scratch", str(scratch), "--old-format", old_format]
    if labels_out is not None:
        cmd += ["--labels-out", str(labels_out)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f"{method} on {src.name} failed (rc {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")


# -- agreement ----------------------------------------------------------------------------
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
    from segmentation import video
    from segmentation.segmenter import Segmenter

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


# -- profile ------------------------------------------------------------------------------
def pipeline_preset(speed: str) -> str:
    """The x264 preset segment_video uses for ``speed`` (follows the pipeline's own setting)."""
    from segmentation import pipeline

    opt = pipeline.VideoOptions(speed=speed)
    return opt.preset or getattr(pipeline, "PRESETS", {}).get(speed) or "veryfast"


def sink_converts_rgb24() -> bool:
    """Whether VideoSink.write hands rgb24 frames to the encoder (so swscale converts to YUV)."""
    import inspect

    from segmentation import video

    try:
        src = inspect.getsource(video.VideoSink.write)
    except (OSError, TypeError):
        return True
    return 'format="rgb24"' in src or "format='rgb24'" in src



class _Clock:
    """Per-stage wall and process-CPU time accumulators."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t = self._c = 0.0

    def start(self):
        self._t, self._c = time.perf_counter(), time.process_time()

    def lap(self, stage: str):
        t, c = time.perf_counter(), time.process_time()
        self.wall[stage] = self.wall.get(stage, 0.0) + t - self._t
        self.cpu[stage] = self.cpu.get(stage, 0.0) + c - self._c
        self._t, self._c = t, c


def profile(src: Path, n: int, scratch: Path, speed: str = "accurate", presets=("veryfast",)) -> dict:
    """Sequential per-stage timing of the pipeline's work on the first ``n`` frames of ``src``."""
    from segmentation import draw, video
    from segmentation.draw import DrawOptions
    from segmentation.temporal import frame_segmenter
    from segmentation.segmenter import Segmenter, SegmenterOptions

    seg = Segmenter(SegmenterOptions(model=CUT_ID))
    info = video.probe(src)
    _warm(seg, info)
    runner = seg.runner
    interp = getattr(runner, "_interp", None)
    prop = frame_segmenter(seg, "realtime", float(info.fps)) if speed == "realtime" else None
    clock = _Clock()
    hist = np.zeros(256, dtype=np.int64)
    rendered = []
    keep = 60 if len(presets) > 1 else 0  # frames kept to compare x264 presets afterwards
    frames = keyframes = 0
    key_wall = flow_wall = 0.0
    out = scratch / f"profile-{speed}.mp4"
    preset = pipeline_preset(speed)
    with video.VideoSink(out, info.width, info.height, info.fps, info.time_base, crf=23, preset=preset) as sink:
        it = video.read_frames(src, n or None)
        clock.start()
        while True:
            f = next(it, None)
            clock.lap("decode (read_frames)")
            if f is None:
                break
            if prop is None:
                x, valid = seg._prepare(f.rgb)
                clock.lap("resize (_prepare)")
                if interp is not None:
                    xq = runner.prepare(x)
                    clock.lap("quantize (runner.prepare)")
                    interp.set_tensor(runner._in["index"], xq)
                    interp.invoke()
                    raw = interp.get_tensor(runner._out["index"])[0]
                    clock.lap("invoke (LiteRT)")
                else:
                    raw = runner(x)
                    clock.lap("invoke (runner)")
                cm = seg._to_class_map(raw, valid)
                clock.lap("postprocess (_to_class_map)")
            else:
                t = time.perf_counter()
                labels = prop(f.rgb)
                cm, is_key = labels.class_map, labels.keyframe
                dt = time.perf_counter() - t
                keyframes += is_key
                key_wall += dt if is_key else 0.0
                flow_wall += 0.0 if is_key else dt
                clock.lap("infer (frame_segmenter realtime)")
            img = draw.render(f.rgb, cm, seg.palette, DrawOptions())
            clock.lap("draw (draw.render)")
            hist += draw.class_histogram(cm)
            clock.lap("histogram")
            sink.write(img, f.pts)
            clock.lap("encode (VideoSink.write)")
            if len(rendered) < keep:
                rendered.append(img)
            frames += 1
        clock.start()
        sink.close()
        clock.lap("encoder flush (close)")
    out.unlink(missing_ok=True)
    res = {"video": src.name, "size": f"{info.width}x{info.height}", "speed": speed, "frames": frames, "preset": preset,
           "stages": {k: {"wall_ms": 1000 * clock.wall[k] / max(frames, 1), "cpu_ms": 1000 * clock.cpu[k] / max(frames, 1)}
                      for k in clock.wall}}
    if prop is not None:
        res["keyframes"] = keyframes
        res["keyframe_ms"] = 1000 * key_wall / max(keyframes, 1)
        res["flow_frame_ms"] = 1000 * flow_wall / max(frames - keyframes, 1)
    if rendered:
        res["encode_presets"] = _encode_presets(rendered, info, scratch, presets)
    return res


def _encode_presets(rendered: list, info, scratch: Path, presets) -> dict:
    """x264 cost per frame (wall, CPU incl. flush) and size for a few presets, same frames."""
    from segmentation import video

    out = {}
    for preset in presets:
        dst = scratch / f"preset-{preset}.mp4"
        t, c = time.perf_counter(), time.process_time()
        with video.VideoSink(dst, info.width, info.height, info.fps, info.time_base, crf=23, preset=preset) as sink:
            for i, img in enumerate(rendered):
                sink.write(img, i * max(1, round(1 / (info.fps * info.time_base))))
        out[preset] = {"wall_ms": 1000 * (time.perf_counter() - t) / len(rendered),
                       "cpu_ms": 1000 * (time.process_time() - c) / len(rendered),
                       "kbit_s": dst.stat().st_size * 8 / 1000 / (len(rendered) / float(info.fps))}
        dst.unlink(missing_ok=True)
    return out


def micro(src: Path, n: int, reps: int) -> dict:
    """Cost of cheaper alternatives for two per-frame steps, measured interleaved on ``src``.

    * model input: cv2 INTER_AREA (what ``Segmenter._prepare`` does when it
      shrinks by more than 2x) vs INTER_LINEAR vs letting FFmpeg's swscale
      produce the 512x512 RGB input straight from the decoded YUV frame;
    * encoder input: an rgb24 ``VideoFrame`` that libx264's stream converts to
      yuv420p (what ``VideoSink.write`` does) vs cv2.cvtColor RGB->I420 and a
      yuv420p ``VideoFrame``; both alone and inside a whole x264 encode
      (veryfast, crf 23), plus the class-map agreement of the two resizes.
    """
    import av
    import cv2

    from segmentation.segmenter import Segmenter, SegmenterOptions

    c = av.open(str(src))
    v = c.streams.video[0]
    v.thread_type = "AUTO"
    yuv_frames = []
    for f in c.decode(v):
        yuv_frames.append(f)
        if len(yuv_frames) >= n:
            break
    c.close()
    rgbs = [f.to_ndarray(format="rgb24") for f in yuv_frames]
    h, w = rgbs[0].shape[:2]
    fps = Fraction(30)

    preset = pipeline_preset("accurate")

    def encode(kind: str) -> None:
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as out:
            s = out.add_stream("libx264", rate=fps)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"crf": "23", "preset": preset}
            for i, rgb in enumerate(rgbs):
                frame = to_frame[kind](rgb)
                frame.pts = i
                frame.time_base = Fraction(1, 30)
                out.mux(s.encode(frame))
            out.mux(s.encode(None))

    to_frame = {
        "rgb24": lambda rgb: av.VideoFrame.from_ndarray(rgb, format="rgb24"),
        "i420": lambda rgb: av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p"),
    }
    seg = Segmenter(SegmenterOptions(model=CUT_ID))
    current = seg._prepare(rgbs[0])[0]
    area = cv2.resize(rgbs[0], (512, 512), interpolation=cv2.INTER_AREA)
    linear = cv2.resize(rgbs[0], (512, 512), interpolation=cv2.INTER_LINEAR)
    cur_resize = "INTER_AREA" if np.array_equal(current, area) else "INTER_LINEAR" if np.array_equal(current, linear) else "?"
    cur_yuv = "rgb24" if sink_converts_rgb24() else "other"

    def tag(cond: bool) -> str:
        return " (current)" if cond else ""

    cases = {
        f"model input: cv2.resize INTER_AREA{tag(cur_resize == 'INTER_AREA')}": lambda: [
            cv2.resize(x, (512, 512), interpolation=cv2.INTER_AREA) for x in rgbs],
        f"model input: cv2.resize INTER_LINEAR{tag(cur_resize == 'INTER_LINEAR')}": lambda: [
            cv2.resize(x, (512, 512), interpolation=cv2.INTER_LINEAR) for x in rgbs],
        "model input: swscale from YUV at decode (AREA)": lambda: [
            f.reformat(width=512, height=512, format="rgb24", interpolation="AREA").to_ndarray() for f in yuv_frames],
        "decode: VideoFrame.to_ndarray rgb24 (current)": lambda: [f.to_ndarray(format="rgb24") for f in yuv_frames],
        f"encoder input: rgb24 -> yuv420p by swscale{tag(cur_yuv == 'rgb24')}": lambda: [
            av.VideoFrame.from_ndarray(x, format="rgb24").reformat(format="yuv420p") for x in rgbs],
        "encoder input: cv2.cvtColor RGB->I420 + yuv420p VideoFrame": lambda: [to_frame["i420"](x) for x in rgbs],
        f"x264 {preset} encode, rgb24 frames{tag(cur_yuv == 'rgb24')}": lambda: encode("rgb24"),
        f"x264 {preset} encode, cv2 I420 frames": lambda: encode("i420"),
    }
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(reps):
        for k, fn in cases.items():
            t, cp = time.perf_counter(), time.process_time()
            fn()
            times[k].append((1000 * (time.perf_counter() - t) / len(rgbs), 1000 * (time.process_time() - cp) / len(rgbs)))
    agree = []
    for x in rgbs[::5]:
        a = seg.predict(cv2.resize(x, (512, 512), interpolation=cv2.INTER_AREA))
        b = seg.predict(cv2.resize(x, (512, 512), interpolation=cv2.INTER_LINEAR))
        agree.append(float(np.mean(a == b)))
    yuv_a = av.VideoFrame.from_ndarray(rgbs[0], format="rgb24").reformat(format="yuv420p").to_ndarray()
    yuv_b = cv2.cvtColor(rgbs[0], cv2.COLOR_RGB2YUV_I420)
    return {"video": src.name, "size": f"{w}x{h}", "frames": len(rgbs), "reps": reps,
            "cases": {k: {"wall_ms": median([t[0] for t in v]), "cpu_ms": median([t[1] for t in v])} for k, v in times.items()},
            "linear_vs_area_agreement": {"mean": float(np.mean(agree)), "min": float(np.min(agree)), "frames": len(agree)},
            "i420_vs_swscale_max_abs_diff": int(np.abs(yuv_a.astype(int) - yuv_b).max()),
            "i420_vs_swscale_mean_abs_diff": float(np.abs(yuv_a.astype(int) - yuv_b).mean())}


# -- the whole benchmark ------------------------------------------------------------------
def fmt(x, spec=".1f", none="–"):
    return none if x is None else format(x, spec)


def verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("PASS" if ok else "FAIL")


def paired_ratio(runs: dict, video: str, a: str, b: str):
    """Median over reps of fps(a)/fps(b), both measured in the same rep (interleaved)."""
    ra, rb = runs.get((video, a), []), runs.get((video, b), [])
    vals = [x["fps"] / y["fps"] for x, y in zip(ra, rb) if y["fps"]]
    return median(vals)


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
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "?"
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "segmentation"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "?", False
    return {"commit": commit + (" + uncommitted changes in segmentation/" if dirty else ""),
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "opencv": cv2.__version__, "pyav": av.__version__, "ai_edge_litert": litert,
            "loadavg": load}


def main_bench(args) -> int:
    quick = args.quick
    n = args.max_frames if args.max_frames is not None else (40 if quick else 100)
    reps = args.reps or (2 if quick else 3)
    agree_n = args.agree_frames if args.agree_frames is not None else (n if quick else 300)
    cut_limit = args.cut_frames if args.cut_frames is not None else (200 if quick else 0)
    long_fps = args.long_fps or (1 if quick else 2)
    prof_n = args.profile_frames or n
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    out_base = Path(args.output) if args.output else HERE / ("results-quick" if quick else "results")
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "segmentation-bench-inputs")
    scratch = Path(tempfile.mkdtemp(prefix="segbench-"))
    t_start = time.perf_counter()
    started = _dt.datetime.now().isoformat(timespec="seconds")
    machine = machine_info()
    log(f"bench_video: {n} frames/video, {reps} reps, methods {', '.join(methods)}; inputs in {workdir}")
    try:
        log("generating inputs (cached between runs) ...")
        inputs = make_inputs(workdir, long_fps)
        videos = [SHARED / "videos" / v for v in SHARED_VIDEOS] + [inputs["clip720"]]
        if args.videos:
            wanted = set(args.videos.split(","))
            videos = [v for v in videos if v.stem in wanted or v.name in wanted]

        # 1. throughput, interleaved
        runs: dict[tuple[str, str], list[dict]] = {}
        for rep in range(reps):
            for v in videos:
                for m in methods:
                    r = run_one(m, v, n, scratch, old_format=args.old_format)
                    runs.setdefault((v.name, m), []).append(r)
                    log(f"  rep {rep + 1}/{reps} {v.name:34s} {m:16s} {r['fps']:6.1f} fps  "
                        f"rtf {r['rtf']:5.2f}  peak {r['peak_rss_mb']:6.0f} MB")

        # 1b. realtime on the whole 720p clip (20 s, three scenes), not only its first frames
        whole = []
        if "realtime" in methods and inputs["clip720"] in videos and not args.skip_whole:
            for rep in range(reps):
                r = run_one("realtime", inputs["clip720"], 0, scratch)
                whole.append(r)
                log(f"  rep {rep + 1}/{reps} {inputs['clip720'].name} (all {r['frames']} frames) realtime "
                    f"{r['fps']:6.1f} fps  rtf {r['rtf']:5.2f}  peak {r['peak_rss_mb']:6.0f} MB")

        # 2. agreement realtime vs accurate
        agreement = []
        if not args.skip_agreement:
            log("agreement realtime vs accurate ...")
            for v in videos:
                a = realtime_agreement(v, agree_n, scratch)
                agreement.append(a)
                log(f"  {v.name:34s} mean {a['mean']:.4f} worst {a['worst']:.4f} ({a['frames']} frames)")

        # 3. cut model vs published
        cut_rows = []
        if not args.skip_cut:
            log("cut model vs published ...")
            cut_rows = cut_agreement([SHARED / "videos" / v for v in SHARED_VIDEOS], 10, cut_limit or None)
            for c in cut_rows:
                log(f"  {c['video']:34s} mean {c['mean']:.4f} min {c['min']:.4f} ({c['frames']} frames)")

        # 4. peak RSS vs video length
        rss = []
        if not args.skip_rss:
            log("peak RSS vs video length (realtime, whole clip) ...")
            for key in ("long1", "long10"):
                r = run_one("realtime", inputs[key], 0, scratch)
                rss.append(r)
                log(f"  {inputs[key].name:34s} {r['frames']} frames {r['fps']:.1f} fps peak {r['peak_rss_mb']:.0f} MB")

        # 5. profile
        profiles, micro_res = [], None
        if not args.skip_profile:
            log("profile on the 720p clip ...")
            presets = ("ultrafast", "superfast", "veryfast", "faster")
            profiles.append(profile(inputs["clip720"], prof_n, scratch, "accurate", presets))
            profiles.append(profile(inputs["clip720"], prof_n, scratch, "realtime"))
            log("alternatives (micro-benchmarks) on the 720p clip ...")
            micro_res = micro(inputs["clip720"], min(prof_n, 60), 3)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    elapsed = time.perf_counter() - t_start
    machine["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary = summarise(runs, videos, methods)
    targets = evaluate(summary, runs, videos, agreement, cut_rows, rss, whole)
    command = "SEGMENTATION_WEIGHTS=../shared/models python3 benchmarks/bench_video.py " + " ".join(args.argv)
    report = {"started": started, "elapsed_s": elapsed, "command": command.strip(), "machine": machine,
              "settings": {"max_frames": n, "reps": reps, "agree_frames": agree_n, "cut_frames": cut_limit,
                           "long_fps": long_fps, "profile_frames": prof_n, "old_format": args.old_format},
              "summary": summary, "runs": [r for rs in runs.values() for r in rs], "whole_clip_realtime": whole,
              "agreement": agreement,
              "cut_agreement": cut_rows, "rss_vs_length": rss, "profiles": profiles, "micro": micro_res,
              "targets": targets}
    md = markdown(report)
    print(md)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    out_base.with_suffix(".md").write_text(md)
    out_base.with_suffix(".json").write_text(json.dumps(report, indent=1))
    log(f"wrote {out_base.with_suffix('.md')} and {out_base.with_suffix('.json')} ({elapsed / 60:.1f} min)")
    return 0 if all(t["ok"] is not False for t in targets if not t["target"].startswith("(info)")) else 1


def summarise(runs, videos, methods) -> list[dict]:
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
    by = {(r["video"], r["method"]): r for r in summary}
    names = [v.name for v in videos]
    targets = []

    def add(name, ok, value):
        targets.append({"target": name, "ok": ok, "value": value})

    def all_ok(vals, thr):
        vals = [x for x in vals if x is not None]
        return (all(x >= thr for x in vals), vals) if vals else (None, vals)

    def per_video(method, key):
        return [(v, by[(v, method)][key]) for v in names if (v, method) in by and by[(v, method)][key] is not None]

    pv = per_video("accurate", "vs_published")
    ok, _ = all_ok([x for _, x in pv], T_ACCURATE_VS_MODEL)
    add(f"accurate >= {T_ACCURATE_VS_MODEL}x published model alone (every video)", ok,
        ", ".join(f"{Path(v).stem}: {x:.2f}x" for v, x in pv))
    pv = per_video("accurate", "vs_cut")
    ok, _ = all_ok([x for _, x in pv], T_ACCURATE_VS_MODEL)
    add(f"(info) accurate vs cut-model ceiling, {T_ACCURATE_VS_MODEL}x", ok,
        ", ".join(f"{Path(v).stem}: {x:.2f}x" for v, x in pv))
    work = []
    for v in names:
        acc, pub, cut = by.get((v, "accurate")), by.get((v, "model-published")), by.get((v, "model-cut"))
        if acc and pub and cut and acc.get("cpu_ms") and pub.get("cpu_ms") and cut.get("cpu_ms"):
            work.append(f"{Path(v).stem}: {pub['cpu_ms'] / acc['cpu_ms']:.2f}x / {cut['cpu_ms'] / acc['cpu_ms']:.2f}x")
    if work:
        add("(info) load-independent: CPU ms/frame of published / cut model alone over accurate's "
            "(>= 1 means the whole pipeline costs less CPU than the model alone)", None, ", ".join(work))
    pv = per_video("accurate", "vs_old")
    ok, _ = all_ok([x for _, x in pv], T_ACCURATE_VS_OLD)
    add(f"accurate >= {T_ACCURATE_VS_OLD}x old design (every video)", ok,
        ", ".join(f"{Path(v).stem}: {x:.2f}x" for v, x in pv))
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
    pv = per_video("realtime", "vs_old")
    ok, _ = all_ok([x for _, x in pv], T_REALTIME_VS_OLD)
    add(f"realtime >= {T_REALTIME_VS_OLD}x old design (every video)", ok,
        ", ".join(f"{Path(v).stem}: {x:.2f}x" for v, x in pv))
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


METHOD_NOTES = {
    "model-published": "model alone, published file (ceiling)",
    "model-cut": "model alone, cut model (ceiling)",
    "old-design": "old design (floor)",
    "accurate": "pipeline, speed=accurate",
    "realtime": "pipeline, speed=realtime",
}


def markdown(rep: dict) -> str:
    s, m = rep["settings"], rep["machine"]
    lines = [
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
    lines += ["", "## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for t in rep["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {verdict(t['ok'])} |")
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
    if rep["rss_vs_length"]:
        lines += ["", f"## Peak RSS vs video length (realtime, 320x180 at {s['long_fps']} fps, whole clip)", "",
                  "| input | frames | frames/s | RSS after model load MB | peak RSS MB |", "|---|---|---|---|---|"]
        for r in rep["rss_vs_length"]:
            lines.append(f"| {r['video']} | {r['frames']} | {r['fps']:.1f} | {r['rss_loaded_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    for p in rep["profiles"]:
        total_wall = sum(v["wall_ms"] for v in p["stages"].values())
        total_cpu = sum(v["cpu_ms"] for v in p["stages"].values())
        lines += ["", f"## Profile: {p['speed']} pipeline stages, sequential, {p['video']} ({p['size']}), {p['frames']} frames, "
                  f"x264 preset {p.get('preset', '?')}", "",
                  "CPU = process CPU time (all threads) during the stage; x264 and FFmpeg work in their own threads, "
                  "so some of their CPU lands in the next stage's row.", "",
                  "| stage | wall ms/frame | CPU ms/frame | share of wall |", "|---|---|---|---|"]
        for k, v in p["stages"].items():
            lines.append(f"| {k} | {v['wall_ms']:.1f} | {v['cpu_ms']:.1f} | {100 * v['wall_ms'] / total_wall:.0f}% |")
        cpus = m["cpus"] or 1
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
    mi = rep.get("micro")
    if mi:
        lines += ["", f"## Alternatives: per-frame cost on {mi['video']} ({mi['size']}), {mi['frames']} frames, "
                  f"median of {mi['reps']} interleaved reps", "",
                  "| step | wall ms/frame | CPU ms/frame |", "|---|---|---|"]
        for k, v in mi["cases"].items():
            lines.append(f"| {k} | {v['wall_ms']:.1f} | {v['cpu_ms']:.1f} |")
        a = mi["linear_vs_area_agreement"]
        lines += ["", f"Class maps from an INTER_LINEAR vs an INTER_AREA model input agree {a['mean']:.4f} on average "
                  f"(min {a['min']:.4f}, {a['frames']} frames). cv2 I420 vs swscale yuv420p: mean |diff| "
                  f"{mi['i420_vs_swscale_mean_abs_diff']:.3f}, max {mi['i420_vs_swscale_max_abs_diff']} (8-bit levels)."]
    return "\n".join(lines) + "\n"


def fmt_load(load) -> str:
    return "–" if not load else "/".join(f"{x:.1f}" for x in load)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few frames and reps (~5 min): 40 frames, 2 reps")
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
    p.add_argument("--one", nargs=3, metavar=("METHOD", "VIDEO", "N"), help="internal: measure one method, print JSON")
    p.add_argument("--scratch", help=argparse.SUPPRESS)
    p.add_argument("--labels-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = [a for a in argv]
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.one:
        method, src, n = args.one
        scratch = Path(args.scratch or tempfile.gettempdir())
        res = one(method, Path(src), int(n), scratch, args.labels_out, args.old_format)
        print(RESULT_TAG + json.dumps(res), flush=True)
        return 0
    return main_bench(args)


if __name__ == "__main__":
    sys.exit(main())
