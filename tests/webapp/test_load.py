"""Load: a burst of concurrent visitors on one app (one job at a time, a queue of 4).

One visitor's longer video holds the worker; meanwhile BURST gradio_client
clients, each with its own photo or short video and its own address (an
X-Forwarded-For the app believes from 127.0.0.1, as from a proxy in front of it:
one address would get only its two jobs, see test_abuse), submit at the same moment
(a barrier releases them together). Every job must either come back correct,
and its own (each photo has its own size and colour, each video its own size
and frame count, checked in the returned file), or be turned away with
Gradio's clear queue-full sentence. The turned-away visitors then try again,
one after another, and all succeed. Latency (submit to result, upload
included) p50/p95 and the server's peak RSS (psutil, polled every 50 ms) are
printed and written to artifacts/load.json. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from app_server import (IMAGE, VIDEO, Peak, api_client, check_own_result, result_file, running_app, submit,
                        temp_leftovers)
from media import make_clip, stream_facts
from PIL import Image

QUEUE = 4
BURST = 10
PHOTO_MODEL, VIDEO_MODEL = "deeplabv3-pascal-dm05", "autoseg-edgetpu-xs"
QUEUE_FULL = "Queue is full! Please try again."
TIMEOUT = 90


def _jobs(folder: Path) -> list[dict]:
    """BURST inputs, each told apart by what comes back: photos by size and colour, videos by size
    and frame count."""
    jobs = []
    for i in range(BURST):
        if i % 2 == 0:
            size, colour = (96 + 16 * i, 64 + 8 * i), (20 * i + 10, 200 - 15 * i, 40 + 20 * i)
            path = folder / f"photo{i}.png"
            Image.new("RGB", size, colour).save(path)
            jobs.append({"endpoint": IMAGE, "path": path, "size": size, "colour": colour})
        else:
            size, frames = (64 + 16 * i, 48 + 8 * i), 4 + 2 * i
            path = make_clip(folder / f"clip{i}.mp4", size=size, frames=frames)
            jobs.append({"endpoint": VIDEO, "path": path, "size": size, "frames": frames})
    return jobs


def _run(client, job: dict) -> dict:
    model = PHOTO_MODEL if job["endpoint"] == IMAGE else VIDEO_MODEL
    t0 = time.perf_counter()
    handle = submit(client, job["endpoint"], job["path"], model, alpha=0.0, speed="realtime")
    try:
        out, _, stats = handle.result(timeout=TIMEOUT)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}
    done = time.perf_counter() - t0
    check_own_result(job, out, stats)
    return {"seconds": done}


@pytest.fixture(scope="module")
def app(shared_models, tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("load-app"), SEGMENTATION_QUEUE_SIZE=str(QUEUE),
                     SEGMENTATION_CONCURRENCY="1", SEGMENTATION_TRUSTED_PROXIES="127.0.0.1") as app:
        yield app


def test_burst_of_visitors(app, tmp_path, artifacts):
    srv, tmp, first = app
    jobs = _jobs(tmp_path)
    long_clip = make_clip(tmp_path / "long.mp4", size=(320, 240), frames=60)
    clients = [api_client(srv, tmp_path / f"downloads{i}", f"203.0.113.{i + 1}") for i in range(BURST)] + [first]
    results: list[dict | None] = [None] * BURST
    barrier = threading.Barrier(BURST)

    def visitor(i: int) -> None:
        barrier.wait()
        try:
            results[i] = _run(clients[i], jobs[i])
        except BaseException as exc:  # a wrong result: reported below, not lost in the thread
            results[i] = {"wrong": repr(exc)}

    with Peak(lambda: psutil.Process(srv.process.pid).memory_info().rss) as rss:
        t0 = time.perf_counter()
        # One visitor's longer video (accurate: every frame through the model) holds the worker ...
        blocker = submit(clients[BURST], VIDEO, long_clip, VIDEO_MODEL, speed="accurate")
        while blocker.status().code.name not in ("PROCESSING", "FINISHED"):
            assert time.perf_counter() - t0 < TIMEOUT, "the first job never started"
            time.sleep(0.02)
        # ... while the burst arrives at once.
        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(BURST)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT + 30)
        assert not any(t.is_alive() for t in threads), "a visitor never got an answer"
        assert not [r for r in results if "wrong" in r], results
        assert stream_facts(result_file(blocker.result(timeout=TIMEOUT)[0]))["size"] == (320, 240)
        burst_s = time.perf_counter() - t0
        # Everyone turned away tries again, one after another: all succeed.
        turned_away = [i for i, r in enumerate(results) if "error" in r]
        retries = [_run(clients[i], jobs[i]) for i in turned_away]
    for i in turned_away:
        assert results[i]["error"] == f"QueueError: {QUEUE_FULL}", results[i]
    assert all("error" not in r for r in retries), retries
    served = [r["seconds"] for r in results if "error" not in r]
    assert len(served) + len(turned_away) == BURST
    assert turned_away, "no visitor was turned away: the queue limit did not hold"
    assert len(served) >= 1
    assert srv.process.poll() is None
    assert temp_leftovers(tmp) == []

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2)

    every = served + [r["seconds"] for r in retries]
    figures = {
        "burst": BURST, "queue_size": QUEUE, "served_in_burst": len(served), "queue_full": len(turned_away),
        "latency_p50_s": pct(every, 50), "latency_p95_s": pct(every, 95),  # every job served, burst and retries
        "burst_latency_p50_s": pct(served, 50), "burst_latency_p95_s": pct(served, 95),  # queued behind the video
        "queue_full_answer_max_s": round(max(results[i]["seconds"] for i in turned_away), 2),
        "peak_rss_mb": round(rss.peak / 2**20, 1), "burst_wall_s": round(burst_s, 1),
    }
    (artifacts / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nload: {figures}")
    assert figures["peak_rss_mb"] < 2048, figures
