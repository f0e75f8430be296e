"""Test media made on the spot (videos with PyAV, images with Pillow/numpy) and read back.

Shared by the video, matrix, load, faults and security tests: small sizes,
few frames, nothing fetched from anywhere.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
from PIL import Image

from segmentation import video
from segmentation.classmaps import refine_labels, soft_one_hot, upscale_nearest

ROOT = Path(__file__).resolve().parent.parent
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
TONE_HZ = 440.0
MARGIN = 16  # px: "well inside / outside" = this far from the mask's edge (feather 3 reaches ~10)


# -- a stand-in for the model -----------------------------------------------------------
class StubSegmenter:
    """What the pipeline needs from a Segmenter: predict/scores/segment, palette, labels, entry.id.

    Like a class-id model: ``scores`` is the soft one-hot of ``predict``.
    """

    def __init__(self, fail_at: int | None = None):
        self.labels = tuple(f"class {i}" for i in range(4))
        self.palette = np.zeros((256, 3), np.uint8)
        self.palette[1] = (0, 255, 0)
        self.entry = SimpleNamespace(id="stub")
        self.fail_at = fail_at
        self.calls = 0

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("model exploded")
        cm = np.zeros((8, 8), np.uint8)
        cm[:4] = 1
        return cm

    has_scores = False

    def scores(self, rgb: np.ndarray) -> np.ndarray:
        return soft_one_hot(self.predict(rgb), len(self.labels))

    def labels_from_scores(self, scores: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        return refine_labels(scores, size_wh)

    def segment(self, rgb: np.ndarray, size_wh: tuple[int, int] | None = None) -> SimpleNamespace:
        size_wh = size_wh or (rgb.shape[1], rgb.shape[0])
        return SimpleNamespace(class_map=upscale_nearest(self.predict(rgb), size_wh))


# -- generating clips ------------------------------------------------------------------
def picture(i: int, w: int, h: int, marker: bool = False) -> np.ndarray:
    """A smooth gradient with a moving bright square; ``marker``: red block in the top-left corner."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (x * 120 // max(1, w - 1)).astype(np.uint8)  # never mistaken for the red marker
    img[..., 1] = (y * 200 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = (60 + 3 * i) % 256
    s = max(4, min(w, h) // 5)
    x0 = (i * 3) % max(1, w - s)
    img[h // 2 - s // 2: h // 2 + s // 2, x0:x0 + s] = (230, 230, 230)
    if marker:
        img[: h // 4, : w // 4] = RED
    return img


def make_clip(path: Path, *, size=(64, 48), pts: list[int] | None = None, frames: int = 30,
              time_base: Fraction = Fraction(1, 25), rate: Fraction = Fraction(25), rotation: int = 0,
              audio: str | None = None, audio_rate: int = 48000, audio_layout: str = "stereo",
              fmt: str | None = None, options: dict | None = None, faststart: bool = True,
              marker: bool = False, codec: str = "libx264", pix_fmt: str | None = None) -> Path:
    """Encode a clip with PyAV (H.264 unless ``codec``): frames at ``pts`` (``time_base`` units),
    optional tone track."""
    pts = list(pts) if pts is not None else [i * round(1 / (rate * time_base)) for i in range(frames)]
    w, h = size
    copts = {"movflags": "+faststart"} if (faststart and path.suffix in (".mp4", ".mov")) else {}
    with av.open(str(path), "w", format=fmt, container_options=copts) as c:
        s = c.add_stream(codec, rate=rate)
        # 4:2:0 needs even sizes: an odd-sized clip is coded as H.264 4:4:4, at its own size
        s.width, s.height, s.pix_fmt = w, h, pix_fmt or ("yuv444p" if (w & 1) or (h & 1) else "yuv420p")
        s.time_base = time_base
        s.codec_context.time_base = time_base
        if codec == "libx264":
            s.options = {"preset": "ultrafast", "bframes": "0", **(options or {})}
        else:
            s.options = dict(options or {})
        if rotation:
            s.set_display_rotation(rotation)
        a = None
        if audio:
            a = c.add_stream(audio, rate=audio_rate, layout=audio_layout)
        end = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * time_base)
        sent = 0
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(picture(i, w, h, marker), format="rgb24")
            if pix_fmt:
                f = f.reformat(format=pix_fmt)
            f.pts, f.time_base = p, time_base
            c.mux(s.encode(f))
            if a is not None:  # audio up to this frame's time, in 1024-sample frames
                t = float(p * time_base) if i + 1 < len(pts) else end
                while sent < round(t * audio_rate):
                    n = min(1024, round(end * audio_rate) - sent)
                    c.mux(a.encode(tone(sent, n, audio_rate, audio_layout)))
                    sent += n
        c.mux(s.encode(None))
        if a is not None:
            c.mux(a.encode(None))
    return path


class _NoSeek(io.RawIOBase):
    """A write-only stream that cannot seek back: a muxer writing it cannot fill in the duration."""

    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)


def live_mkv(path: Path, frames: int, size: int = 32) -> Path:
    """An H.264 MKV written as a live recorder does (no seeking back): no duration in its header."""
    with open(path, "wb") as f, av.open(_NoSeek(f), "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = size, size, "yuv420p", {"preset": "ultrafast"}
        for i in range(frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(picture(i, size, size), format="rgb24")))
        c.mux(s.encode(None))
    return path


def headerless_clips(folder: Path, frames: int, short: int) -> dict[str, Path]:
    """Videos at 25 fps whose container states neither duration nor frame count: a raw H.264 stream
    and a live-written MKV of ``frames`` frames, and a raw stream of ``short`` frames."""
    return {"raw.h264": make_clip(folder / "raw.h264", size=(32, 32), frames=frames, fmt="h264"),
            "live.mkv": live_mkv(folder / "live.mkv", frames),
            "short.h264": make_clip(folder / "short.h264", size=(32, 32), frames=short, fmt="h264")}


def tone(start: int, n: int, rate: int, layout: str) -> av.AudioFrame:
    t = (np.arange(start, start + n) / rate).astype(np.float64)
    wave = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    channels = 1 if layout == "mono" else 2
    f = av.AudioFrame.from_ndarray(np.tile(wave, (channels, 1)), format="fltp", layout=layout)
    f.sample_rate, f.pts, f.time_base = rate, start, Fraction(1, rate)
    return f


def audio_only(path: Path) -> Path:
    """An MP4 holding nothing but a short AAC tone."""
    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=44100, layout="stereo")
        for i in range(20):
            c.mux(a.encode(tone(i * 1024, 1024, 44100, "stereo")))
        c.mux(a.encode(None))
    return path


def damage(src: Path, out: Path, how: str) -> Path:
    """A copy of ``src`` cut at half its bytes (``truncated``) or with 4 kB of noise in the middle."""
    data = bytearray(src.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:
        mid = len(data) // 2
        data[mid: mid + 4096] = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


# -- images ------------------------------------------------------------------------------
def corner_image(w: int, h: int, corner=RED, rest=BLUE, k: int = 8):
    """A Pillow RGB image of colour ``rest`` with a k x k ``corner`` block at the top left."""
    from PIL import Image

    a = np.empty((h, w, 3), np.uint8)
    a[:] = rest
    a[:k, :k] = corner
    return Image.fromarray(a)


def close_to(pixel, colour, tol=12) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour, int)) <= tol))


