"""Security of the running app: limits, model choice, file access, code from uploads.

One ``python3 app.py`` with small limits (1 MB uploads, 2 s videos, 320x240
pixels per frame). test_app_api already covers an upload over the limit with
its Content-Length, a video whose header says it is too long, and the model ids
"/etc/passwd", "../../x.tflite" and "autoseg-edgetpu-xs-savedmodel"; this adds:

* limits that a header cannot dodge: an upload streamed without a length, a
  video whose container states no duration (raw H.264, a live-written MKV),
  frames over the pixel limit, a PNG whose header claims 20000x20000 pixels;
* models only from the catalog, on every endpoint that takes one: no TF Hub
  handle, no path to a real .tflite or SavedModel folder, nothing uploaded;
* no file outside the app's own folders read through the API: FileData paths
  (absolute, ../, beside the app's temp folder, a URL to this machine) and the
  file route (``/gradio_api/file=...`` in several spellings) are refused, while
  an upload and an example file are served (so the route itself works);
* code never loaded from uploads: a .py, a .tflite and a saved_model.pb sent as
  input or named as the model are refused, and the .py never runs.
"""

from __future__ import annotations

import http.client
import http.server
import re
import struct
import threading
import zlib
from pathlib import Path

import httpx
import pytest
from app_server import IMAGE, VIDEO, api_error, job_dirs, result_file, running_app, submit
from media import StubSegmenter, headerless_clips, make_clip, no_leftovers, picture, run_cli
from gradio_client import handle_file
from PIL import Image

from segmentation import video
from segmentation.catalog import CATALOG
from segmentation.errors import InputError
from segmentation.pipeline import segment_video
from segmentation.video_limits import VideoLimits

MAX_UPLOAD_MB, MAX_SECONDS, MAX_PIXELS = 1, 2, 320 * 240
MODEL = "deeplabv3-pascal-dm05"
TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[2]
SECRET = "TOP-SECRET-3f9a"  # the content of files the API must never hand out


@pytest.fixture(scope="module")
def app(shared_models, tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("security-app"), SEGMENTATION_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
                     SEGMENTATION_MAX_SECONDS=str(MAX_SECONDS), SEGMENTATION_MAX_PIXELS=str(MAX_PIXELS)) as app:
        yield app


def _upload(srv, name: str, data: bytes) -> str:
    """Upload like any HTTP client; the server path of the upload."""
    r = httpx.post(srv.url + "gradio_api/upload", files={"files": (name, data, "application/octet-stream")},
                   timeout=30)
    assert r.status_code == 200, r.text
    return r.json()[0]


