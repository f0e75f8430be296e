#!/usr/bin/env python3
"""People: person IoU on ``../shared/people``, the matte's temporal consistency, and what it costs.

Run from the project root::

    SEGMENTATION_WEIGHTS=../shared/models python benchmarks/people.py [--baseline DIR] [--frames 300]

1. **Person IoU** on the 145 photos of ``../shared/people`` (evaluation only:
   never shipped). For each photo, a person mask from each single model
   (its ``person`` class; the selfie models: probability > 0.5), today's
   ``remove-background`` cut-out before the matte (the Autoseg ``person``
   class, feathered) and the library's ``remove-background`` with each
   ``--matte`` source; a cut-out is its alpha > 127. Each mask is scaled to
   the ground truth's size (the masks are smaller than some photos) and the
   IoU of the person pixels is averaged over the photos; also over the even
   and the odd photos apart (a check that one half does not carry the mean).
   ms per photo beside each.
2. **Temporal consistency** of the video matte thresholded at 0.5 (alpha >
   127), with ``benchmarks/quality.py``'s definition, on the person video and
   on the live benchmark's camera clip (the same footage from frame 300 at
   640x480), accurate and realtime.
3. **The overlay's people** (item 4 of the issue): the semantic map's
   ``person`` with the video matte put in (person where the matte says so,
   else the best other class) against the model alone: person IoU on the
   photos and CamVid image mIoU, with the cost in ms per frame.
4. **Speed** of person-effect jobs: ``python -m segmentation SRC -o OUT --mode
   blur-background`` on the person video and on the 720p clip, this checkout
   against ``--baseline`` (a checkout of earlier code), interleaved rounds,
   median frames/s.

Writes ``benchmarks/results-people.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import SHARED, git_commit, log, shared_video, source_frames  # noqa: E402
from quality import IoU, camvid_frames, camvid_mapping, temporal_consistency  # noqa: E402

from segmentation import Segmenter, load_image  # noqa: E402
from segmentation.draw import DrawOptions, Mode  # noqa: E402
from segmentation.effects import BackgroundEffect, Effect, default_foreground  # noqa: E402
from segmentation.matte import MatteSource, PersonMatte, person_ids  # noqa: E402
from segmentation.pipeline import MATTE_MODEL_EVERY, segment_image  # noqa: E402
from segmentation.temporal import frame_segmenter  # noqa: E402

PEOPLE = SHARED / "people"
SINGLE = ("selfie-segmentation", "selfie-segmentation-landscape", "deeplabv3-pascal", "deeplabv3-pascal-dm05",
          "autoseg-edgetpu-xs")
PERSON_VIDEO = "one-by-one-person-detection.mp4"


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.count_nonzero(pred | gt)
    return np.count_nonzero(pred & gt) / union if union else 1.0


def at_gt(mask_or_alpha: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """A uint8 mask/alpha (255 = person) scaled to the ground truth's size, > 127."""
    h, w = gt.shape
    a = mask_or_alpha if mask_or_alpha.shape == gt.shape else cv2.resize(mask_or_alpha, (w, h), cv2.INTER_LINEAR)
    return a > 127


