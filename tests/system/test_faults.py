"""Faults: failed model downloads, cancelled jobs, a full disk, a model runner that crashes.

* Downloads (in-process, a fresh ``Segmenter`` each time; test_weights covers
  ``weights.fetch`` itself): a refused connection, a server that accepts and
  never answers, and wrong bytes each end in a ``WeightsError`` that names the
  URL and the reason; the cache holds exactly what it held before, and a model
  already in it still loads and segments.
* Cancelling (through a running app): ``Job.cancel()`` from gradio_client, and
  a client that simply closes its connection mid-video. The job stops at once:
  its half-written output and job folder disappear, and the server's CPU drops
  back to idle.
* Disk full: ``VideoSink.write`` raising ``ENOSPC`` after a few frames (and a
  PNG save failing) through the library and the app's jobs; the CLI on a real full
  disk (a 64 kB tmpfs, when this system lets the tests mount one, else the same
  failing writer in-process); and the app. Each says the disk is full and
  keeps no partial file.
* A runner that raises for one input, in-process (a fake runner behind the
  app's job functions) and in the running app: that job gets one sentence, the
  log the traceback, and the next job succeeds.

The app under test loads a small fault hook (``sitecustomize`` on its
PYTHONPATH, written below) that makes the real LiteRT runner raise on an
all-magenta picture and the video writer run out of space for uploads named
``diskfull*``; every other input runs as usual.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import subprocess
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import av
import httpx
import numpy as np
import psutil
import pytest
from app_server import IMAGE, VIDEO, api_error, job_dirs, result_file, running_app, submit, temp_leftovers
from media import StubSegmenter, make_clip, no_leftovers, picture, run_cli, stream_facts, video_times
from PIL import Image
from weights_server import cache, fake_entry, listing, server  # noqa: F401 (fixtures)

from segmentation import Segmenter, SegmenterOptions, cli, video, weights
from segmentation.catalog import CATALOG
from segmentation.draw import DrawOptions
from segmentation.errors import WeightsError
from segmentation.pipeline import VideoOptions, segment_video
from webapp import jobs
from webapp.limits import Limits

MODEL = "deeplabv3-pascal-dm05"
MAGENTA = (255, 0, 255)
TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition`` every 50 ms; fail after ``timeout`` s; return the seconds it took."""
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, f"not {what} within {timeout:.0f} s"
        time.sleep(0.05)
    return time.monotonic() - t0


# -- model downloads -------------------------------------------------------------------------------
DM05 = CATALOG[MODEL].filename


@pytest.mark.parametrize("route,reason", [
    ("refused", "Connection refused"),
    ("/stall", "timed out"),
    ("/other", "sha256 mismatch"),
])
def test_failed_download_leaves_the_cache_clean_and_cached_models_working(
        route, reason, server, cache, shared_models, shared_images, monkeypatch):
    (cache / DM05).write_bytes((shared_models / DM05).read_bytes())  # a model already cached
    url = "http://127.0.0.1:9/fake_model.tflite" if route == "refused" else server.url(route)
    monkeypatch.setattr(weights, "fetch", functools.partial(weights.fetch, timeout=1.0))  # short, for /stall
    t0 = time.monotonic()
    with pytest.raises(WeightsError) as info:
        Segmenter(SegmenterOptions(), entry=fake_entry(url))
    assert time.monotonic() - t0 < 10, "a stalled download must time out"
    msg = str(info.value)
    assert f"{url}: " in msg and reason in msg and "'fake-model'" in msg, msg
    assert listing(cache) == [DM05], "the failed download left something in the cache"
    # The model that was cached still loads (a fresh Segmenter) and segments.
    seg = Segmenter(SegmenterOptions(model=MODEL, threads=1))
    assert seg.runner.path == cache / DM05
    bird = np.asarray(Image.open(shared_images / "bird.bmp").convert("RGB"))
    cm = seg.segment(bird).class_map
    assert cm.shape == (343, 512) and (cm == seg.labels.index("bird")).mean() > 0.1


