"""A hostile visitor against the running app: bounded work per job, per visitor and on disk.

Through gradio_client against ``python3 app.py`` (default limits unless a test needs a smaller
one; the default app believes X-Forwarded-For from 127.0.0.1 so that clients here can be told
apart by address, as behind a proxy):

* work per job, from the header: a 3-second MKV at 1000 frames/s (64x48, 3000 frames, ~220 kB)
  and a 50 fps clip of 3,700 frames are refused in seconds, nothing processed;
* work per job, while decoding: a raw H.264 stream and a live-written MKV (no duration or frame
  count in the header) are stopped at the frame limit;
* wall clock per job: a job past SEGMENTATION_MAX_JOB_SECONDS is cancelled, its files removed;
* per visitor: one client submitting 5 jobs at once gets 2 (one running, one waiting) and a
  sentence for the rest, a new session from the same address too, while another visitor is served;
* disk: results beyond SEGMENTATION_TMP_MAX_MB evict the oldest; a result that cannot fit is
  refused before encoding, and one that outgrows its estimate (noise) is stopped.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import psutil
import pytest
from app_server import (IMAGE, VIDEO, api_client, api_error, check_own_result, job_dirs, running_app, store_bytes,
                        submit, temp_leftovers)
from media import headerless_clips, make_clip
from PIL import Image

MODEL = "autoseg-edgetpu-xs"
PHOTO_MODEL = "deeplabv3-pascal-dm05"
TIMEOUT = 120
SMALL_FRAMES, SMALL_MB, CLOCK_S = 50, 1, 2


@pytest.fixture(scope="module")
def default_app(shared_models, tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("abuse-default"), SEGMENTATION_TRUSTED_PROXIES="127.0.0.1") as app:
        yield app


@pytest.fixture(scope="module")
def small_app(shared_models, tmp_path_factory):
    """Small frame and disk budgets."""
    with running_app(tmp_path_factory.mktemp("abuse-small"), SEGMENTATION_MAX_FRAMES=str(SMALL_FRAMES),
                     SEGMENTATION_TMP_MAX_MB=str(SMALL_MB)) as app:
        yield app


# -- work per job, from the header --------------------------------------------------------------
def test_thousand_fps_clip_is_refused_at_once(default_app, tmp_path):
    srv, tmp, client = default_app
    clip = make_clip(tmp_path / "fast.mkv", size=(64, 48), frames=3000, rate=Fraction(1000),
                     time_base=Fraction(1, 1000))
    assert clip.stat().st_size < 2**20, clip.stat().st_size  # far within the upload limit
    before = job_dirs(tmp)
    t0 = time.monotonic()
    msg = api_error(submit(client, VIDEO, clip, MODEL))
    took = time.monotonic() - t0
    assert msg == "The video runs at 1,000 frames per second; the limit is 60.", msg
    assert took < 5, f"refused after {took:.1f} s"
    assert job_dirs(tmp) == before and temp_leftovers(tmp) == []
    print(f"\n1000 fps clip ({clip.stat().st_size / 1024:.0f} kB, 3000 frames) refused in {took:.2f} s")


def test_too_many_frames_in_the_header_are_refused_at_once(default_app, tmp_path):
    srv, tmp, client = default_app
    clip = make_clip(tmp_path / "long.mp4", size=(32, 32), frames=3700, rate=Fraction(50), time_base=Fraction(1, 50))
    t0 = time.monotonic()
    msg = api_error(submit(client, VIDEO, clip, MODEL))
    assert msg == "The video has 3,700 frames; the limit is 3,600 frames (120 s at 30 frames per second).", msg
    assert time.monotonic() - t0 < 5


# -- work per job, while decoding -------------------------------------------------------------
def test_headers_without_a_length_are_stopped_at_the_frame_limit(small_app, tmp_path):
    srv, tmp, client = small_app
    clips = headerless_clips(tmp_path, frames=2 * SMALL_FRAMES, short=SMALL_FRAMES - 10)
    before = job_dirs(tmp)
    for name in ("raw.h264", "live.mkv"):
        msg = api_error(submit(client, VIDEO, clips[name], MODEL, speed="realtime"))
        assert msg == f"The video has more than {SMALL_FRAMES} frames; the limit is {SMALL_FRAMES}.", (name, msg)
    assert job_dirs(tmp) == before, "a stopped video left its job folder"
    out, _, stats = submit(client, VIDEO, clips["short.h264"], MODEL, speed="realtime").result(timeout=TIMEOUT)
    assert stats["frames"] == SMALL_FRAMES - 10  # within the limit: processed whole
    assert temp_leftovers(tmp) == []


# -- wall clock per job ------------------------------------------------------------------------
def test_job_past_the_wall_clock_limit_is_cancelled(shared_models, tmp_path):
    clip = make_clip(tmp_path / "slow.mp4", size=(320, 240), frames=300)  # ~15-25 s of accurate work
    with running_app(tmp_path / "clock", SEGMENTATION_MAX_JOB_SECONDS=str(CLOCK_S)) as (srv, tmp, client):
        before = job_dirs(tmp)
        job = submit(client, VIDEO, clip, MODEL, speed="accurate")
        while job.status().code.name not in ("PROCESSING", "FINISHED"):
            time.sleep(0.05)
        t0 = time.monotonic()
        msg = api_error(job)
        took = time.monotonic() - t0
        assert msg == (f"The job took longer than the limit of {CLOCK_S} s and was stopped; nothing was kept. "
                       "Try a shorter or smaller clip, or the realtime speed."), msg
        assert took < CLOCK_S + 3, f"answered {took:.1f} s after it started"
        assert job_dirs(tmp) == before and temp_leftovers(tmp) == []
        proc = psutil.Process(srv.process.pid)
        assert proc.cpu_percent(interval=0.5) < 30, "the job still runs"
        out, _, stats = submit(client, VIDEO, make_clip(tmp_path / "quick.mp4", frames=5), MODEL).result(
            timeout=TIMEOUT)
        assert stats["frames"] == 5  # the slot was given back
        print(f"\nwall clock: stopped {took:.2f} s after the job started (limit {CLOCK_S} s)")


# -- per visitor -------------------------------------------------------------------------------
def test_one_visitor_gets_one_running_and_one_waiting_others_are_served(default_app, tmp_path):
    srv, tmp, _ = default_app
    alice = api_client(srv, tmp_path / "alice", "203.0.113.1")
    alice_new_tab = api_client(srv, tmp_path / "alice2", "203.0.113.1")  # a new session, same address
    bob = api_client(srv, tmp_path / "bob", "203.0.113.2")
    clips = [{"endpoint": VIDEO, "size": (320 + 16 * i, 240), "frames": 60 + i,
              "path": make_clip(tmp_path / f"alice{i}.mp4", size=(320 + 16 * i, 240), frames=60 + i)}
             for i in range(5)]
    photo = {"endpoint": IMAGE, "path": tmp_path / "bob.png", "size": (90, 70), "colour": (10, 120, 200)}
    Image.new("RGB", photo["size"], photo["colour"]).save(photo["path"])

    t0 = time.monotonic()
    handles = [submit(alice, VIDEO, c["path"], MODEL, alpha=0.0, speed="accurate") for c in clips]
    outcomes: dict[int, object] = {}
    while len(outcomes) < 3 and time.monotonic() - t0 < 30:  # the refusals come first, at once
        for i, h in enumerate(handles):
            if i not in outcomes and h.done():
                try:
                    outcomes[i] = h.result()
                except Exception as exc:
                    outcomes[i] = exc
        time.sleep(0.05)
    refused_s = time.monotonic() - t0
    refusals = {i: str(e) for i, e in outcomes.items() if isinstance(e, Exception)}
    assert len(refusals) == 3, outcomes
    for text in refusals.values():
        assert text == ("You already have a job running and one waiting (the limit per visitor is 2); "
                        "wait until one finishes (or press Stop), then try again."), text
    assert refused_s < 10, f"the refusals took {refused_s:.1f} s"
    # Same address, new session: still this visitor.
    msg = api_error(submit(alice_new_tab, IMAGE, photo["path"], PHOTO_MODEL))
    assert msg.startswith("Your network address already has a job running and one waiting"), msg
    # Another visitor is served, behind at most alice's two.
    t1 = time.monotonic()
    out, _, stats = submit(bob, IMAGE, photo["path"], PHOTO_MODEL, alpha=0.0).result(timeout=TIMEOUT)
    bob_s = time.monotonic() - t1
    check_own_result(photo, out, stats)
    accepted = [i for i in range(5) if i not in refusals]
    for i in accepted:
        out, _, stats = handles[i].result(timeout=TIMEOUT)
        check_own_result(clips[i], out, stats)
    assert temp_leftovers(tmp) == []
    print(f"\nper visitor: 3 of 5 refused within {refused_s:.2f} s; the other visitor served in {bob_s:.2f} s")


# -- disk ----------------------------------------------------------------------------------------
def _noise_photo(path: Path, w: int, h: int, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_results_beyond_the_disk_budget_evict_the_oldest(small_app, tmp_path):
    srv, tmp, client = small_app
    budget = SMALL_MB * 2**20
    folders = []
    for i in range(8):  # ~150 kB each as PNG: 8 do not fit in 1 MB
        seen = set(job_dirs(tmp))
        out, _, stats = submit(client, IMAGE, _noise_photo(tmp_path / f"n{i}.png", 256 + i, 192, i),
                               PHOTO_MODEL).result(timeout=TIMEOUT)
        assert stats["width"] == 256 + i
        folders.append(next(iter(set(job_dirs(tmp)) - seen)))
        assert store_bytes(tmp) <= budget, f"{store_bytes(tmp)} bytes kept after job {i}"
    kept = [f.exists() for f in folders]
    assert kept[-1] and not kept[0], kept
    assert kept == sorted(kept), f"not the oldest out first: {kept}"  # all gone ones before all kept ones
    assert temp_leftovers(tmp) == []


def test_a_result_that_cannot_fit_is_refused_before_encoding(small_app, tmp_path):
    srv, tmp, client = small_app
    clip = make_clip(tmp_path / "wide.mp4", size=(640, 480), frames=SMALL_FRAMES)
    before = job_dirs(tmp)
    t0 = time.monotonic()
    msg = api_error(submit(client, VIDEO, clip, MODEL, mode="side-by-side"))
    assert msg == (f"The result would take up to about 1.9 MB; the server keeps at most {SMALL_MB:.1f} MB of "
                   "results. Try a shorter or smaller file."), msg
    assert time.monotonic() - t0 < 5
    assert job_dirs(tmp) == before


def test_a_result_outgrowing_its_estimate_is_stopped(small_app, tmp_path):
    """Noise takes ~3 bits per pixel against the estimate's 0.5: the result is measured as it is written."""
    import av

    srv, tmp, client = small_app
    path = tmp_path / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 320, 240, "yuv420p", {"preset": "ultrafast", "crf": "10"}
        for _ in range(SMALL_FRAMES):
            c.mux(s.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
                                                      format="rgb24")))
        c.mux(s.encode(None))
    msg = api_error(submit(client, VIDEO, path, MODEL, mode="side-by-side", speed="realtime"))
    assert msg == (f"The result outgrew the {SMALL_MB:.1f} MB the server keeps for results and was stopped; "
                   "nothing was kept. Try a shorter or smaller clip."), msg
    assert store_bytes(tmp) <= SMALL_MB * 2**20 and temp_leftovers(tmp) == []


# -- found by the soak: OpenCV's DIS flow segfaulted on a 160x30 flow image (a 320x60 video) ------------
def test_a_wide_short_clip_does_not_take_the_server_down(shared_models, tmp_path):
    clip = make_clip(tmp_path / "wide.mp4", size=(320, 60), frames=4)
    with running_app(tmp_path / "wide") as (srv, tmp, client):
        _, _, stats = submit(client, VIDEO, clip, MODEL, speed="accurate").result(timeout=TIMEOUT)
        assert stats["frames"] == 4
        assert srv.process.poll() is None, f"the server died (exit status {srv.process.returncode})"
