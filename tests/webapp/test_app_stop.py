"""The app stops within 2 s of SIGTERM or Ctrl-C at any moment, with no traceback (issue 19).

Measured on real ``python3 app.py`` processes: while Python imports Gradio, while the example
results are being computed after start, and during a video job (SIGTERM and SIGINT). Afterwards
the job store's folder is gone and the process printed no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_server import VIDEO, api_client, start_app, submit, temp_env
from media import make_clip

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 2.0
MODEL = "autoseg-edgetpu-xs"


def stop_and_time(proc: subprocess.Popen, signum: int) -> float:
    t0 = time.monotonic()
    proc.send_signal(signum)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return float("inf")
    return time.monotonic() - t0


def wait_for(predicate, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def assert_clean(log: str, tmp: Path, proc: subprocess.Popen, code: int) -> None:
    assert "Traceback" not in log and "SystemExit" not in log, log[-3000:]
    assert proc.returncode == code, (proc.returncode, log[-2000:])
    assert not list(tmp.glob("segmentation-app-*")), "the job store outlived the app"


def test_sigint_while_importing(tmp_path):
    log = tmp_path / "app.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **temp_env(tmp_path / "tmp")))
    time.sleep(1.0)  # gradio is being imported
    took = stop_and_time(proc, signal.SIGINT)
    print(f"stopped in {took:.2f} s")
    assert took < LIMIT, f"{took:.2f} s"
    assert "Traceback" not in log.read_text(errors="replace") and proc.returncode == 130


def test_sigterm_while_computing_the_examples(tmp_path, shared_models):
    tmp = tmp_path / "tmp"
    srv = start_app(tmp_path / "app.log", SEGMENTATION_WARM_EXAMPLES="1",
                    GRADIO_EXAMPLES_CACHE=str(tmp_path / "examples-cache"), **temp_env(tmp))
    try:
        wait_for(lambda: "Loading the default model" in srv.log(), 30, "the warm-up")
        assert "Example results are cached" not in srv.log()
        took = stop_and_time(srv.process, signal.SIGTERM)
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    print(f"stopped in {took:.2f} s")
    assert took < LIMIT, f"{took:.2f} s"
    assert "Example results are cached" not in srv.log(), "the warm-up ended before the signal: nothing measured"
    assert_clean(srv.log(), tmp, srv.process, 0)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_job(tmp_path, shared_models, signum, code):
    clip = make_clip(tmp_path / "slow.mp4", size=(320, 240), frames=300)  # ~15-25 s of accurate work
    tmp = tmp_path / "tmp"
    srv = start_app(tmp_path / "app.log", **temp_env(tmp))
    try:
        client = api_client(srv, tmp_path / "downloads")
        job = submit(client, VIDEO, clip, MODEL, speed="accurate")
        wait_for(lambda: job.status().code.name in ("PROCESSING", "FINISHED"), 60, "the job to start")
        time.sleep(1.5)  # segmenting
        assert not job.done(), "the job ended before the signal: nothing measured"
        took = stop_and_time(srv.process, signum)
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    print(f"stopped in {took:.2f} s")
    assert took < LIMIT, f"{took:.2f} s"
    assert_clean(srv.log(), tmp, srv.process, code)
