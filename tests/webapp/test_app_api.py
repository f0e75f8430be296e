"""The app's HTTP API (gradio_client) against a real ``python3 app.py`` process.

The server runs with a 35 s duration limit and a 3 MB upload limit, so real
shared files land on both sides of each: car-detection.mp4 (30.2 s, 2.8 MB)
is processed, bottle-detection.mp4 (39.9 s) is refused for its duration and
one-by-one-person-detection.mp4 (3.3 MB) for its size.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from app_server import start_app, stop_app
from gradio_client import Client, handle_file
from media import make_clip
from PIL import Image

from segmentation import labels

MAX_SECONDS = 35
MAX_UPLOAD_MB = 3


@pytest.fixture(scope="module")
def server(shared_models, shared_videos, shared_images, tmp_path_factory):
    srv = start_app(tmp_path_factory.mktemp("app-api") / "app.log",
                    SEGMENTATION_MAX_SECONDS=str(MAX_SECONDS), SEGMENTATION_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB))
    print(f"\napp.py served its page {srv.startup_s:.1f} s after the process started")
    yield srv
    stop_app(srv.process)


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def _error_text(excinfo) -> str:
    return str(excinfo.value)


def test_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/segment_image", "/segment_video"} <= set(api["named_endpoints"])


def test_segment_image(client, shared_images):
    out, legend, stats = client.predict(handle_file(str(shared_images / "bird.bmp")), "deeplabv3-pascal",
                                        "overlay", 0.5, [], api_name="/segment_image")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (512, 343)
    shares = {it["name"]: it["share"] for it in legend}
    assert set(shares) <= set(labels.PASCAL_VOC)
    assert shares.get("bird", 0) > 0.10  # the bird fills a good part of the photo
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(it["color"].startswith("#") and len(it["color"]) == 7 for it in legend)
    assert [it["share"] for it in legend] == sorted((it["share"] for it in legend), reverse=True)
    assert stats["width"] == 512 and stats["height"] == 343 and stats["model"] == "deeplabv3-pascal"


def test_labels_endpoint_returns_the_label_files_like_the_page(client, shared_images, tmp_path):
    """/segment_labels: a photo or a video (told apart by content) with its class maps as the page
    offers them: a .zip (an 8-bit PNG of class ids per frame + labels.json) and a COCO .json."""
    import json
    import zipfile

    api = client.view_api(print_info=False, return_format="dict")
    assert "/segment_labels" in api["named_endpoints"]
    clip = make_clip(tmp_path / "clip.mp4", size=(64, 48), frames=6)
    for source, frames in ((shared_images / "bird.bmp", 1), (clip, 6)):
        out, files, legend, stats = client.predict(handle_file(str(source)), "deeplabv3-pascal", "overlay", 0.5,
                                                   "realtime", [], api_name="/segment_labels")
        assert Path(out).is_file() and legend and stats["model"] == "deeplabv3-pascal"
        paths = [Path(f["path"] if isinstance(f, dict) else f) for f in files]
        assert sorted(p.suffix for p in paths) == [".json", ".zip"], paths
        with zipfile.ZipFile(next(p for p in paths if p.suffix == ".zip")) as z:
            pngs = [n for n in z.namelist() if n.endswith(".png")]
            assert len(pngs) == frames and "labels.json" in z.namelist()
        coco = json.loads(next(p for p in paths if p.suffix == ".json").read_text())
        assert len(coco["images"]) == frames and coco["categories"]


def test_segment_image_side_by_side_with_class_filter(client, shared_images):
    out, legend, stats = client.predict(handle_file(str(shared_images / "bird.bmp")), "deeplabv3-pascal",
                                        "side-by-side", 0.7, ["bird"], api_name="/segment_image")
    with Image.open(out) as im:
        assert im.size == (1024, 343)
    assert [it["name"] for it in legend] == ["bird"]
    assert stats["output_width"] == 1024


def test_segment_video(client, shared_videos):
    src = shared_videos / "car-detection.mp4"
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        src_rate, src_frames = s.average_rate, s.frames
        src_duration = float(s.duration * s.time_base)
    out, legend, stats = client.predict(handle_file(str(src)), "autoseg-edgetpu-xs", "side-by-side", 0.5,
                                        "realtime", [], api_name="/segment_video")
    path = out["video"] if isinstance(out, dict) else out
    with av.open(path) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.codec_context.width, v.codec_context.height) == ("h264", 1536, 432)
        assert v.average_rate == src_rate == Fraction(25, 2)
        assert c.streams.audio, "the source's audio track is kept"
        frames = sum(1 for _ in c.decode(v))
    assert frames == src_frames == 377
    assert stats["frames"] == 377
    assert stats["source_fps"] == stats["output_fps"] == 12.5
    assert stats["processing_fps"] > 0 and stats["speed"] == "realtime" and stats["model"] == "autoseg-edgetpu-xs"
    assert stats["duration"] == pytest.approx(src_duration, abs=0.01)
    assert 0 < stats["model_runs"] < 377  # realtime: keyframes + optical flow
    assert stats["temporal"] is True  # the default when a client leaves the argument out
    shares = {it["name"]: it["share"] for it in legend}
    assert shares and set(shares) <= set(labels.ADE20K_32)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)


def test_segment_video_temporal_switch(client, tmp_path):
    """temporal=False: every frame on its own; True (default): fused along the motion. Both full length."""
    src = make_clip(tmp_path / "moving.mp4", size=(96, 64), frames=6)
    for temporal in (False, True):
        _, _, stats = client.predict(handle_file(str(src)), "autoseg-edgetpu-xs", "overlay", 0.5, "accurate", [],
                                     temporal, api_name="/segment_video")
        assert stats["temporal"] is temporal and stats["frames"] == 6 and stats["model_runs"] == 6


def test_segment_image_background_effects(client, shared_images, tmp_path):
    """The effect settings are trailing inputs: (blur, background colour, background image, feather)."""
    bird = shared_images / "bird.bmp"
    out, legend, stats = client.predict(handle_file(str(bird)), "deeplabv3-pascal", "remove-background", 0.5,
                                        ["bird"], api_name="/segment_image")
    with Image.open(out) as im:
        assert im.mode == "RGBA" and im.size == (512, 343)
        alpha = np.asarray(im)[..., 3]
    share = legend[0]["share"]
    assert [it["name"] for it in legend] == ["bird"] and stats["mode"] == "remove-background"
    # opaque: the bird less its feathered edge; transparent: all the rest less that edge
    assert (alpha == 255).mean() < share < (alpha > 0).mean() < share + 0.1
    # a colour, positionally, with a hard edge: everything but the bird is that colour exactly
    out, _, _ = client.predict(handle_file(str(bird)), "deeplabv3-pascal", "replace-background", 0.5, ["bird"], 15,
                               "#ff0000", None, 0, api_name="/segment_image")
    with Image.open(out) as im:
        red = (np.asarray(im) == (255, 0, 0)).all(axis=2).mean()
    assert red == pytest.approx(1 - share, abs=0.01), red
    # an uploaded image, by name
    blue = tmp_path / "blue.png"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(blue)
    out, _, _ = client.predict(handle_file(str(bird)), "deeplabv3-pascal", "replace-background", 0.5, ["bird"],
                               background_image=handle_file(str(blue)), feather=0, api_name="/segment_image")
    with Image.open(out) as im:
        assert (np.asarray(im) == (0, 0, 255)).all(axis=2).mean() == pytest.approx(1 - share, abs=0.01)


@pytest.mark.parametrize("kwargs,expected", [
    ({"background": "/etc/passwd"}, "Unknown background colour '/etc/passwd'"),  # never read as a file
    ({"background": "../examples/bird.bmp"}, "Unknown background colour"),
    ({"blur": 500}, "The blur must be between 0 and 200 pixels"),
    ({"feather": -1}, "The feather must be between 0 and 50 pixels"),
])
def test_bad_effect_settings_are_refused(client, shared_images, kwargs, expected):
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(shared_images / "bird.bmp")), "deeplabv3-pascal", "replace-background", 0.5,
                       [], **kwargs, api_name="/segment_image")
    assert expected in _error_text(e), _error_text(e)


def test_segment_video_remove_background_is_a_webm_with_alpha(client, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", size=(96, 64), frames=5)
    out, _, stats = client.predict(handle_file(str(src)), "autoseg-edgetpu-xs", "remove-background", 0.5,
                                   "accurate", [], True, 20, "#000000", None, 2, api_name="/segment_video")
    path = Path(out["video"] if isinstance(out, dict) else out)
    assert path.suffix == ".webm" and stats["frames"] == 5 and stats["mode"] == "remove-background"
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "vp9" and (v.width, v.height) == (96, 64)


def test_server_never_imported_tensorflow(server):
    maps = Path(f"/proc/{server.process.pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc on this system")
    assert "site-packages/tensorflow/" not in maps.read_text(), "the TFLite path must not load TensorFlow"


@pytest.mark.parametrize("model", ["/etc/passwd", "../../x.tflite", "autoseg-edgetpu-xs-savedmodel"])
def test_model_outside_the_app_catalog_is_refused(client, shared_images, model):
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(shared_images / "bird.bmp")), model, "overlay", 0.5, [],
                       api_name="/segment_image")
    msg = _error_text(e)
    assert "Unknown model" in msg and "autoseg-edgetpu-xs" in msg, msg
    assert "Traceback" not in msg


def test_video_over_duration_limit_is_refused(client, shared_videos):
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(shared_videos / "bottle-detection.mp4")), "autoseg-edgetpu-xs", "overlay",
                       0.5, "realtime", [], api_name="/segment_video")
    msg = _error_text(e)
    assert "39.9 s long" in msg and f"limit is {MAX_SECONDS} s" in msg, msg


def test_upload_over_size_limit_is_refused(server, client, shared_videos):
    big = shared_videos / "one-by-one-person-detection.mp4"  # 3.3 MB
    limit = MAX_UPLOAD_MB * 2**20
    # gradio_client reads the limit from the server's config and refuses before uploading ...
    with pytest.raises(ValueError, match=f"maximum file size of {limit} bytes"):
        client.predict(handle_file(str(big)), "autoseg-edgetpu-xs", "overlay", 0.5, "realtime", [],
                       api_name="/segment_video")
    # ... and the server refuses the upload itself (HTTP 413) for any other client.
    with open(big, "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": (big.name, f, "video/mp4")}, timeout=60)
    assert r.status_code == 413 and f"maximum allowed size of {limit} bytes" in r.text, (r.status_code, r.text)


@pytest.mark.parametrize("mode,classes,expected", [
    ("sparkle", [], "Unknown output mode"),
    ("overlay", ["unicorn"], "Unknown class"),
])
def test_bad_options_are_refused(client, shared_images, mode, classes, expected):
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(shared_images / "bird.bmp")), "deeplabv3-pascal", mode, 0.5, classes,
                       api_name="/segment_image")
    assert expected in _error_text(e), _error_text(e)


def test_photo_sent_to_the_video_endpoint(client, shared_images):
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(shared_images / "bird.bmp")), "autoseg-edgetpu-xs", "overlay", 0.5,
                       "accurate", [], api_name="/segment_video")
    assert "is a photo, not a video" in _error_text(e), _error_text(e)


def test_user_errors_leave_no_traceback_in_the_server_log(server, client):
    # runs after the refusals above: each was one log-free gr.Error sentence
    assert "Traceback" not in server.log(), server.log()[-3000:]