# -- reading outputs back -------------------------------------------------------------------
def video_times(path: Path) -> list[float]:
    """Presentation times (s) of every video packet, sorted (one H.264 packet = one frame)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sorted(float(p.pts * v.time_base) for p in c.demux(v) if p.pts is not None)


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        facts = {
            "codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
            "size": (v.codec_context.width, v.codec_context.height), "rate": v.average_rate,
            # the track's own duration; a Matroska track has none, the file's is used
            "duration": float(v.duration * v.time_base) if v.duration else (c.duration or 0) / 1e6 or None,
            "audio": c.streams.audio[0].codec_context.codec.canonical_name if c.streams.audio else None,
        }
        return facts


def decoded_frames(path: Path, limit: int | None = None) -> list[av.VideoFrame]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f)
            if limit and len(out) >= limit:
                break
    return out


def assert_same_timing(src: Path, dst: Path, max_frames: int | None = None) -> None:
    """Same frame count, per-frame times within half a frame, same duration within a frame."""
    tin, tout = video_times(src), video_times(dst)
    if max_frames is not None:
        tin = tin[:max_frames]
    assert len(tout) == len(tin), (len(tout), len(tin))
    rel_in = np.array(tin) - tin[0]
    rel_out = np.array(tout) - tout[0]
    gaps = np.diff(rel_in) if len(rel_in) > 1 else np.array([1.0])
    err = np.abs(rel_out - rel_in)
    assert err.max() < 0.5 * gaps.min(), f"frame times moved by up to {err.max():.4f}s (min gap {gaps.min():.4f}s)"
    assert np.all(np.diff(tout) > 0)
    din, dout = stream_facts(src)["duration"], stream_facts(dst)["duration"]
    if max_frames is None and din:
        assert abs(dout - din) <= np.median(gaps) + 1e-6, (dout, din)


def no_leftovers(folder: Path, dst: Path) -> None:
    assert not dst.exists(), f"{dst.name} exists after a failed or cancelled job"
    left = [n for n in os.listdir(folder) if n.endswith(".part")]
    assert not left, f"temporary files left behind: {left}"


def run_bounded(fn, timeout: float = 120.0):
    """Run fn in a thread; fail (instead of hanging the suite) when it does not finish."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still running after {timeout:.0f} s (hang)"
    return box