# -- a runner that crashes, in-process ----------------------------------------------------------------
class CrashingRunner:
    """A stand-in model runner: background everywhere, but it raises on an all-magenta picture."""

    input_size_wh = (64, 64)
    output_kind = "class_ids"
    num_classes = None

    def __init__(self):
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        if np.abs(x[::8, ::8].astype(int) - MAGENTA).max() < 60:
            raise RuntimeError("the runner crashed")
        return np.zeros(self.input_size_wh[::-1], np.uint8)


def _magenta_clip(path: Path, from_frame: int, frames: int = 20) -> Path:
    """A short H.264 clip that turns all magenta at ``from_frame``."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            rgb = picture(i, 64, 48)
            if i >= from_frame:
                rgb[:] = MAGENTA
            c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(s.encode(None))
    return path


def test_runner_crash_in_one_job_leaves_the_jobs_working(tmp_path):
    runner = CrashingRunner()
    cache_ = jobs.SegmenterCache(factory=lambda mid: Segmenter(entry=CATALOG[mid], runner=runner))
    store = jobs.TempStore(tmp_path / "store")
    limits = Limits()
    poisoned, normal = tmp_path / "magenta.png", tmp_path / "normal.png"
    Image.new("RGB", (40, 30), MAGENTA).save(poisoned)
    Image.fromarray(picture(0, 40, 30)).save(normal)
    with pytest.raises(RuntimeError, match="the runner crashed"):
        jobs.run_photo(cache_, poisoned, MODEL, "overlay", 0.5, None, limits, store)
    assert list(store.root.iterdir()) == []
    r = jobs.run_photo(cache_, normal, MODEL, "overlay", 0.5, None, limits, store)
    assert r.stats.width == 40 and r.output.is_file()

    clip = _magenta_clip(tmp_path / "clip.mp4", from_frame=8)
    with pytest.raises(RuntimeError, match="the runner crashed"):
        jobs.run_video(cache_, jobs.VideoRequest.parse(clip, limits, MODEL, "overlay", 0.5, "accurate"), limits, store)
    assert [d for d in store.root.iterdir() if d != r.output.parent] == [], "the failed video left its job"
    ok_clip = make_clip(tmp_path / "ok.mp4", frames=6)
    ok = jobs.run_video(cache_, jobs.VideoRequest.parse(ok_clip, limits, MODEL, "overlay", 0.5, "accurate"), limits,
                        store)
    assert ok.stats.frames == 6 and len(video_times(ok.output)) == 6
    store.close()


# -- disk full, in-process --------------------------------------------------------------------------
def _full_after(frames: int):
    """A VideoSink.write that runs out of space once ``frames`` frames are written."""
    real = video.VideoSink.write

    def write(self, rgb, pts=None, duration=None):
        if self.frames >= frames:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, rgb, pts, duration)
    return write


def test_disk_full_while_encoding_library_and_jobs(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", frames=20, audio="aac", audio_rate=44100)
    monkeypatch.setattr(video.VideoSink, "write", _full_after(5))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "out.mp4"
    with pytest.raises(OSError) as info:
        segment_video(StubSegmenter(), src, dst, VideoOptions(draw=DrawOptions(alpha=0.0)))
    assert info.value.errno == errno.ENOSPC and "No space left" in str(info.value)
    no_leftovers(out_dir, dst)
    assert list(out_dir.iterdir()) == []

    cache_ = jobs.SegmenterCache(factory=lambda mid: StubSegmenter())
    store = jobs.TempStore(tmp_path / "store")
    with pytest.raises(OSError) as info:
        asked = jobs.VideoRequest.parse(src, Limits(), MODEL, "overlay", 0.5, "accurate")
        jobs.run_video(cache_, asked, Limits(), store)
    assert info.value.errno == errno.ENOSPC
    assert list(store.root.iterdir()) == [], "the failed job left its folder"
    store.close()


def test_disk_full_while_saving_a_photo(tmp_path, monkeypatch, shared_models):
    real_save = Image.Image.save

    def save(self, fp, *args, **kwargs):  # half a file, then the disk is full
        real_save(self, fp, *args, **kwargs)
        Path(fp).write_bytes(Path(fp).read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    src = tmp_path / "photo.png"
    Image.fromarray(picture(0, 40, 30)).save(src)
    monkeypatch.setattr(Image.Image, "save", save)
    store = jobs.TempStore(tmp_path / "store")
    with pytest.raises(OSError) as info:
        jobs.run_photo(jobs.SegmenterCache(), src, MODEL, "overlay", 0.5, None, Limits(), store)
    assert info.value.errno == errno.ENOSPC
    assert list(store.root.iterdir()) == [], "a half-written PNG was left in the store"
    store.close()


# -- disk full, the CLI ---------------------------------------------------------------------------------
@contextmanager
def tiny_disk(path: Path, size: str = "64k"):
    """A tmpfs of ``size`` mounted at ``path``; None where this system does not let us mount one."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _noise_clip(path: Path, frames: int = 30) -> Path:
    """Incompressible frames: the H.264 output is far bigger than 64 kB."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast"}
        for _ in range(frames):
            c.mux(s.encode(av.VideoFrame.from_ndarray(rng.integers(0, 255, (240, 320, 3), np.uint8), format="rgb24")))
        c.mux(s.encode(None))
    return path


def test_disk_full_cli(tmp_path, monkeypatch, capsys, shared_models):
    src = _noise_clip(tmp_path / "noise.mp4")
    args = [str(src), "--model", MODEL, "--alpha", "0"]
    with tiny_disk(tmp_path / "disk") as disk:
        if disk is not None:  # a real full disk, the CLI in its own process
            out = disk / "out.mp4"
            r = run_cli(*args, "-o", str(out), timeout=TIMEOUT)
            code, err = r.returncode, r.stderr
            left = sorted(p.name for p in disk.iterdir())
        else:  # no mounting here: the same failure from a writer that runs out of space
            out = tmp_path / "disk" / "out.mp4"
            monkeypatch.setattr(video.VideoSink, "write", _full_after(5))
            code = cli.main([*args, "-o", str(out)])
            err = capsys.readouterr().err
            left = sorted(p.name for p in out.parent.iterdir())
    assert code == cli.EXIT_MODEL, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == f"error: the disk is full (no space left on device) while writing {out}; nothing was kept."
    assert left == [], f"left on the full disk: {left}"


# -- the running app ---------------------------------------------------------------------------------------
HOOK = '''
"""Faults injected into the app under test by tests/system/test_faults.py (on PYTHONPATH as sitecustomize)."""
import errno

import numpy as np

from segmentation import runners, video

_run, _write = runners.LiteRTRunner.__call__, video.VideoSink.write


def _run_or_crash(self, rgb):
    if np.abs(rgb[::8, ::8].astype(int) - (255, 0, 255)).max() < 60:  # an all-magenta picture
        raise RuntimeError("injected fault: the model runner crashed on this input")
    return _run(self, rgb)


def _write_or_full(self, rgb, pts=None, duration=None):
    if self.path.name.startswith("diskfull") and self.frames >= 3:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _write(self, rgb, pts, duration)


runners.LiteRTRunner.__call__ = _run_or_crash
video.VideoSink.write = _write_or_full
'''


@pytest.fixture(scope="module")
def app(shared_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-app")
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(HOOK))
    path = os.pathsep.join(filter(None, [str(hook), str(ROOT), os.environ.get("PYTHONPATH")]))
    with running_app(root, PYTHONPATH=path) as app:
        yield app


GENERIC = "Something went wrong while processing this file; the error was logged on the server."


def test_app_runner_crash_fails_that_job_only(app, tmp_path):
    srv, tmp, client = app
    poisoned, normal = tmp_path / "magenta.png", tmp_path / "normal.png"
    Image.new("RGB", (40, 30), MAGENTA).save(poisoned)
    Image.fromarray(picture(0, 52, 30)).save(normal)
    assert GENERIC in api_error(submit(client, IMAGE, poisoned, MODEL))
    out, _, stats = submit(client, IMAGE, normal, MODEL).result(timeout=TIMEOUT)
    with Image.open(result_file(out)) as im:
        assert im.size == (52, 30)

    clip = _magenta_clip(tmp_path / "clip.mp4", from_frame=8)
    assert GENERIC in api_error(submit(client, VIDEO, clip, MODEL))
    out, _, stats = submit(client, VIDEO, make_clip(tmp_path / "ok.mp4", frames=7), MODEL).result(timeout=TIMEOUT)
    assert stats["frames"] == 7 and len(video_times(result_file(out))) == 7
    log = srv.log()
    assert log.count("RuntimeError: injected fault: the model runner crashed") == 2, log[-3000:]
    assert srv.process.poll() is None
    assert temp_leftovers(tmp) == []
    assert len(job_dirs(tmp)) == 2  # the two results; the failed jobs took their folders away


def test_app_disk_full_says_so_and_keeps_nothing(app, tmp_path):
    srv, tmp, client = app
    before = job_dirs(tmp)
    clip = make_clip(tmp_path / "diskfull.mp4", frames=20)
    msg = api_error(submit(client, VIDEO, clip, MODEL))
    assert "ran out of disk space" in msg and "nothing was kept" in msg, msg
    assert job_dirs(tmp) == before and temp_leftovers(tmp) == []
    assert "Disk full while writing a result" in srv.log()
    out, _, stats = submit(client, VIDEO, make_clip(tmp_path / "fine.mp4", frames=5), MODEL).result(timeout=TIMEOUT)
    assert stats["frames"] == 5


def _partial_outputs(tmp: Path) -> list[Path]:
    return [f for d in job_dirs(tmp) for f in d.iterdir() if f.name.endswith(".part")]


def _assert_stops(srv, tmp: Path, before: list[Path], stop, log_line: str) -> None:
    """With a long video half-way through: ``stop()`` must end the job, its files and the CPU load."""
    proc = psutil.Process(srv.process.pid)
    wait_for(lambda: _partial_outputs(tmp), 60, "writing the output")
    assert proc.cpu_percent(interval=0.5) > 30, "the job is not running"
    stop()
    took = wait_for(lambda: job_dirs(tmp) == before, 10, "the job folder removed")
    idle = wait_for(lambda: proc.cpu_percent(interval=0.3) < 15, 10, "the server idle again")
    print(f"\ncancelled: job folder gone {took:.2f} s after, server idle {took + idle:.2f} s after")
    assert log_line in srv.log()
    assert temp_leftovers(tmp) == []


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """~25 s of work for the default model: 300 frames at 320x240."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", size=(320, 240), frames=300)