def photos() -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for img in sorted((PEOPLE / "images").glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        gt = cv2.imread(str(PEOPLE / "masks" / f"{img.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        out.append((img.stem, load_image(img), gt))
    return out


def photo_rows(items) -> list[dict]:
    """One row per method: mean IoU over all photos, the even and the odd ones, and ms per photo."""
    methods = {}
    for mid in SINGLE:
        seg = Segmenter.create(mid)
        ids = person_ids(seg.labels)
        methods[mid] = (lambda rgb, seg=seg, ids=ids:
                        np.isin(seg.segment(rgb).class_map, ids).astype(np.uint8) * 255)
    auto = Segmenter.create()
    fg = default_foreground(auto.labels)
    before = BackgroundEffect(Effect.REMOVE, fg)  # the class-map cut-out (no matte): today's default
    methods["before: remove-background (Autoseg person, feathered)"] = (
        lambda rgb: before(rgb, auto.segment(rgb).class_map)[..., 3])
    for src in MatteSource:
        opts = DrawOptions(mode=Mode.REMOVE_BACKGROUND, matte=src)
        methods[f"remove-background --matte {src}"] = (
            lambda rgb, opts=opts: segment_image(auto, rgb, opts).rendered[..., 3])
    rows = []
    for name, fn in methods.items():
        fn(items[0][1])  # warm-up (loads the matte's models)
        ious, ms = [], []
        for _, rgb, gt in items:
            t = time.perf_counter()
            alpha = fn(rgb)
            ms.append(1000 * (time.perf_counter() - t))
            ious.append(iou(at_gt(alpha, gt), gt))
        rows.append({"method": name, "iou": float(np.mean(ious)), "iou_even": float(np.mean(ious[0::2])),
                     "iou_odd": float(np.mean(ious[1::2])), "ms": statistics.median(ms)})
        log(f"  {name}: IoU {rows[-1]['iou']:.3f} ({rows[-1]['ms']:.0f} ms)")
    return rows


def with_matte(seg: Segmenter, matte: PersonMatte, rgb: np.ndarray) -> np.ndarray:
    """The class map with the matte as its person: the person score set to the best other class's
    plus the matte's logit (in score units), so the argmax is person exactly where the matte is."""
    scores = seg.scores(rgb)
    ids = person_ids(seg.labels)
    logit = cv2.resize(matte.logits(rgb, scores), (scores.shape[1], scores.shape[0]), interpolation=cv2.INTER_AREA)
    others = np.delete(scores, ids, axis=-1).max(axis=-1)
    scores = scores.copy()
    scores[..., ids[0]] = others + logit / seg.runner.score_scale
    return seg.labels_from_scores(scores, (rgb.shape[1], rgb.shape[0]))


def overlay_rows(items) -> list[dict]:
    """Person IoU (photos) and CamVid mIoU of the default model's map, alone and with the video matte."""
    seg = Segmenter.create()
    matte = PersonMatte(seg)  # the video weights: what an overlay job could afford per frame
    ids = person_ids(seg.labels)
    methods = {"model alone": lambda rgb: seg.segment(rgb).class_map,
               "model + video matte as its person": lambda rgb: with_matte(seg, matte, rgb)}
    rgbs, gts = camvid_frames()
    _, lut, evaluated = camvid_mapping(seg.labels)
    rows = []
    for name, fn in methods.items():
        fn(rgbs[0])
        ious = [iou(at_gt(np.isin(fn(rgb), ids).astype(np.uint8) * 255, gt), gt) for _, rgb, gt in items]
        acc, ms = IoU(lut, evaluated), []
        for rgb, gt in zip(rgbs, gts):
            t = time.perf_counter()
            cm = fn(rgb)
            ms.append(1000 * (time.perf_counter() - t))
            acc.add(cm, gt)
        rows.append({"method": name, "person_iou": float(np.mean(ious)), "camvid_miou": acc.miou(),
                     "camvid_pedestrian": acc.per_class().get("pedestrian"), "ms": statistics.median(ms)})
        log(f"  {name}: {rows[-1]}")
    return rows


def camera_frames(n: int):
    """The live benchmark's camera footage: the person video from frame 300, at 640x480."""
    for i, rgb in enumerate(source_frames(shared_video(PERSON_VIDEO))):
        if i >= 300 + n:
            return
        if i >= 300:
            yield cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_AREA)


def matte_tc(frames: list[np.ndarray], speed: str, fps: float, model_every: int = 1) -> dict:
    seg = Segmenter.create()
    fs = frame_segmenter(seg, speed, fps, True, matte=PersonMatte(seg))
    if model_every > 1:
        fs.model_every = model_every
    maps, t = [], time.perf_counter()
    for rgb in frames:
        a = fs(rgb).matte
        maps.append((cv2.resize(a, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR) > 127)
                    .astype(np.uint8))
    ms = 1000 * (time.perf_counter() - t) / len(frames)
    tc, worst, worst_i = temporal_consistency(frames, maps)
    return {"tc": tc, "worst": worst, "worst_frame": worst_i, "ms": ms, "frames": len(frames)}


def tc_rows(n: int) -> list[dict]:
    clips = {"person video": list(source_frames(shared_video(PERSON_VIDEO), n)),
             "live camera clip (640x480)": list(camera_frames(n))}
    rows = []
    for clip, frames in clips.items():
        fps = 10.0 if "video" in clip else 15.0
        for speed, every in (("accurate", 1), ("accurate", MATTE_MODEL_EVERY), ("realtime", 1)):
            name = speed if every == 1 else f"{speed}, model every {every}nd frame (a people-only effect job)"
            rows.append({"clip": clip, "speed": name, **matte_tc(frames, speed, fps, every)})
            log(f"  {clip} {name}: matte TC {rows[-1]['tc']:.3f}")
    return rows


FPS_RE = re.compile(r"([0-9.]+) frames/s")


def cli_fps(checkout: Path, src: Path, frames: int, out: Path) -> tuple[float, float]:
    """(frames/s the CLI reports, CPU ms per frame of the whole process: less sensitive to the load)."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "segmentation", str(src), "-o", str(out), "--mode",
                           "blur-background", "--max-frames", str(frames)], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = FPS_RE.search(proc.stderr)
    if proc.returncode or not m:
        raise RuntimeError(f"{checkout}: {proc.stderr[-500:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(m.group(1)), 1000 * cpu / frames


def speed_rows(baseline: Path | None, frames: int, rounds: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from video_inputs import clip_720p, default_workdir

    clips = {"person video (768x432, 10 fps)": shared_video(PERSON_VIDEO),
             "720p clip (1280x720, 30 fps)": clip_720p(default_workdir())}
    trees = {"this checkout": ROOT, **({"baseline": baseline} if baseline else {})}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip, src in clips.items():
            got: dict[str, list[float]] = {k: [] for k in trees}
            cpu: dict[str, list[float]] = {k: [] for k in trees}
            for _ in range(rounds):
                for name, tree in trees.items():
                    fps, ms = cli_fps(tree, src, frames, Path(tmp) / "out.mp4")
                    got[name].append(fps)
                    cpu[name].append(ms)
            row = {"clip": clip, "frames": frames, **{k: statistics.median(v) for k, v in got.items()},
                   "cpu_ms": {k: statistics.median(v) for k, v in cpu.items()}, "runs": got, "load": os.getloadavg()}
            if baseline:
                row["ratio"] = row["this checkout"] / row["baseline"]
            rows.append(row)
            log(f"  {clip}: {row}")
    return rows


def markdown(rep: dict) -> str:
    lines = ["# People: person IoU, matte stability, person-effect speed", "",
             f"`{rep['command']}` at {rep['commit']}, {rep['cpu']}.", "",
             "## Person IoU on ../shared/people (145 photos)", "",
             "| method | mean IoU | even photos | odd photos | ms per photo |", "|---|---|---|---|---|"]
    for r in rep["photos"]:
        lines.append(f"| {r['method']} | {r['iou']:.3f} | {r['iou_even']:.3f} | {r['iou_odd']:.3f} | {r['ms']:.0f} |")
    lines += ["", "## Matte temporal consistency (alpha > 127, default `--matte auto`)", "",
              "| clip | speed | frames | mean TC | worst (frame) | ms per frame (frame segmenter) |",
              "|---|---|---|---|---|---|"]
    for r in rep["tc"]:
        lines.append(f"| {r['clip']} | {r['speed']} | {r['frames']} | {r['tc']:.3f} | "
                     f"{r['worst']:.3f} ({r['worst_frame']}) | {r['ms']:.1f} |")
    if rep.get("overlay"):
        lines += ["", "## The overlay's people: the model's map with the video matte as its person", "",
                  "| map | person IoU (photos) | CamVid mIoU | CamVid pedestrian IoU | ms per CamVid frame |",
                  "|---|---|---|---|---|"]
        for r in rep["overlay"]:
            lines.append(f"| {r['method']} | {r['person_iou']:.3f} | {r['camvid_miou']:.3f} | "
                         f"{r['camvid_pedestrian']:.3f} | {r['ms']:.1f} |")
    if rep["speed"]:
        lines += ["", "## blur-background jobs, frames/s (median of interleaved rounds)", "",
                  "| clip | frames | this checkout | baseline | ratio | CPU ms/frame: this / baseline | load |",
                  "|---|---|---|---|---|---|---|"]
        for r in rep["speed"]:
            c = r["cpu_ms"]
            lines.append(f"| {r['clip']} | {r['frames']} | {r['this checkout']:.1f} | "
                         f"{r.get('baseline', float('nan')):.1f} | {r.get('ratio', float('nan')):.2f} | "
                         f"{c['this checkout']:.1f} / {c.get('baseline', float('nan')):.1f} | "
                         f"{r['load'][0]:.1f} |")
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown CPU"
    name = re.search(r"Model name:\s*(.+)", out)
    vnni = "AVX-512 VNNI" if "avx512_vnni" in out else "no AVX-512 VNNI"
    return f"{name.group(1).strip() if name else 'unknown CPU'}, {os.cpu_count()} cores, {vnni}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", type=Path, help="a checkout of earlier code for the speed comparison")
    p.add_argument("--frames", type=int, default=300, help="frames per clip (TC and speed)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=(), choices=("photos", "tc", "overlay", "speed"))
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results-people.md")
    args = p.parse_args(argv)
    if not (PEOPLE / "images").is_dir():
        log(f"{PEOPLE} is missing: the person set is needed for this benchmark.")
        return 2
    rep = {"command": "python benchmarks/people.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "commit": git_commit(), "cpu": cpu_name(), "photos": [], "tc": [], "overlay": [], "speed": []}
    if "photos" not in args.skip:
        log("person IoU on ../shared/people ...")
        rep["photos"] = photo_rows(photos())
    if "overlay" not in args.skip:
        log("the overlay's people ...")
        rep["overlay"] = overlay_rows(photos())
    if "tc" not in args.skip:
        log("matte temporal consistency ...")
        rep["tc"] = tc_rows(args.frames)
    if "speed" not in args.skip:
        log("blur-background speed ...")
        rep["speed"] = speed_rows(args.baseline, args.frames, args.rounds)
    args.output.write_text(markdown(rep))
    args.output.with_suffix(".json").write_text(json.dumps(rep, indent=1))
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
