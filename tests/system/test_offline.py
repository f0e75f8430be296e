"""Nothing to download: the CLI and the app work from the checkout alone, with the network blocked.

Child processes run under ``offline_guard``: any connection or name lookup beyond loopback
fails and is logged, and a logged attempt fails the test even where the child carried on. There
is no ``SEGMENTATION_WEIGHTS`` and no ``SEGMENTATION_EXAMPLES_SOURCE``, and ``HOME`` /
``XDG_CACHE_HOME`` are empty temporary folders: the models come from ``weights/``, the examples
from ``examples/``, and nothing is written to the per-user cache. Nothing here reads ``../shared``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
from app_server import IMAGE, api_client, result_file, start_app, stop_app, submit, temp_env
from offline_guard import child_env, offline  # noqa: F401 (fixture)
from PIL import Image

from segmentation.catalog import CATALOG, DEFAULT_MODEL_ID, TFLITE
from webapp import examples

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "examples" / "bird.bmp"  # 512x343, shipped
EMBEDDED = [e.id for e in CATALOG.values() if e.format == TFLITE]


def test_the_guard_blocks_and_logs(offline):
    """The guard itself: an outside connection fails and is logged; loopback is allowed."""
    code = ("import socket, urllib.request\n"
            "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\nexcept OSError as e:\n    print(e)\n"
            "try:\n    urllib.request.urlopen('https://example.com/', timeout=1)\nexcept OSError as e:\n    print(e)\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); c = socket.create_connection(s.getsockname())\n"
            "print('loopback ok')\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(offline), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("network blocked by the test") == 2 and "loopback ok" in out.stdout, out.stdout
    log = offline["_log"].read_text()
    assert "connect to 192.0.2.1:80" in log and "127.0.0.1:9" in log  # the proxy counts as outside
    offline["_log"].unlink()  # seen; the fixture's final check is for the real tests


def _tiny_clip(path: Path, frames: int = 6) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(frames):
            img = np.full((64, 96, 3), 40 + 30 * i, np.uint8)
            img[16:48, 24:72] = (200, 60, 60)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("model", EMBEDDED)
def test_cli_segments_a_photo_and_a_video_offline(model, offline, tmp_path):
    clip = _tiny_clip(tmp_path / "clip.mp4")
    env = child_env(offline)
    # The default model is used without --model; the others by id.
    extra = [] if model == DEFAULT_MODEL_ID else ["--model", model]
    for src, out in ((PHOTO, tmp_path / "photo.png"), (clip, tmp_path / "clip_out.mp4")):
        r = subprocess.run([sys.executable, "-m", "segmentation", str(src), "-o", str(out), *extra],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, f"{model} on {src.name}: {r.stderr}"
        assert re.search(rf"(with |, ){re.escape(model)}[ ,]", r.stderr), r.stderr  # the model it used
    assert Image.open(tmp_path / "photo.png").size == (512, 343)
    with av.open(str(tmp_path / "clip_out.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24").shape for f in c.decode(video=0)]
    assert frames == [(64, 96, 3)] * 6


def test_app_serves_with_its_examples_offline(offline, tmp_path):
    overrides = {k: v for k, v in offline.items() if not k.startswith("_")}
    srv = start_app(tmp_path / "app.log", timeout=15, **overrides, **temp_env(tmp_path / "tmp"))
    try:
        with urllib.request.urlopen(srv.url + "config", timeout=10) as r:
            assert r.status == 200
            config = r.read().decode()
        json.loads(config)
        for e in examples.EXAMPLES:  # a row each: its thumbnail (named after the file) and title
            assert f"{Path(e.name).stem}-{e.sha256[:8]}.jpg" in config, f"example {e.name} has no thumbnail"
            assert e.title in config, f"example {e.name} is not listed"
        assert config.index(examples.EXAMPLES[0].title) < config.index(examples.EXAMPLES[1].title)
        assert "Examples are unavailable" not in config
        # The default model loads from weights/ and segments a photo through the API.
        client = api_client(srv, tmp_path / "downloads")
        out, legend, stats = submit(client, IMAGE, PHOTO, DEFAULT_MODEL_ID).result(timeout=120)
        assert Image.open(result_file(out)).size == (512, 343)
        assert stats["model"] == DEFAULT_MODEL_ID, stats
    finally:
        stop_app(srv.process)
    log = srv.log()
    assert "unavailable" not in log, log
    assert "The default model is not available" not in log, log
