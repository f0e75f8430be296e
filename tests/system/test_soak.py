"""Soak: 200 mixed jobs from 4 visitors on one app, then the server is back where it started.

Four visitors (each its own address: an X-Forwarded-For the app believes from 127.0.0.1), each
with two gradio_client sessions (two tabs) and so two jobs in flight -- the address's one running
and one waiting -- send 50 jobs each: photos and tiny clips (each with its own size, and colour
or frame count, so a result can be told apart), some cancelled at a random moment, some bad (a
text file named .mp4, a photo sent to the video endpoint). A cancel goes from a session with nothing else in flight:
Gradio's /cancel stops every job of that session on that endpoint. The results budget is small
(SEGMENTATION_TMP_MAX_MB=0.25, a few results) so results are evicted all along.

Checked: every job gets its own output (or its own sentence); the job store never holds more
than its budget (sampled every 0.1 s); after each half of the jobs the server's RSS, open file
descriptors and threads are back at their idle level (after a concurrent warm-up round, within a
tolerance; the second half may add half as much as both) and no temporary file is left. The
figures go to artifacts/soak.json (and docs/quality-and-speed.md). Marked ``soak``: part of the normal suite
(about 40 s here), ``-m "not soak"`` leaves it out.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import psutil
import pytest
from app_server import (IMAGE, VIDEO, Peak, api_client, check_own_result, running_app, store_bytes, submit,
                        temp_leftovers)
from media import make_clip
from PIL import Image

pytestmark = pytest.mark.soak

VISITORS, PER_VISITOR, IN_FLIGHT = 4, 50, 2
BUDGET_MB = 0.25  # a few results: evictions all along
PHOTO_MODEL, VIDEO_MODEL = "deeplabv3-pascal-dm05", "autoseg-edgetpu-xs"
TIMEOUT = 120
BUSY = "(the limit per visitor is"  # the refusal of a visitor's third job
RSS_TOLERANCE_MB, FD_TOLERANCE = 48, 4
# How gradio_client 2.7 ends a job it cancelled: CancelledError, or (cancelled while running: Gradio
# answers /cancel with an empty output) KeyError "Could not find 'data' key", or ValueError "Did not
# expect 2 tasks to be done" when the answer and the cancel cross.
CANCELLED = ("CancelledError", "KeyError", "ValueError")


def _job(folder: Path, n: int) -> dict:
    """Job number ``n``: its kind by n % 10, its input told apart from every other job's."""
    kind, m = n % 10, n % 200
    if kind < 5:  # a photo: its own size and colour
        size, colour = (40 + m, 30 + m % 11), ((m * 37) % 256, (m * 91) % 256, (m * 53) % 256)
        path = folder / f"photo{n}.png"
        Image.new("RGB", size, colour).save(path)
        return {"kind": "photo", "endpoint": IMAGE, "path": path, "size": size, "colour": colour}
    if kind < 8 or kind == 9:  # a tiny clip (9: cancelled): its own size and frame count
        # (not too wide for its height: see test_abuse's wide-clip test)
        size, frames = (64 + 2 * (m % 40), 48 + 2 * (m // 40)), 3 + m % 4
        path = make_clip(folder / f"clip{n}.mp4", size=size, frames=frames)
        return {"kind": "cancel" if kind == 9 else "clip", "endpoint": VIDEO, "path": path, "size": size,
                "frames": frames}
    if n % 20 == 8:  # bad: not a video at all
        path = folder / f"notes{n}.mp4"
        path.write_text("not a video\n" * 20)
        return {"kind": "bad", "endpoint": VIDEO, "path": path, "error": f"notes{n}.mp4 is not a video file"}
    path = folder / f"photo{n}.jpg"  # bad: a photo sent to the video endpoint
    Image.new("RGB", (20, 20), (1, 2, 3)).save(path)
    return {"kind": "bad", "endpoint": VIDEO, "path": path, "error": f"photo{n}.jpg is a photo, not a video"}


def _run(client, job: dict, rng: random.Random, tally: dict) -> str:
    """Run one job to its outcome ("ok", "cancelled", "refused"); a wrong outcome raises."""
    model = PHOTO_MODEL if job["endpoint"] == IMAGE else VIDEO_MODEL
    for _ in range(50):  # a visitor just back from a cancel may find its cancelled job still stopping
        handle = submit(client, job["endpoint"], job["path"], model, alpha=0.0, speed="realtime")
        if job["kind"] == "cancel":
            time.sleep(rng.uniform(0.0, 0.4))
            handle.cancel()
        try:
            out, _, stats = handle.result(timeout=TIMEOUT)
        except Exception as exc:
            text = str(exc)
            if BUSY in text:
                tally["busy_retries"] += 1
                time.sleep(0.2)
                continue
            if job["kind"] == "cancel" and type(exc).__name__ in CANCELLED:
                return "cancelled"
            assert job["kind"] == "bad" and job["error"] in text, (job["path"].name, repr(exc))
            return "refused"
        assert job["kind"] != "bad", job["path"].name
        check_own_result(job, out, stats)
        return "ok"
    raise AssertionError(f"{job['path'].name}: refused as busy 50 times")


def _settled(proc: psutil.Process, seconds: float = 20.0) -> tuple[float, int, int]:
    """(RSS in MB, open fds, threads) once the server is idle (its CPU below 10%)."""
    t0 = time.monotonic()
    while proc.cpu_percent(interval=0.5) > 10 and time.monotonic() - t0 < seconds:
        pass
    time.sleep(1.0)  # Gradio's per-event clean-up after the last answer
    return proc.memory_info().rss / 2**20, proc.num_fds(), proc.num_threads()


def test_soak_mixed_jobs_from_four_visitors(shared_models, tmp_path, artifacts):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    jobs = [_job(inputs, n) for n in range(VISITORS * PER_VISITOR)]
    warm = [_job(inputs, 1000 + n) for n in (0, 5, 8, 18)]  # a photo, a clip, both bad kinds
    with running_app(tmp_path / "app", SEGMENTATION_TRUSTED_PROXIES="127.0.0.1",
                     SEGMENTATION_TMP_MAX_MB=str(BUDGET_MB)) as (srv, tmp, first):
        proc = psutil.Process(srv.process.pid)
        clients = [[api_client(srv, tmp_path / f"downloads{v}-{w}", f"203.0.113.{v + 1}") for w in range(IN_FLIGHT)]
                   for v in range(VISITORS)]
        tally = {"busy_retries": 0}

        def warm_up(v: int, w: int) -> None:  # models loaded, every code path, thread pools filled
            for job in warm:
                _run(clients[v][w], job, random.Random(0), tally)

        for _ in range(2):
            threads = [threading.Thread(target=warm_up, args=(v, w)) for v in range(VISITORS) for w in range(IN_FLIGHT)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
        rss0, fds0, threads0 = _settled(proc)
        log_before = srv.log().count("to keep results within")

        outcomes: list[str | None] = [None] * len(jobs)
        errors: list[str] = []
        half = PER_VISITOR // 2

        def worker(v: int, w: int, first: int) -> None:
            rng = random.Random(v * 10 + w + first)
            for n in range(v * PER_VISITOR + first + w, v * PER_VISITOR + first + half, IN_FLIGHT):
                try:
                    outcomes[n] = _run(clients[v][w], jobs[n], rng, tally)
                except BaseException as exc:  # reported below, not lost in the thread
                    errors.append(f"job {n} (visitor {v}, session {w}) at {time.monotonic() - t0:.2f}: {exc!r}")

        t0 = time.monotonic()
        rounds = []  # (RSS, fds, threads) after each half: a leak grows with the jobs, a warm-up does not
        with Peak(lambda: store_bytes(tmp), interval=0.1) as store:
            for first in (0, half):
                threads = [threading.Thread(target=worker, args=(v, w, first))
                           for v in range(VISITORS) for w in range(IN_FLIGHT)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(600)
                rounds.append(_settled(proc))
        wall = time.monotonic() - t0
        assert not errors, errors[:3]
        assert srv.process.poll() is None
        (rss_half, _, _), (rss1, fds1, threads1) = rounds
        leftovers = temp_leftovers(tmp)
        evicted = srv.log().count("to keep results within") - log_before

    counts = {k: outcomes.count(k) for k in ("ok", "cancelled", "refused")}
    figures = {
        "jobs": len(jobs), "visitors": VISITORS, "wall_s": round(wall, 1), "jobs_per_s": round(len(jobs) / wall, 2),
        **counts, "busy_retries_after_cancel": tally["busy_retries"],
        "idle_rss_mb": round(rss0, 1), "half_rss_mb": round(rss_half, 1), "after_rss_mb": round(rss1, 1),
        "idle_fds": fds0, "after_fds": fds1, "idle_threads": threads0, "after_threads": threads1,
        "store_budget_mb": BUDGET_MB, "store_peak_mb": round(store.peak / 2**20, 3), "results_evicted": evicted,
    }
    (artifacts / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nsoak: {figures}")
    assert None not in outcomes and sum(counts.values()) == len(jobs), counts
    assert counts["ok"] >= 150 and counts["refused"] == 20, counts
    assert store.peak <= BUDGET_MB * 2**20 and evicted > 0, figures
    assert rss1 - rss0 <= RSS_TOLERANCE_MB and rss1 - rss_half <= RSS_TOLERANCE_MB / 2, figures
    assert fds1 - fds0 <= FD_TOLERANCE and threads1 - threads0 <= 2, figures
    assert leftovers == [], leftovers
