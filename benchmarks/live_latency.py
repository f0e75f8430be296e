#!/usr/bin/env python3
"""Live webcam: camera-to-screen latency and displayed frames/s, measured in a real Chromium.

Run from the project root (starts its own app on a free port)::

    python benchmarks/live_latency.py [--seconds 20] [--fps 15] [--size 640x480] [--speed accurate]

How: a Y4M clip for Chromium's fake camera is made from real footage (the
person video), each frame stamped with its index as a 10-bit code in the top
left corner (one pair of squares per bit: white-black for 1, black-white for
0, so an overlay's colour tint cannot flip a bit; Gradio's webcam mirrors the
frames it sends, so the result is read mirrored). In the page, on every
animation frame, JavaScript draws the webcam preview <video> and the segmented
<img> into canvases and decodes both codes: the first time an index appears on
the preview is when the camera showed it, the first time it appears in the
segmented image is when the viewer sees its result; the difference is the
latency. Displayed frames/s = segmented images shown per second (every update
of the result; the camera and the 15 fps capture are not in step, so now and
then a frame is captured twice and its neighbour not at all).
Reports median and p95 latency, displayed frames/s and the server's own
per-frame time (the live status line), and writes
``benchmarks/results-live.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CHROMIUM = "/usr/bin/chromium"
# 10-bit index (loops at 1024 frames) in 2 rows of 48 px squares: large enough to be read through
# the background effects (blur-background's Gaussian of sigma 15 px, for one, lies over the code).
BITS, ROWS, CELL = 10, 2, 48
PER_ROW = BITS // ROWS


def stamp(rgb: np.ndarray, index: int) -> np.ndarray:
    """Draw the index code: for each bit a (white, black) pair for 1, (black, white) for 0."""
    out = rgb.copy()
    out[: ROWS * CELL + 8, : 2 * PER_ROW * CELL + 8] = 128  # a quiet grey band around the code
    for b in range(BITS):
        one = (index >> b) & 1
        x, y = 4 + 2 * (b % PER_ROW) * CELL, 4 + (b // PER_ROW) * CELL
        out[y:y + CELL, x:x + CELL] = 255 if one else 0
        out[y:y + CELL, x + CELL:x + 2 * CELL] = 0 if one else 255
    return out


def camera_clip(dst: Path, size: tuple[int, int], fps: int, frames: int) -> Path:
    """A Y4M file of real footage (people walking by) with each frame's index stamped on it."""
    w, h = size
    src = SHARED / "videos" / "one-by-one-person-detection.mp4"
    with av.open(str(src)) as c, open(dst, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        n = 0
        for i, frame in enumerate(c.decode(video=0)):
            if i < 300:  # people are in view from here on
                continue
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
            yuv = av.VideoFrame.from_ndarray(stamp(rgb, n), format="rgb24").reformat(format="yuv420p").to_ndarray()
            f.write(b"FRAME\n" + np.ascontiguousarray(yuv).tobytes())
            n += 1
            if n >= frames:
                break
    return dst


# Decodes the code from an element drawn into a canvas; -1 when it cannot be read.
DECODER = """
// The canvas holds the code's corner only (the rest of the drawing is clipped away), so reading
// costs the page little: the measurement should not take the CPU the app and the page need.
window.__decode = (el, w, h, mirrored) => {
  const cell = %(cell)d, bits = %(bits)d, per = %(per)d, rows = %(rows)d;
  const stride = 8 + 2 * per * cell, height = rows * cell + 8;
  const c = window.__canvas || (window.__canvas = document.createElement('canvas'));
  if (c.width !== stride || c.height !== height) { c.width = stride; c.height = height; }
  const g = c.getContext('2d', {willReadFrequently: true});
  g.setTransform(mirrored ? -1 : 1, 0, 0, 1, mirrored ? w : 0, 0);
  g.drawImage(el, 0, 0, w, h);
  const data = g.getImageData(0, 0, stride, height).data;
  const lum = (x, y) => { const i = 4 * (y * stride + x); return data[i] + data[i + 1] + data[i + 2]; };
  // the middle half of a square: its colour survives a blur of up to ~cell/3
  const mean = (x0, y0) => { let s = 0; for (let y = y0 + cell / 4; y < y0 + 3 * cell / 4; y++) for (let x = x0 + cell / 4; x < x0 + 3 * cell / 4; x++) s += lum(x, y); return s; };
  let v = 0;
  for (let b = 0; b < bits; b++) {
    const x = 4 + 2 * (b %% per) * cell, y = 4 + Math.floor(b / per) * cell, a = mean(x, y), z = mean(x + cell, y);
    if (Math.abs(a - z) < 0.25 * (a + z + 1)) return -1;
    if (a > z) v |= (1 << b);
  }
  return v;
};
window.__samples = {shown: {}, seen: {}, lastSrc: null, pending: null, updates: 0, unread: 0};
// The preview is read once per frame it presents (requestVideoFrameCallback), not on every
// animation frame: the camera runs at 15 fps, the page at 60.
window.__watchPreview = () => {
  const v = document.querySelector('#live-input video');
  if (!v || v.__watched) return;
  v.__watched = true;
  const onFrame = (now) => {
    if (v.videoWidth) {
      const i = window.__decode(v, v.videoWidth, v.videoHeight, false);
      if (i >= 0 && !(i in window.__samples.shown)) window.__samples.shown[i] = now;
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
};
window.__tick = () => {
  const s = window.__samples, now = performance.now();
  window.__watchPreview();
  const img = document.querySelector('#live-output img');
  if (img && img.src !== s.lastSrc) {  // a new result: counted once, read as soon as it is decoded
    if (s.pending) s.unread++;  // the previous one was never readable while it was shown
    s.lastSrc = img.src; s.updates++; s.pending = img;
  }
  if (s.pending && s.pending.complete && s.pending.naturalWidth) {
    // Gradio's webcam mirrors what it sends (a selfie view): the result comes back mirrored
    const i = window.__decode(s.pending, s.pending.naturalWidth, s.pending.naturalHeight, true);
    if (i >= 0) { if (!(i in s.seen)) s.seen[i] = now; s.pending = null; }
  }
  requestAnimationFrame(window.__tick);
};
requestAnimationFrame(window.__tick);
""" % {"cell": CELL, "bits": BITS, "per": PER_ROW, "rows": ROWS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "SEGMENTATION_WARM_EXAMPLES": "0"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the app did not start")


def cpu_seconds() -> dict:
    """CPU time used so far by Chromium's processes, by the app's (``app.py``), and by the machine
    (busy time of all cores), read from /proc: what each side costs per segmented image shown."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"browser": 0.0, "app": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if cmd and b"chromium" in cmd[0]:
            out["browser"] += used
        elif any(a.endswith(b"app.py") for a in cmd[1:3]):
            out["app"] += used
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    out["machine"] = (sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])) / tick  # all but idle and iowait
    return out


def measure(url: str, clip: Path, seconds: float, speed: str, mode: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
            "--autoplay-policy=no-user-gesture-required"])
        page = b.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"]).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("#run")
        page.get_by_role("tab", name="Live webcam").click()
        page.get_by_label(mode, exact=True).check()
        page.get_by_label(speed, exact=True).check()
        page.locator("#live-input").get_by_text("Click to Access Webcam").click()
        page.wait_for_function("() => { const v = document.querySelector('#live-input video');"
                               " return v && v.readyState >= 2 && v.videoWidth > 0; }")
        page.evaluate(DECODER)
        page.locator("#live-input").get_by_role("button", name="capture photo").click()  # start streaming
        page.wait_for_function("() => Object.keys(window.__samples.seen).length > 0")
        time.sleep(2.0)  # settle: the first frames pay for the model's warm-up
        page.evaluate("() => { window.__samples.shown = {}; window.__samples.seen = {}; window.__samples.updates = 0; window.__samples.unread = 0; }")
        t0, cpu0 = time.monotonic(), cpu_seconds()
        time.sleep(seconds)
        samples = page.evaluate("() => window.__samples")
        cpu = {k: v - cpu0[k] for k, v in cpu_seconds().items()}
        stats = page.inner_text("#live-stats")
        b.close()
    elapsed = time.monotonic() - t0
    shown = {int(k): v for k, v in samples["shown"].items()}
    seen = {int(k): v for k, v in samples["seen"].items()}
    lat = sorted(seen[i] - shown[i] for i in seen if i in shown)
    m = re.search(r"latency (\d+) ms", stats)
    return {"latencies_ms": lat, "displayed": samples["updates"], "unread": samples["unread"], "camera_frames": len(shown), "seconds": elapsed,
            "server_ms": float(m.group(1)) if m else None, "status": stats, "cpu_s": cpu}


def summary(r: dict) -> dict:
    lat = r["latencies_ms"]
    return {"median_ms": statistics.median(lat) if lat else float("nan"),
            "p95_ms": float(np.percentile(lat, 95)) if lat else float("nan"),
            "displayed_fps": r["displayed"] / r["seconds"], "camera_fps": r["camera_frames"] / r["seconds"],
            "matched": len(lat), "unread": r["unread"], "server_ms": r["server_ms"],
            # CPU ms per segmented image shown: the browser's, the app's, and the machine's busy share
            **{f"{k}_cpu_ms": 1000 * v / max(r["displayed"], 1) for k, v in r["cpu_s"].items() if k != "machine"},
            "busy_share": r["cpu_s"]["machine"] / (r["seconds"] * (os.cpu_count() or 1))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--size", default="640x480")
    p.add_argument("--speed", default="accurate", choices=("accurate", "realtime"))
    p.add_argument("--mode", default="overlay")
    p.add_argument("--url", help="an app already running (default: start one)")
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results-live.md")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="live-latency-") as tmp:
        clip = camera_clip(Path(tmp) / "camera.y4m", (w, h), args.fps, 1000)
        proc = None
        url = args.url
        if url is None:
            port = free_port()
            proc = start_app(port)
            url = f"http://127.0.0.1:{port}/"
        try:
            r = measure(url, clip, args.seconds, args.speed, args.mode)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    s = summary(r)
    md = (f"# Live webcam latency\n\n`python benchmarks/live_latency.py {' '.join(argv or sys.argv[1:])}`\n\n"
          f"{time.strftime('%Y-%m-%d %H:%M')}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"fake camera {w}x{h} @ {args.fps} fps, {args.speed}, {args.mode}, {args.seconds:g} s\n\n"
          "| median latency ms | p95 latency ms | segmented images shown /s | camera frames/s | frames matched | "
          "codes unread | server ms/frame | browser CPU ms/shown | app CPU ms/shown | machine busy |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
          f"| {s['median_ms']:.0f} | {s['p95_ms']:.0f} | {s['displayed_fps']:.1f} | {s['camera_fps']:.1f} | "
          f"{s['matched']} | {s['unread']} | {s['server_ms']} | {s['browser_cpu_ms']:.0f} | {s['app_cpu_ms']:.0f} | "
          f"{s['busy_share']:.0%} |\n\nStatus line: {r['status']}\n")
    print(md)
    args.output.write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