def test_job_cancelled_from_the_client_stops(app, long_clip):
    srv, tmp, client = app
    before = job_dirs(tmp)
    job = submit(client, VIDEO, long_clip, "autoseg-edgetpu-xs")
    _assert_stops(srv, tmp, before, job.cancel, "cancelled (Stop)")
    wait_for(lambda: job.status().code.name == "CANCELLED", 10, "the job reported cancelled")


def test_client_closing_its_connection_stops_the_job(app, long_clip):
    srv, tmp, _ = app
    before = job_dirs(tmp)
    with open(long_clip, "rb") as f:
        r = httpx.post(srv.url + "gradio_api/upload", files={"files": (long_clip.name, f, "video/mp4")}, timeout=30)
    path = r.json()[0]
    data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, "autoseg-edgetpu-xs", "overlay", 0.5, "accurate", [],
            True]
    event = httpx.post(srv.url + "gradio_api/call/segment_video", json={"data": data}, timeout=30).json()["event_id"]
    port = int(srv.url.rsplit(":", 1)[1].strip("/"))
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)  # the client's results stream, by hand
    conn.sendall(f"GET /gradio_api/call/segment_video/{event} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    try:
        _assert_stops(srv, tmp, before, conn.close, "Client disconnected; cancelling job")
    finally:
        conn.close()


def test_server_still_serves_after_the_faults(app, tmp_path):
    srv, tmp, client = app
    src = make_clip(tmp_path / "after.mp4", size=(80, 60), frames=9)
    out, _, stats = submit(client, VIDEO, src, MODEL).result(timeout=TIMEOUT)
    assert stream_facts(result_file(out))["size"] == (80, 60) and stats["frames"] == 9
    assert temp_leftovers(tmp) == []