def run_cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python3 -m segmentation ARGS`` from the project root; ``env`` adds to the environment."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "segmentation", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)


# -- masks and decoded outputs (effects) -------------------------------------------------------------------------------------
def inside(mask: np.ndarray, margin: int = MARGIN) -> np.ndarray:
    """Pixels at least ``margin`` px inside a boolean mask."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.erode(mask.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE) > 0


def detail(rgb: np.ndarray, where: np.ndarray) -> float:
    """High-frequency energy: mean |Laplacian| of the grey picture over ``where``."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[where].mean())


def decode_rgb(path: Path, limit: int | None = None) -> list[np.ndarray]:
    return [f.rgb for f in video.read_frames(path, limit)]


def decode_rgba_webm(path: Path) -> list[np.ndarray]:
    """A VP9 WebM's frames as RGBA, through libvpx (FFmpeg's own vp9 decoder drops the alpha)."""
    out = []
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        ctx = av.CodecContext.create("libvpx-vp9", "r")
        for packet in c.demux(v):
            for f in ctx.decode(packet):
                assert f.format.name == "yuva420p"
                out.append(f.to_ndarray(format="rgba"))
    return out


# -- label exports read back -------------------------------------------------------------------
def read_zip(path: Path) -> tuple[np.ndarray, dict]:
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("labels.json"))
        maps = []
        for fr in meta["frames"]:
            with Image.open(io.BytesIO(z.read(fr["file"]))) as im:
                assert im.mode == "L"
                maps.append(np.array(im))
        assert sorted(z.namelist()) == sorted([fr["file"] for fr in meta["frames"]] + ["labels.json"])
    return np.stack(maps), meta


def read_coco(path: Path) -> tuple[np.ndarray, dict]:
    """Class maps rebuilt from the COCO annotations (every pixel in exactly one), checked on the way."""
    from pycocotools import mask as mask_api  # a dev requirement: only the tests that read COCO need it

    doc = json.loads(path.read_text())
    images = sorted(doc["images"], key=lambda im: im["frame"])
    h, w = images[0]["height"], images[0]["width"]
    maps = np.full((len(images), h, w), -1, np.int16)
    by_id = {im["id"]: im["frame"] for im in images}
    for ann in doc["annotations"]:
        rle = ann["segmentation"]
        assert rle["size"] == [h, w]
        m = mask_api.decode(rle).astype(bool)
        frame = maps[by_id[ann["image_id"]]]
        assert (frame[m] == -1).all(), "pixels in two annotations"
        frame[m] = ann["category_id"]
        assert ann["area"] == int(m.sum()) == int(mask_api.area(rle))
        assert np.allclose(ann["bbox"], mask_api.toBbox(rle))
    assert (maps >= 0).all(), "pixels in no annotation"
    return maps.astype(np.uint8), doc


# -- a worker that dies once (retries on Ray) ------------------------------------------------------
def die_once_while_writing(out: Path, marker: Path) -> None:
    """The first time (no ``marker`` yet): kill this worker process as soon as ``out``'s temporary
    file exists, i.e. while the output is being written. ``marker`` remembers it, with this pid.
    Ray workers unpickle it by value (``ray.cloudpickle.register_pickle_by_value(media)``)."""
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))

    def kill_when_writing():
        while not list(out.parent.glob(f".{out.name}.*.part")):
            time.sleep(0.002)
        os._exit(1)

    threading.Thread(target=kill_when_writing, daemon=True).start()
