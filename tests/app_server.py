"""Starting ``python3 app.py`` as a real server process for the API and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def start_app(log_path: Path, timeout: float = 90.0, **env_overrides: str) -> AppServer:
    """Start app.py on a free port with the shared models/examples; wait for its page to answer 200."""
    port = free_port()
    env = dict(os.environ)
    env.update({
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "SEGMENTATION_WEIGHTS": env.get("SEGMENTATION_WEIGHTS", str(SHARED / "models")),
        "SEGMENTATION_EXAMPLES_SOURCE": os.pathsep.join([str(SHARED / "videos"), str(SHARED / "images")]),
        "SEGMENTATION_WARM_EXAMPLES": "0",  # keep the CPU for the test itself
        "PYTHONUNBUFFERED": "1",
    })
    env.update(env_overrides)
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