# -- limits a header cannot dodge ------------------------------------------------------------------
def test_upload_streamed_without_a_length_is_cut_off(app):
    srv, tmp, _ = app
    boundary = "segtest-boundary"

    def body():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="endless.bin"\r\n'
               "Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(MAX_UPLOAD_MB * 16 + 8):  # 64 kB chunks: half a MB over the limit
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = httpx.post(srv.url + "gradio_api/upload", content=body(), timeout=30,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413, (r.status_code, r.text)
    assert "endless.bin" not in [p.name for p in (tmp / "gradio").rglob("*")], "the cut-off upload was kept"


@pytest.fixture(scope="module")
def headerless(tmp_path_factory) -> dict[str, Path]:
    """Videos whose container says nothing about their length: 4 s ones and a 1 s one."""
    return headerless_clips(tmp_path_factory.mktemp("headerless"), frames=100, short=25)


@pytest.mark.parametrize("name", ["raw.h264", "live.mkv"])
def test_duration_limit_holds_without_a_duration_in_the_header(name, headerless, tmp_path):
    src = headerless[name]
    assert video.probe(src).duration == 0, "the test input must not state its length"
    dst = tmp_path / "out.mp4"
    with pytest.raises(InputError, match=f"The video is longer than the limit of {MAX_SECONDS} s"):
        segment_video(StubSegmenter(), src, dst, limits=VideoLimits(max_duration=MAX_SECONDS))
    no_leftovers(tmp_path, dst)


def test_app_refuses_headerless_videos_over_the_limit(app, headerless):
    srv, tmp, client = app
    before = job_dirs(tmp)
    for name in ("raw.h264", "live.mkv"):
        msg = api_error(submit(client, VIDEO, headerless[name], MODEL))
        assert f"The video is longer than the limit of {MAX_SECONDS} s" in msg, msg
    assert job_dirs(tmp) == before, "a refused video left its job folder"
    out, _, stats = submit(client, VIDEO, headerless["short.h264"], MODEL).result(timeout=TIMEOUT)
    assert stats["frames"] == 25  # within the limit: processed whole


def test_pixel_limits(app, tmp_path, shared_models):
    srv, tmp, client = app
    big_clip = make_clip(tmp_path / "big.mp4", size=(400, 300), frames=3)
    msg = api_error(submit(client, VIDEO, big_clip, MODEL))
    assert f"The video is 400x300; the limit is {MAX_PIXELS:,} pixels per frame." in msg, msg

    photo = tmp_path / "big.png"
    Image.fromarray(picture(0, 400, 300)).save(photo)
    out, _, stats = submit(client, IMAGE, photo, MODEL).result(timeout=TIMEOUT)
    with Image.open(result_file(out)) as im:
        w, h = im.size
    assert w * h <= MAX_PIXELS and abs(w / h - 4 / 3) < 0.02 and stats["downscaled_from"] == [400, 300]

    # A PNG whose header claims 20000x20000 pixels (138 bytes): refused before anything is decoded.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))
    msg = api_error(submit(client, IMAGE, bomb, MODEL))
    assert "bomb.png is too large to decode safely" in msg, msg
    r = run_cli(str(bomb), "-o", str(tmp_path / "bomb-out.png"), "--model", MODEL, timeout=TIMEOUT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().startswith("error: bomb.png is too large to decode safely"), r.stderr
    assert not (tmp_path / "bomb-out.png").exists()


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = zlib.compress(b"\0" * (1 + 3 * w))  # one row of pixel data for all those rows
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", row) + chunk(b"IEND", b""))


# -- models only from the catalog ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def uploaded_models(app, shared_models) -> dict[str, str]:
    """Model-like files uploaded by a visitor: their paths on the server."""
    srv, _, _ = app
    tflite = _upload(srv, "my_model.tflite", (shared_models / "deeplabv3_mnv2_dm05_pascal_quant.tflite").read_bytes())
    pb = _upload(srv, "saved_model.pb", b"\x08\x01" * 64)
    return {"tflite": tflite, "savedmodel": str(Path(pb).parent)}


def _not_catalog(tmp_path_factory, shared_models, uploaded) -> list[str]:
    saved = tmp_path_factory.mktemp("savedmodel")
    (saved / "saved_model.pb").write_bytes(b"\x08\x01" * 64)
    return ["https://tfhub.dev/google/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1",
            "google/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1",
            str(shared_models / "deeplabv3_mnv2_pascal_quant.tflite"), "deeplabv3_mnv2_pascal_quant.tflite",
            str(saved), uploaded["tflite"], uploaded["savedmodel"], "AUTOSEG-EDGETPU-XS", " autoseg-edgetpu-xs"]


def test_only_catalog_models_on_every_endpoint(app, uploaded_models, tmp_path_factory, shared_models,
                                               shared_images):
    srv, tmp, client = app
    bird = shared_images / "bird.bmp"
    clip = make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=3)
    for model in _not_catalog(tmp_path_factory, shared_models, uploaded_models):
        for job in (submit(client, IMAGE, bird, model), submit(client, VIDEO, clip, model)):
            msg = api_error(job)
            assert "Unknown model" in msg and "choose one of autoseg-edgetpu-xs" in msg, (model, msg)
        # The page's Run button (its API name is undocumented, but callable): the model dropdown
        # itself refuses anything but its choices, before the job runs.
        msg = api_error(client.submit(handle_file(str(bird)), None, model, "overlay", 0.5, "accurate", [], True,
                                     api_name="/run"))
        assert "is not in the list of choices: ['autoseg-edgetpu-xs'" in msg, (model, msg)
    loaded = set(re.findall(r"Loaded model (\S+) in", srv.log()))
    assert loaded and loaded <= set(CATALOG), f"loaded: {loaded}"
    maps = Path(f"/proc/{srv.process.pid}/maps")
    if maps.exists():
        assert "site-packages/tensorflow/" not in maps.read_text(), "TensorFlow was imported"


# -- no file outside the app's folders -----------------------------------------------------------------
@pytest.fixture(scope="module")
def secrets(app) -> dict[str, Path]:
    """Files a visitor must never get: beside the app's temp folders, with known content."""
    _, tmp, _ = app
    png = tmp / "secret.png"
    Image.new("RGB", (37, 23), (1, 2, 3)).save(png)  # a real image: accepted, it would come back segmented
    txt = tmp / "secret.txt"
    txt.write_text(SECRET)
    return {"png": png, "txt": txt}


class _Listener(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"x")

    def log_message(self, *args):
        pass


def _call_raw(srv, endpoint: str, file_data: dict) -> str:
    """The /gradio_api/call protocol by hand (what any HTTP client can send); the whole answer."""
    data = [file_data, MODEL, "overlay", 0.5] + (["accurate", [], True] if endpoint == "segment_video" else [[]])
    r = httpx.post(srv.url + f"gradio_api/call/{endpoint}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {r.text}"
    event = r.json()["event_id"]
    return httpx.get(srv.url + f"gradio_api/call/{endpoint}/{event}", timeout=TIMEOUT).text


def test_file_inputs_cannot_point_outside_the_uploads(app, secrets):
    srv, tmp, _ = app
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    local_url = f"http://127.0.0.1:{listener.server_address[1]}/secret.png"
    before = job_dirs(tmp)
    try:
        paths = ["/etc/passwd", "../../../../etc/passwd", str(secrets["png"]), str(secrets["txt"]),
                 str(tmp / "gradio" / ".." / "secret.png"), "app.py", "/proc/self/environ"]
        attempts = [{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths]
        attempts.append({"path": local_url, "url": local_url, "meta": {"_type": "gradio.FileData"}})
        for fd in attempts:
            for endpoint in ("segment_image", "segment_video"):
                answer = _call_raw(srv, endpoint, fd)
                assert "event: error" in answer and "event: complete" not in answer, (fd, answer)
                assert "root:x:0:0" not in answer and SECRET not in answer, (fd, answer)
    finally:
        listener.shutdown()
        listener.server_close()
    assert _Listener.hits == 0, "the server fetched a URL on this machine"
    assert job_dirs(tmp) == before, "a job ran on a file that was not uploaded"
    assert srv.log().count("it was not uploaded by a user") >= 2 * len(paths), "refused by Gradio's own check"


def _get(srv, path: str) -> tuple[int, bytes]:
    """GET ``path`` sent exactly as written (no client-side normalising of "..")."""
    host, port = srv.url.split("//")[1].strip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_file_route_serves_only_the_apps_files(app, secrets):
    srv, tmp, _ = app
    gradio_tmp = tmp / "gradio"
    refused = ["/etc/passwd", "..%2f..%2f..%2f..%2fetc%2fpasswd", "%2Fetc%2Fpasswd", "..%252f..%252fetc%252fpasswd",
               "../../../../etc/passwd", str(secrets["txt"]), f"{gradio_tmp}/../secret.txt",
               f"{gradio_tmp}/..%2fsecret.txt", "app.py", str(ROOT / "app.py"), "examples/cache/../../app.py",
               "examples/../app.py", "/proc/self/environ"]
    for spelling in refused:
        for route in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/static/", "/assets/"):
            status, body = _get(srv, route + spelling)
            assert status in (400, 403, 404), (route + spelling, status, body[:200])
            assert b"root:x:0:0" not in body and SECRET.encode() not in body, route + spelling
            assert b"import gradio" not in body, f"the app's source was served for {route + spelling}"
    # The route itself works for what the app may serve: an upload, and an example file.
    uploaded = _upload(srv, "mine.txt", b"my own upload")
    assert _get(srv, "/gradio_api/file=" + uploaded) == (200, b"my own upload")
    status, body = _get(srv, f"/gradio_api/file={ROOT / 'examples' / 'bird.bmp'}")  # shipped
    assert status == 200 and body[:2] == b"BM"


# -- code never loaded from uploads --------------------------------------------------------------------
def test_uploaded_code_never_runs(app, tmp_path):
    srv, tmp, client = app
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    evil = tmp_path / "evil.py"
    evil.write_bytes(code)
    server_copy = _upload(srv, "evil.py", code)
    for job in (submit(client, IMAGE, evil, MODEL), submit(client, VIDEO, evil, MODEL)):
        msg = api_error(job)
        assert "evil.py is neither a photo nor a video" in msg or "evil.py is not a video file" in msg, msg
    for model in ("evil", "evil.py", server_copy, str(Path(server_copy).parent)):
        assert "Unknown model" in api_error(submit(client, IMAGE, evil, model))
    assert not marker.exists(), "an uploaded .py was run"


def test_wrongly_typed_parameters_get_a_sentence(app, shared_images, tmp_path):
    srv, _, client = app
    bird = shared_images / "bird.bmp"
    msg = api_error(submit(client, IMAGE, bird, MODEL, classes=5))  # JSON allows any value
    assert "Classes must be a list of class names, got int." in msg, msg
    msg = api_error(submit(client, VIDEO, make_clip(tmp_path / "c.mp4", frames=2), MODEL, speed="warp-speed"))
    assert "Unknown speed 'warp-speed'" in msg, msg


def test_server_unharmed(app, shared_images):
    srv, tmp, client = app
    out, _, stats = submit(client, IMAGE, shared_images / "bird.bmp", MODEL).result(timeout=TIMEOUT)
    assert stats["downscaled_from"] == [512, 343] and stats["width"] * stats["height"] <= MAX_PIXELS
    assert "Unexpected error" not in srv.log(), srv.log()[-3000:]
