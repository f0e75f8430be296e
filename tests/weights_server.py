"""A real HTTP server on 127.0.0.1 serving a fake model, and an empty weights cache.

Shared by test_weights (the download code) and test_faults (a fresh Segmenter
whose download fails). Import the fixtures into a test module to use them:
``from weights_server import cache, server``.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from segmentation import weights
from segmentation.catalog import CATALOG, ModelEntry

PAYLOAD = bytes(range(256)) * 700 + b"fake model tail"  # ~175 kB: several read chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
OTHER = b"not the model you are looking for" * 1000
FILENAME = "fake_model.tflite"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /ok (the payload), /other (wrong bytes), /500, /404, /drop (short body, then close),
    /stall (reads the request, never answers)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits[self.path] += 1
        if self.path == "/ok":
            self._send(200, PAYLOAD)
        elif self.path == "/other":
            self._send(200, OTHER)
        elif self.path == "/500":
            self._send(500, b"internal error")
        elif self.path == "/drop":
            # Promise more bytes than are sent, then close the connection mid-file.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/stall":
            self.server.released.wait(60)  # until the server shuts down
            self.close_connection = True
        else:
            self._send(404, b"not found")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 (port 0); ``server.url(path)``, ``server.hits[path]``."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hits = collections.Counter()
    srv.released = threading.Event()
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.released.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty SEGMENTATION_WEIGHTS folder; the shipped weights/ folder (project and installed
    package) and the per-user cache moved aside too."""
    env = tmp_path / "cache"
    env.mkdir()
    project = tmp_path / "project_weights"
    monkeypatch.setenv(weights.ENV_VAR, str(env))
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS", project)
    monkeypatch.setattr(weights, "INSTALLED_WEIGHTS", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user_cache"))
    return env


def fake_entry(*urls: str, sha256: str = PAYLOAD_SHA) -> ModelEntry:
    """A catalog entry (the PASCAL model's) re-pointed at the local server."""
    return replace(CATALOG["deeplabv3-pascal"], id="fake-model", name="Fake model",
                   filename=FILENAME, urls=tuple(urls), sha256=sha256)


def listing(folder: Path) -> list[str]:
    """Everything in a folder, hidden files (``.name.part``) included."""
    return sorted(os.listdir(folder)) if folder.exists() else []
