"""Where a pipeline frame's time goes, through the library's public calls only.

``profile`` runs the pipeline's per-frame steps **sequentially** in one loop
and times each (wall and process CPU): decode (``video.read_frames``), the
model and labels, draw (``draw.render``), histogram (``draw.class_histogram``),
encode (``VideoSink.write``) and the encoder flush. The labels step is either

* split (accurate with temporal fusion off, which is ``Segmenter.segment`` of
  every frame): ``Segmenter.scores`` (resize + quantize + invoke) then
  ``Segmenter.labels_from_scores`` (argmax of the scores upsampled to the
  frame), or
* one call of the frame segmenter the pipeline builds
  (``temporal.frame_segmenter(seg, speed, fps, temporal)``), with keyframes
  and flow frames apart for realtime (``FrameLabels.keyframe``).

``encode_presets`` re-encodes the same rendered frames at other x264 presets.
``micro`` times cheaper alternatives for the costly non-model steps, and the
model call itself through ``Segmenter.scores`` on the frame vs ``seg.runner``
on an input already at the model's size (the difference: resize and the
score conversion).
"""

from __future__ import annotations

import io
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench_common import interleaved, median
from video_methods import CUT_ID


def pipeline_preset(speed: str) -> str:
    """The x264 preset ``segment_video`` uses for ``speed`` with default options."""
    from segmentation.pipeline import PRESETS, VideoOptions

    opt = VideoOptions(speed=speed)
    return opt.preset or PRESETS[opt.speed]


def _ready_segmenter(width: int, height: int):
    """The default-model segmenter, warmed up on a frame of this size (as a loaded app is)."""
    from segmentation import Segmenter

    seg = Segmenter.create(CUT_ID)
    seg.predict(np.zeros((height, width, 3), dtype=np.uint8))
    return seg


