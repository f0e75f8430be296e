"""Starting ``python3 app.py`` as a real server process for the API and browser tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    startup_s: float  # process start -> first HTTP 200 on the page

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_app(log_path: Path, timeout: float = 90.0, **env_overrides: str | None) -> AppServer:
    """Start app.py on a free port with the shared models/examples; wait for its page to answer 200.

    An override of ``None`` removes that variable from the app's environment."""
    port = free_port()
    env = dict(os.environ)
    env.update({
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "SEGMENTATION_WEIGHTS": env.get("SEGMENTATION_WEIGHTS", str(SHARED / "models")),
        "SEGMENTATION_EXAMPLES_SOURCE": os.pathsep.join([str(SHARED / "videos"), str(SHARED / "images")]),
        "SEGMENTATION_WARM_EXAMPLES": "0",  # keep the CPU for the test itself
        # each server its own example results: a cached result names files in the temp folder of
        # the app that computed it, which that app deletes when it stops
        "GRADIO_EXAMPLES_CACHE": str(log_path.parent / "cached_examples"),
        # and its own upload folder: uploads of the same bytes land on the same path in a shared
        # /tmp/gradio, and another app stopping (an earlier test's) deletes them under this one
        "GRADIO_TEMP_DIR": str(log_path.with_name(log_path.stem + "-gradio-tmp")),
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    log_file = open(log_path, "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    url = f"http://127.0.0.1:{port}/"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with status {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            stop_app(proc)
            raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    return AppServer(url, proc, log_path, time.monotonic() - t0)


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Peak:
    """Samples ``measure()`` every ``interval`` seconds in a thread while in its ``with`` block;
    ``peak`` is the largest value seen."""

    def __init__(self, measure, interval: float = 0.05):
        self.measure, self.interval, self.peak = measure, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.measure())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- the app's temporary files -----------------------------------------------------------------
def temp_env(root: Path) -> dict[str, str]:
    """Environment putting everything the app writes to temp under ``root``: its TempStore
    (``segmentation-app-*`` in TMPDIR) and Gradio's upload cache (``root/gradio``)."""
    root.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(root), "GRADIO_TEMP_DIR": str(root / "gradio")}


def store_dir(root: Path) -> Path:
    """The running app's TempStore folder under its TMPDIR ``root``."""
    found = list(root.glob("segmentation-app-*"))
    assert len(found) == 1, f"expected one TempStore folder in {root}, found {found}"
    return found[0]


def job_dirs(root: Path) -> list[Path]:
    return sorted(d for d in store_dir(root).iterdir() if d.is_dir())


def store_bytes(root: Path) -> int:
    """Bytes in the running app's job folders (a file removed while counting counts 0)."""
    total = 0
    for d in job_dirs(root):
        for f in list(d.iterdir()) if d.exists() else ():
            try:
                total += f.stat().st_size
            except OSError:
                pass
    return total


_CACHE_DIR = re.compile(r"[0-9a-f]{64}")


def temp_leftovers(root: Path) -> list[str]:
    """Everything under the app's TMPDIR ``root`` that is neither a finished result nor Gradio's
    cache: a job folder must hold exactly one ``NAME_segmented.png|mp4|webm``, with the page's runs
    its ``NAME_labels.zip`` and ``NAME_labels.json``, and nothing hidden (no ``.part``); Gradio's
    cache only hash-named folders of uploads and results."""
    bad = []
    for p in sorted(root.iterdir()):
        if p.name == "gradio" and p.is_dir():
            for q in sorted(p.iterdir()):
                if q.name == "vibe_edit_history" and q.is_dir() and not any(q.iterdir()):
                    continue  # made (empty) by Gradio at start
                if not (q.is_dir() and _CACHE_DIR.fullmatch(q.name)):
                    bad.append(str(q))
                else:
                    bad += [str(f) for f in q.iterdir() if f.name.startswith(".") or not f.is_file()]
        elif p.name.startswith("segmentation-app-") and p.is_dir():
            for job in sorted(p.iterdir()):
                files = sorted(f.name for f in job.iterdir()) if job.is_dir() else None
                if files is None or not _one_result(files):
                    bad.append(f"{job}: {files}")
        else:
            bad.append(str(p))
    return bad


def _one_result(files: list[str]) -> bool:
    """One result, alone or with both its label files (names as ``webapp.jobs`` makes them)."""
    results = [m for f in files if (m := re.fullmatch(r"([^.].*)_segmented\.(png|mp4|webm)", f))]
    if len(results) != 1:
        return False
    stem = results[0].group(1)
    # the page's runs may add what its players show (webapp.previews): a playable copy of the
    # source, and remove-background's WebM over a checkerboard
    kind = results[0].group(2)
    previews = {f"{stem}_original.mp4"} if kind in ("mp4", "webm") else set()
    previews |= {f"{stem}_segmented_preview.mp4"} if kind == "webm" else set()
    files = [f for f in files if f not in previews]
    return sorted(files) in ([results[0].group(0)], sorted([results[0].group(0), f"{stem}_labels.zip",
                                                            f"{stem}_labels.json"]))


@contextmanager
def running_app(root: Path, **env_overrides: str):
    """``start_app`` with everything it writes to temp under ``root/tmp`` (see ``temp_env``);
    yields (server, that tmp folder, a client); stops the server afterwards."""
    tmp = root / "tmp"
    srv = start_app(root / "app.log", **env_overrides, **temp_env(tmp))
    try:
        yield srv, tmp, api_client(srv, root / "downloads")
    finally:
        stop_app(srv.process)


def api_client(server: AppServer, downloads: Path, forwarded_for: str | None = None):
    """A gradio_client for the server (a session of its own), saving results under ``downloads``,
    sending nothing elsewhere. ``forwarded_for``: the ``X-Forwarded-For`` it sends, as a visitor
    behind a proxy seems to the app (believed only from a peer in SEGMENTATION_TRUSTED_PROXIES)."""
    from gradio_client import Client

    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return Client(server.url, verbose=False, download_files=str(downloads), analytics_enabled=False,
                  headers=headers)


# -- calling the API ---------------------------------------------------------------------------
IMAGE, VIDEO = "/segment_image", "/segment_video"


def submit(client, endpoint: str, path: Path, model: str, *, mode: str = "overlay", alpha: float = 0.5,
           speed: str = "accurate", classes=()):  # classes: any JSON value, as a client may send
    """Start one /segment_image or /segment_video job for a local file; returns the gradio_client Job."""
    from gradio_client import handle_file

    args = [handle_file(str(path)), model, mode, alpha] + ([speed] if endpoint == VIDEO else []) + [classes]
    return client.submit(*args, api_name=endpoint)


def result_file(out) -> Path:
    """The local path of a job's result (a video output comes as {"video": path, ...})."""
    return Path(out["video"] if isinstance(out, dict) else out)


def check_own_result(job: dict, out, stats: dict) -> None:
    """The result is this job's own: its size and colour (a photo, sent with alpha 0: ``size``,
    ``colour``) or its size and frame count (a video: ``size``, ``frames``)."""
    import numpy as np
    from media import stream_facts, video_times
    from PIL import Image

    path = result_file(out)
    if job["endpoint"] == IMAGE:
        with Image.open(path) as im:
            assert im.size == job["size"], (job["path"].name, im.size)
            mean = np.asarray(im.convert("RGB")).reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - job["colour"]).max() < 2, (job["path"].name, mean, job["colour"])  # alpha 0
    else:
        w, h = job["size"]
        assert stream_facts(path)["size"] == (w, h) and stats["frames"] == job["frames"], (job["path"].name, stats)
        assert len(video_times(path)) == job["frames"], job["path"].name


def api_error(job, timeout: float = 120) -> str:
    """The server's one-sentence refusal of a job (gradio_client raises it as ``AppError``)."""
    try:
        job.result(timeout=timeout)
    except Exception as exc:
        assert type(exc).__name__ == "AppError", repr(exc)
        return str(exc)
    raise AssertionError("the job succeeded; a refusal was expected")
