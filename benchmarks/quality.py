#!/usr/bin/env python3
"""Quality benchmark: mIoU against CamVid ground truth, temporal consistency, and what it costs.

Run from the project root::

    SEGMENTATION_WEIGHTS=../shared/models python benchmarks/quality.py [--quick] [--skip-video] [--models ID ...]

Results are printed as markdown and written to ``benchmarks/results-quality.md``
and ``.json``. CamVid (``../shared/camvid``, evaluation only) is read in place;
generated clips live in a temporary folder removed at the end.

What is measured:

1. **Image mIoU.** Every catalog TFLite model segments the 101 CamVid frames
   (480x360, one drive at 15 fps) with ``Segmenter.segment``. Model classes
   are mapped to CamVid classes by label *name* (``MAPPINGS``); other
   predictions count as "none of these" (wrong for any evaluated ground-truth
   pixel, no false positive for any class). Only the CamVid classes a model
   can name are evaluated: ground-truth pixels of the others (and void, 11)
   are left out. IoU per CamVid class = sum of intersections / sum of unions
   over all frames; mIoU = mean over the evaluated classes. Cost: median ms of
   ``segment`` per frame at 480x360, and of ``segment`` and ``predict`` (model
   alone) on a frame upscaled to 1280x720. For the default model a second row
   gives the class map as it was before edge refinement (``predict``'s
   128x128 argmax scaled up with nearest neighbour): what crisp edges are worth.
2. **Video.** ``segment_video`` with the default model, speed accurate /
   realtime x temporal off / on, on: the CamVid frames as a 15 fps H.264 clip
   (mIoU against the ground truth too), a 1280x720 30 fps clip (bottle-detection
   upscaled) and the three shared MP4s. Generated clips are encoded by libx264
   with one thread (crf 18, yuv420p), so they are bit-reproducible. These runs
   also write the labels .npz (``labels_out``) that TC and mIoU are computed
   from, which the timings include.
3. **Pace bound for accurate** (720p clip): model fps (``predict`` on decoded
   frames) and io fps (decode -> RGB -> H.264 superfast through the library's
   ``VideoSink``, no model); bound = 1 / (1/model + 1/io), i.e. the two run
   back to back; the accurate pipeline's fps (no labels .npz) is reported as
   a share of that bound.

Temporal consistency (TC) of a sequence of class maps: for each frame t >= 1,
dense optical flow from t to t-1 on the source frames (grey, resized to 320 px
wide with INTER_AREA, OpenCV DIS preset MEDIUM); the class maps of t-1 and t
are resized to that size (INTER_NEAREST), map t-1 is warped onto t with
``cv2.remap`` (nearest, border replicate), and TC_t = the fraction of pixels
where the warped map equals map t. Reported: mean over t, and the worst frame.
The CamVid ground truth's own TC (void excluded) is about 0.965: the ceiling
that flow errors and real disocclusions leave, and a sanity check of the metric.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench_common import (HERE, SHARED, SHARED_VIDEOS, git_commit, log, median_ms, scaled_frames, shared_video,
                          source_frames, write_clip)
from segmentation import DEFAULT_MODEL_ID, Segmenter, list_models, load_image, video
from segmentation.classmaps import upscale_nearest
from segmentation.pipeline import VideoOptions, segment_video

CAMVID = ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
          "pedestrian", "bicyclist")
VOID = 11  # CamVid "void": ignored
NONE = 255  # a prediction that maps to no evaluated CamVid class
GT_TC_EXPECTED = 0.965
FLOW_WIDTH = 320

# model label name -> CamVid class name, one table per label set (picked by the names it needs)
MAPPINGS = {
    "ADE20K-32": {"sky": "sky", "building": "building", "house": "building", "wall": "building",
                  "road": "road", "sidewalk": "pavement", "tree": "tree", "plant": "tree",
                  "car": "car", "person": "pedestrian"},
    "Cityscapes": {"road": "road", "sidewalk": "pavement", "building": "building", "wall": "building",
                   "fence": "fence", "pole": "pole", "traffic light": "sign", "traffic sign": "sign",
                   "vegetation": "tree", "sky": "sky", "person": "pedestrian", "car": "car",
                   "truck": "car", "bus": "car", "train": "car", "rider": "bicyclist",
                   "motorcycle": "bicyclist", "bicycle": "bicyclist"},
    "PASCAL VOC": {"person": "pedestrian", "car": "car", "bus": "car", "bicycle": "bicyclist",
                   "motorbike": "bicyclist"},
}


# -- metrics --------------------------------------------------------------------------
def camvid_mapping(labels: tuple[str, ...]) -> tuple[str, np.ndarray, list[int]]:
    """(mapping name, LUT model id -> CamVid id or NONE, evaluated CamVid ids) for a label set."""
    for name, table in MAPPINGS.items():
        if all(k in labels for k in table):
            lut = np.full(256, NONE, dtype=np.uint8)
            for i, label in enumerate(labels):
                if label in table:
                    lut[i] = CAMVID.index(table[label])
            return name, lut, sorted({CAMVID.index(v) for v in table.values()})
    raise ValueError(f"No CamVid mapping fits the labels {labels[:5]}...")


class IoU:
    """Per-class IoU over many frames (a confusion matrix of CamVid GT x mapped prediction)."""

    def __init__(self, lut: np.ndarray, evaluated: list[int]):
        self.lut, self.evaluated = lut, evaluated
        self.conf = np.zeros((VOID + 1, 256), dtype=np.int64)

    def add(self, class_map: np.ndarray, gt: np.ndarray) -> None:
        valid = np.isin(gt, self.evaluated)  # void and classes the model cannot name are left out
        idx = gt[valid].astype(np.int64) * 256 + self.lut[class_map][valid]
        self.conf += np.bincount(idx, minlength=self.conf.size).reshape(self.conf.shape)

    def per_class(self) -> dict[str, float]:
        out = {}
        for c in self.evaluated:
            inter = self.conf[c, c]
            union = self.conf[c].sum() + self.conf[:, c].sum() - inter
            out[CAMVID[c]] = float(inter / union) if union else float("nan")
        return out

    def miou(self) -> float:
        return float(np.nanmean(list(self.per_class().values())))


def _flow_gray(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (FLOW_WIDTH, max(1, round(h * FLOW_WIDTH / w)))
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)


def temporal_consistency(frames_rgb_iter, class_maps, ignore: int | None = None) -> tuple[float, float, int]:
    """(mean TC, worst TC, index of the worst frame) of class maps over their source frames.

    See the module docstring. ``ignore``: a class id (e.g. CamVid void) whose
    pixels, in either the warped or the current map, are left out.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    prev_gray = prev_cm = grid = None
    scores: list[float] = []
    for cm, rgb in zip(class_maps, frames_rgb_iter):
        gray = _flow_gray(rgb)
        h, w = gray.shape
        cm = cv2.resize(np.ascontiguousarray(cm, dtype=np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        if prev_gray is not None:
            if grid is None:
                grid = np.dstack(np.meshgrid(np.arange(w), np.arange(h))).astype(np.float32)
            flow = dis.calc(gray, prev_gray, None)
            warped = cv2.remap(prev_cm, grid + flow, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
            same = warped == cm
            if ignore is not None:
                same = same[(warped != ignore) & (cm != ignore)]
            scores.append(float(same.mean()) if same.size else float("nan"))
        prev_gray, prev_cm = gray, cm
    if not scores:
        return float("nan"), float("nan"), -1
    worst = int(np.nanargmin(scores))
    return float(np.nanmean(scores)), scores[worst], worst + 1


# -- inputs ---------------------------------------------------------------------------
def camvid_frames() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The CamVid RGB frames and their ground truth, in file-name order."""
    names = sorted(p.name for p in (SHARED / "camvid" / "val").glob("*.png"))
    rgbs = [load_image(SHARED / "camvid" / "val" / n) for n in names]
    gts = [cv2.imread(str(SHARED / "camvid" / "valannot" / n), cv2.IMREAD_UNCHANGED) for n in names]
    return rgbs, gts


def build_clips(scratch: Path, camvid_rgbs, n720: int) -> dict[str, Path]:
    """The CamVid clip and the 720p30 clip (bottle-detection upscaled), plus the shared MP4s.

    Encoded by libx264 crf 18 with one thread, so they are bit-reproducible."""
    up = scaled_frames(("bottle-detection.mp4",), (1280, 720), n720)
    clips = {"camvid": write_clip(scratch / "camvid_15fps.mp4", camvid_rgbs, 15, crf=18, threads=1),
             "720p30": write_clip(scratch / "bottle_1280x720_30fps.mp4", up, 30, crf=18, threads=1)}
    clips.update({name.removesuffix(".mp4"): shared_video(name) for name in SHARED_VIDEOS})
    return clips


# -- 1. image mIoU ----------------------------------------------------------------------
def blocky(seg: Segmenter):
    """The class map before edge refinement: the model's 128x128 argmax, scaled with nearest neighbour."""
    return lambda rgb: upscale_nearest(seg.predict(rgb), (rgb.shape[1], rgb.shape[0]))


def image_row(model_id: str, rgbs, gts, reps720: int, before: bool = False) -> dict:
    seg = Segmenter.create(model_id)
    mapping, lut, evaluated = camvid_mapping(seg.labels)
    segment = blocky(seg) if before else (lambda rgb: seg.segment(rgb).class_map)
    segment(rgbs[0])  # warm up
    iou, maps, times = IoU(lut, evaluated), [], []
    for rgb, gt in zip(rgbs, gts):
        t = time.perf_counter()
        cm = segment(rgb)
        times.append((time.perf_counter() - t) * 1000)
        iou.add(cm, gt)
        maps.append(cm)
    tc, worst, worst_i = temporal_consistency(rgbs, maps)
    big = cv2.resize(rgbs[0], (1280, 720), interpolation=cv2.INTER_LINEAR)
    ms720 = median_ms({"ms_segment_720p": lambda: segment(big), "ms_predict_720p": lambda: seg.predict(big)},
                      reps720)
    return {"model": model_id + (" (before: 128x128 argmax, nearest)" if before else ""), "mapping": mapping, "miou": iou.miou(), "iou": iou.per_class(),
            "ms_segment_480x360": statistics.median(times), "tc": tc, "tc_worst": worst, "tc_worst_frame": worst_i,
            **ms720}


# -- 2. video -------------------------------------------------------------------------
def video_options(speed: str, temporal: bool, n: int | None) -> VideoOptions:
    return VideoOptions(speed=speed, temporal=temporal, max_frames=n)


def configurations() -> list[tuple[str, bool]]:
    """(speed, temporal) pairs: both speeds, fusion off and on."""
    return [(speed, t) for speed in ("accurate", "realtime") for t in (False, True)]


def run_pipeline(seg: Segmenter, src: Path, scratch: Path, speed: str, temporal, n: int | None,
                 keep_labels: bool = True):
    """One ``segment_video`` run -> (VideoResult, wall seconds, labels uint8 [frames, h, w] or None)."""
    out, npz = scratch / "out.mp4", scratch / "labels.npz"
    t = time.perf_counter()
    r = segment_video(seg, src, out, video_options(speed, temporal, n), labels_out=npz if keep_labels else None)
    wall = time.perf_counter() - t
    labels = np.load(npz)["labels"] if keep_labels else None
    out.unlink(missing_ok=True)
    npz.unlink(missing_ok=True)
    return r, wall, labels


def video_row(seg, clip: str, src: Path, n: int | None, speed: str, temporal, scratch: Path, gts=None) -> dict:
    r, wall, labels = run_pipeline(seg, src, scratch, speed, temporal, n)
    tc, worst, worst_i = temporal_consistency(source_frames(src, n), labels)
    row = {"clip": clip, "speed": speed, "temporal": temporal, "frames": r.frames, "wall_s": wall,
           "fps": r.processing_fps, "realtime_factor": r.realtime_factor, "model_runs": r.keyframes,
           "ms_per_frame": 1000 * r.seconds / max(1, r.frames),
           "tc": tc, "tc_worst": worst, "tc_worst_frame": worst_i}
    if gts is not None:
        _, lut, evaluated = camvid_mapping(seg.labels)
        iou = IoU(lut, evaluated)
        for cm, gt in zip(labels, gts):
            iou.add(cm, gt)
        row.update(miou=iou.miou(), iou=iou.per_class())
    return row


def video_rows(clips: dict[str, Path], frames: dict[str, int | None], gts, scratch: Path) -> list[dict]:
    seg = Segmenter.create(DEFAULT_MODEL_ID)
    seg.predict(np.zeros((360, 480, 3), dtype=np.uint8))  # warm up
    rows = []
    for clip, src in clips.items():
        for speed, temporal in configurations():
            log(f"  video {clip} {speed} temporal={temporal} ({frames[clip] or 'all'} frames)")
            rows.append(video_row(seg, clip, src, frames[clip], speed, temporal, scratch,
                                  gts if clip == "camvid" else None))
    return rows


# -- 3. pace bound for accurate ------------------------------------------------------------
def pace_bound(src: Path, n: int, scratch: Path, rounds: int = 3) -> dict:
    """Model alone, io alone and the accurate pipeline (temporal off / on), interleaved over
    ``rounds`` so they share the machine's load; medians, and the bound from the medians."""
    seg = Segmenter.create(DEFAULT_MODEL_ID)
    frames = list(source_frames(src, n))
    seg.predict(frames[0])  # warm up
    info = video.probe(src)

    def model() -> float:
        t = time.perf_counter()
        for rgb in frames:
            seg.predict(rgb)
        return len(frames) / (time.perf_counter() - t)

    def io() -> float:
        t, count = time.perf_counter(), 0
        with video.VideoSink(scratch / "io.mp4", info.width, info.height, info.fps, info.time_base,
                             preset="superfast") as sink:
            for f in video.read_frames(src, n):
                sink.write(f.rgb, f.pts, f.duration)
                count += 1
        return count / (time.perf_counter() - t)

    runs = {"model": model, "io": io}
    for _, temporal in (c for c in configurations() if c[0] == "accurate"):
        runs[temporal_tag(temporal)] = (lambda t=temporal: run_pipeline(
            seg, src, scratch, "accurate", t, n, keep_labels=False)[0].processing_fps)
    fps: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            fps[name].append(fn())
    med = {k: statistics.median(v) for k, v in fps.items()}
    bound = 1 / (1 / med["model"] + 1 / med["io"])
    return {"frames": len(frames), "rounds": rounds, "model_fps": med["model"], "io_fps": med["io"],
            "bound_fps": bound, "all_fps": fps,
            "runs": [{"temporal": k, "fps": med[k], "of_bound": med[k] / bound} for k in runs if k not in ("model", "io")]}


# -- report ---------------------------------------------------------------------------
def f3(x) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def f1(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def temporal_tag(t) -> str:
    return "on" if t else "off"


def iou_cells(iou: dict) -> list[str]:
    return [f3(iou.get(c)) for c in CAMVID]


def markdown(rep: dict) -> str:
    parts = [f"# Quality benchmark\n\n`{rep['command']}`\n\n{rep['date']}, commit {rep['commit']}, "
             f"load average {rep['load']}, {os.cpu_count()} CPUs\n"]
    gt = rep.get("gt_tc")
    if gt:
        parts.append(f"CamVid ground truth's own TC: {f3(gt['tc'])} with void excluded (worst "
                     f"{f3(gt['tc_worst'])} at frame {gt['tc_worst_frame']}), {f3(gt['tc_void_counted'])} with void "
                     f"counted as a class; expected ~{GT_TC_EXPECTED}: the metric's ceiling on this drive.\n")
    img = rep.get("images", [])
    if img:
        parts.append("## 1. Images: CamVid 101 frames, `Segmenter.segment`\n")
        parts.append(table(
            ["model", "mapping", "mIoU", "TC (mean / worst)", "ms/frame 480x360", "segment 720p ms",
             "predict 720p ms"],
            [[r["model"], r["mapping"], f3(r["miou"]), f"{f3(r['tc'])} / {f3(r['tc_worst'])}",
              f1(r["ms_segment_480x360"]), f1(r["ms_segment_720p"]), f1(r["ms_predict_720p"])] for r in img]))
        parts.append("\nPer-class IoU (– = not evaluated for that label set):\n")
        parts.append(table(["model", *CAMVID], [[r["model"], *iou_cells(r["iou"])] for r in img]))
    vid = rep.get("video", [])
    if vid:
        parts.append(f"\n## 2. Video: `segment_video`, {DEFAULT_MODEL_ID}\n")
        parts.append(table(
            ["clip", "speed", "temporal", "frames", "wall s", "fps", "realtime x", "model runs", "ms/frame",
             "TC mean", "TC worst (frame)", "mIoU"],
            [[r["clip"], r["speed"], temporal_tag(r["temporal"]), r["frames"], f1(r["wall_s"]), f1(r["fps"]),
              f"{r['realtime_factor']:.2f}", r["model_runs"], f1(r["ms_per_frame"]), f3(r["tc"]),
              f"{f3(r['tc_worst'])} ({r['tc_worst_frame']})", f3(r.get("miou"))] for r in vid]))
        cam = [r for r in vid if "iou" in r]
        if cam:
            parts.append("\nPer-class IoU on the CamVid clip:\n")
            parts.append(table(["speed", "temporal", *CAMVID],
                               [[r["speed"], temporal_tag(r["temporal"]), *iou_cells(r["iou"])] for r in cam]))
    pace = rep.get("pace")
    if pace:
        parts.append(f"\n## 3. Pace bound for accurate (720p30 clip, {pace['frames']} frames, median of "
                     f"{pace['rounds']} interleaved rounds)\n")
        parts.append(f"model alone {f1(pace['model_fps'])} fps, io alone {f1(pace['io_fps'])} fps, "
                     f"bound 1/(1/model + 1/io) = {f1(pace['bound_fps'])} fps\n")
        parts.append(table(["temporal", "accurate fps", "share of bound"],
                           [[r["temporal"], f1(r["fps"]), f"{r['of_bound']:.2f}"]
                            for r in pace["runs"]]))
    return "\n".join(parts) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer frames: 100 of the 720p clip and of each MP4")
    p.add_argument("--skip-video", action="store_true", help="image mIoU only")
    p.add_argument("--models", nargs="+", metavar="ID", help="image section: these catalog ids only")
    p.add_argument("--max-frames", type=int, help="cap every clip at N frames (smoke tests)")
    p.add_argument("--output", type=Path, default=HERE / "results-quality", help="path without suffix")
    return p.parse_args(argv)


def frame_counts(args) -> tuple[dict[str, int | None], int]:
    """Frames per clip for the video section, and for the pace bound."""
    n720, mp4, pace = (100, 100, 100) if args.quick else (600, 300, 200)
    counts = {"camvid": None, "720p30": n720, **{v.removesuffix(".mp4"): mp4 for v in SHARED_VIDEOS}}
    if args.max_frames:
        counts = {k: min(v or args.max_frames, args.max_frames) for k, v in counts.items()}
        pace = min(pace, args.max_frames)
    return counts, pace


def main(argv=None) -> int:
    args = parse_args(argv)
    models = args.models or [m.id for m in list_models() if m.format == "tflite"]
    rep = {"command": " ".join(["python", "benchmarks/quality.py", *sys.argv[1:]]),
           "date": _dt.datetime.now().isoformat(timespec="seconds"), "commit": git_commit(),
           "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    rgbs, gts = camvid_frames()
    tc, worst, worst_i = temporal_consistency(rgbs, gts, ignore=VOID)
    rep["gt_tc"] = {"tc": tc, "tc_worst": worst, "tc_worst_frame": worst_i,
                    "tc_void_counted": temporal_consistency(rgbs, gts)[0]}
    log(f"CamVid ground truth TC = {tc:.3f} void excluded, {rep['gt_tc']['tc_void_counted']:.3f} void counted "
        f"(expected ~{GT_TC_EXPECTED})" + ("" if abs(tc - GT_TC_EXPECTED) < 0.02 else "  <-- WARNING: far off"))
    rep["images"] = []
    for model_id in models:
        log(f"image mIoU: {model_id}")
        rep["images"].append(image_row(model_id, rgbs, gts, reps720=10 if args.quick else 25))
        if model_id == DEFAULT_MODEL_ID:
            rep["images"].append(image_row(model_id, rgbs, gts, reps720=10 if args.quick else 25, before=True))
    if not args.skip_video:
        counts, pace_n = frame_counts(args)
        scratch = Path(tempfile.mkdtemp(prefix="seg-quality-"))
        try:
            log("building clips")
            clips = build_clips(scratch, rgbs, counts["720p30"])
            del rgbs
            rep["video"] = video_rows(clips, counts, gts, scratch)
            log("pace bound")
            rep["pace"] = pace_bound(clips["720p30"], pace_n, scratch, rounds=1 if args.quick else 3)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    md = markdown(rep)
    print(md)
    args.output.with_suffix(".md").write_text(md)
    args.output.with_suffix(".json").write_text(json.dumps(rep, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