class Clock:
    """Per-stage wall and process-CPU time accumulators."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.start()

    def start(self):
        self.t, self.c = time.perf_counter(), time.process_time()

    def lap(self, stage: str):
        t, c = time.perf_counter(), time.process_time()
        self.wall[stage] = self.wall.get(stage, 0.0) + t - self.t
        self.cpu[stage] = self.cpu.get(stage, 0.0) + c - self.c
        self.t, self.c = t, c


def profile(src: Path, n: int, scratch: Path, speed: str = "accurate", temporal: bool = True,
            split: bool = False, presets=()) -> dict:
    """Sequential per-stage timing of the pipeline's work on the first ``n`` frames of ``src``.

    ``split`` (accurate, temporal off only): the labels step as ``Segmenter.scores`` +
    ``Segmenter.labels_from_scores`` instead of one frame-segmenter call.
    """
    from segmentation import DrawOptions, draw, frame_segmenter, video

    if split and (speed != "accurate" or temporal):
        raise ValueError("split: accurate with temporal off only (that is Segmenter.segment per frame)")
    info = video.probe(src)
    seg = _ready_segmenter(info.width, info.height)
    split = split and seg.has_scores
    frame_seg = None if split else frame_segmenter(seg, speed, float(info.fps), temporal)
    infer = f"infer (frame_segmenter {speed}, temporal {'on' if temporal else 'off'})"
    dopts = DrawOptions()  # the pipeline's default: overlay with outlines
    clock = Clock()
    hist = np.zeros(256, dtype=np.int64)
    rendered = []
    keep = 60 if presets else 0  # frames kept to compare x264 presets afterwards
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
            if split:
                scores = seg.scores(f.rgb)
                clock.lap("model (Segmenter.scores: resize, quantize, invoke)")
                cm = seg.labels_from_scores(scores, (info.width, info.height))
                clock.lap("edges (Segmenter.labels_from_scores)")
            else:
                t = time.perf_counter()
                labels = frame_seg(f.rgb)
                cm = labels.class_map
                dt = time.perf_counter() - t
                keyframes += labels.keyframe
                key_wall += dt if labels.keyframe else 0.0
                flow_wall += 0.0 if labels.keyframe else dt
                clock.lap(infer)
            img = draw.render(f.rgb, cm, seg.palette, dopts)
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
    res = {"video": src.name, "size": f"{info.width}x{info.height}", "speed": speed, "temporal": temporal,
           "frames": frames, "preset": preset,
           "stages": {k: {"wall_ms": 1000 * clock.wall[k] / max(frames, 1), "cpu_ms": 1000 * clock.cpu[k] / max(frames, 1)}
                      for k in clock.wall}}
    if speed == "realtime":
        res["keyframes"] = keyframes
        res["keyframe_ms"] = 1000 * key_wall / max(keyframes, 1)
        res["flow_frame_ms"] = 1000 * flow_wall / max(frames - keyframes, 1)
    if rendered:
        res["encode_presets"] = encode_presets(rendered, info, scratch, presets)
    return res


def encode_presets(rendered: list, info, scratch: Path, presets) -> dict:
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


# -- alternatives ---------------------------------------------------------------------------
def _model_input_resize(seg, rgb) -> str:
    """Which cv2 interpolation the segmenter uses to make its input from ``rgb``, told from its
    public answers: ``predict`` of the frame equals ``predict`` of the frame already resized
    the same way (the segmenter leaves an input of its own size as it is)."""
    import cv2

    w, h = seg.input_size_wh
    cm = seg.predict(rgb)
    for name, interp in (("INTER_LINEAR", cv2.INTER_LINEAR), ("INTER_AREA", cv2.INTER_AREA)):
        if np.array_equal(cm, seg.predict(cv2.resize(rgb, (w, h), interpolation=interp))):
            return name
    return "?"


def _sink_yuv(rgb: np.ndarray, scratch: Path) -> str:
    """How ``VideoSink.write`` turns RGB into YUV, told from its output: one frame written
    losslessly (x264 crf 0), decoded as yuv420p and compared with both conversions."""
    import av
    import cv2

    from segmentation import video

    h, w = rgb.shape[:2]
    dst = scratch / "yuv-probe.mp4"
    with video.VideoSink(dst, w, h, Fraction(30), Fraction(1, 30), crf=0, preset="ultrafast") as sink:
        sink.write(rgb, 0)
    with av.open(str(dst)) as c:
        got = next(c.decode(video=0)).to_ndarray(format="yuv420p")
    dst.unlink(missing_ok=True)
    candidates = {"rgb24": av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray(),
                  "i420": cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)}
    same = [k for k, v in candidates.items() if v.shape == got.shape and np.array_equal(v, got)]
    return same[0] if len(same) == 1 else "?"


def micro(src: Path, n: int, reps: int, scratch: Path) -> dict:
    """Cost of cheaper alternatives for per-frame steps, measured interleaved on ``src``.

    * model input: cv2 INTER_AREA vs INTER_LINEAR vs letting FFmpeg's swscale
      produce the model-size RGB input straight from the decoded YUV frame;
    * the model call: ``Segmenter.scores`` on the frame (resize, quantize,
      invoke, score output) vs ``seg.runner`` on an input already at the
      model's size (quantize, invoke);
    * encoder input: an rgb24 ``VideoFrame`` that libx264's stream converts to
      yuv420p (swscale) vs cv2.cvtColor RGB->I420 and a yuv420p ``VideoFrame``;
      both alone and inside a whole x264 encode (accurate's preset, crf 23),
      plus the class-map agreement of the two resizes.

    "(current)" marks what the library does, told from its public answers.
    """
    import av
    import cv2

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
    seg = _ready_segmenter(w, h)
    iw, ih = seg.input_size_wh
    model_inputs = [cv2.resize(x, (iw, ih), interpolation=cv2.INTER_LINEAR) for x in rgbs]

    to_frame = {
        "rgb24": lambda rgb: av.VideoFrame.from_ndarray(rgb, format="rgb24"),
        "i420": lambda rgb: av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p"),
    }

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

    cur_resize = _model_input_resize(seg, rgbs[0])
    cur_yuv = _sink_yuv(rgbs[0], scratch)

    def tag(cond: bool) -> str:
        return " (current)" if cond else ""

    cases = {
        f"model input: cv2.resize INTER_AREA{tag(cur_resize == 'INTER_AREA')}": lambda: [
            cv2.resize(x, (iw, ih), interpolation=cv2.INTER_AREA) for x in rgbs],
        f"model input: cv2.resize INTER_LINEAR{tag(cur_resize == 'INTER_LINEAR')}": lambda: [
            cv2.resize(x, (iw, ih), interpolation=cv2.INTER_LINEAR) for x in rgbs],
        "model input: swscale from YUV at decode (AREA)": lambda: [
            f.reformat(width=iw, height=ih, format="rgb24", interpolation="AREA").to_ndarray() for f in yuv_frames],
        "model: Segmenter.scores on the frame (current)": lambda: [seg.scores(x) for x in rgbs],
        "model: seg.runner on a model-size input (quantize + invoke)": lambda: [seg.runner(x) for x in model_inputs],
        "decode: VideoFrame.to_ndarray rgb24 (current)": lambda: [f.to_ndarray(format="rgb24") for f in yuv_frames],
        f"encoder input: rgb24 -> yuv420p by swscale{tag(cur_yuv == 'rgb24')}": lambda: [
            av.VideoFrame.from_ndarray(x, format="rgb24").reformat(format="yuv420p") for x in rgbs],
        f"encoder input: cv2.cvtColor RGB->I420 + yuv420p VideoFrame{tag(cur_yuv == 'i420')}": lambda: [
            to_frame["i420"](x) for x in rgbs],
        f"x264 {preset} encode, rgb24 frames{tag(cur_yuv == 'rgb24')}": lambda: encode("rgb24"),
        f"x264 {preset} encode, cv2 I420 frames{tag(cur_yuv == 'i420')}": lambda: encode("i420"),
    }
    times = interleaved(cases, reps)
    agree = []
    for x in rgbs[::5]:
        a = seg.predict(cv2.resize(x, (iw, ih), interpolation=cv2.INTER_AREA))
        b = seg.predict(cv2.resize(x, (iw, ih), interpolation=cv2.INTER_LINEAR))
        agree.append(float(np.mean(a == b)))
    yuv_a = to_frame["rgb24"](rgbs[0]).reformat(format="yuv420p").to_ndarray()
    yuv_b = cv2.cvtColor(rgbs[0], cv2.COLOR_RGB2YUV_I420)
    k = len(rgbs)
    return {"video": src.name, "size": f"{w}x{h}", "frames": k, "reps": reps,
            "cases": {name: {"wall_ms": median([t[0] / k for t in v]), "cpu_ms": median([t[1] / k for t in v])}
                      for name, v in times.items()},
            "linear_vs_area_agreement": {"mean": float(np.mean(agree)), "min": float(np.min(agree)), "frames": len(agree)},
            "i420_vs_swscale_max_abs_diff": int(np.abs(yuv_a.astype(int) - yuv_b).max()),
            "i420_vs_swscale_mean_abs_diff": float(np.abs(yuv_a.astype(int) - yuv_b).mean())}
