"""The app's ``webapp`` package (limits, checks, jobs, views, live session, example files) without a server (fast)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segmentation import DEFAULT_MODEL_ID, catalog, weights
from segmentation.draw import MODES, LegendItem
from segmentation.exports import Timeline
from segmentation.errors import InputError, ModelError
from segmentation.pipeline import Cancelled
from webapp import admission, checks, jobs, views
from webapp import examples as ex
from webapp.handlers import Handlers
from segmentation import config
from webapp.limits import Limits
from webapp.live import LiveSession

from media import StubSegmenter, make_clip

ROOT = Path(__file__).resolve().parents[2]


# -- limits ---------------------------------------------------------------------------------
def test_limits_defaults_and_env():
    d = Limits.from_env({})
    assert (d.max_upload_mb, d.max_seconds, d.max_pixels, d.concurrency, d.queue_size) == (200, 120, 3840 * 2160, 1, 16)
    assert (d.max_frames, d.max_fps, d.max_job_seconds, d.visitor_jobs, d.tmp_max_mb) == (3600, 60, 600, 2, 2048)
    assert d.trusted_proxies == () and Limits.from_env({"SPACE_ID": "me/app"}).trusted_proxies == ("*",)
    lim = Limits.from_env({"SEGMENTATION_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8", "SEGMENTATION_MAX_FPS": "120",
                           "SEGMENTATION_TMP_MAX_MB": "0.5"})
    assert lim.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8") and lim.max_fps == 120
    assert lim.tmp_max_bytes == 2**19
    lim = Limits.from_env({"SEGMENTATION_MAX_UPLOAD_MB": "3", "SEGMENTATION_MAX_SECONDS": "2.5",
                           "SEGMENTATION_MAX_PIXELS": "1_000_000", "SEGMENTATION_CONCURRENCY": "2"})
    assert (lim.max_upload_bytes, lim.max_seconds, lim.max_pixels, lim.concurrency) == (3 * 2**20, 2.5, 10**6, 2)


@pytest.mark.parametrize("name,value", [("SEGMENTATION_MAX_SECONDS", "abc"), ("SEGMENTATION_MAX_SECONDS", "-1"),
                                        ("SEGMENTATION_CONCURRENCY", "1.5"), ("SEGMENTATION_QUEUE_SIZE", "0"),
                                        ("SEGMENTATION_MAX_FRAMES", "10.5"), ("SEGMENTATION_TMP_MAX_MB", "0"),
                                        ("SEGMENTATION_TRUSTED_PROXIES", "proxy.example")])
def test_limits_bad_values_are_named(name, value):
    with pytest.raises(ValueError, match=name):
        Limits.from_env({name: value})


def test_flag_settings():
    name = "SEGMENTATION_WARM_EXAMPLES"
    assert config.read(name, {}) is True and config.read(name, {name: " "}) is True
    for off in ("0", "false", "No", " FALSE "):
        assert config.read(name, {name: off}) is False
    for on in ("1", "yes", "true", "on"):
        assert config.read(name, {name: on}) is True


def test_app_exits_with_one_sentence_on_a_bad_setting(tmp_path):
    """``python app.py`` with a bad SEGMENTATION_* value: one ``error:`` line naming it, exit 1, no temp folder."""
    env = {**os.environ, "SEGMENTATION_MAX_UPLOAD_MB": "abc", "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == "error: SEGMENTATION_MAX_UPLOAD_MB must be a number, got 'abc'."
    assert list(tmp_path.iterdir()) == []  # no job store was made


# -- validation -----------------------------------------------------------------------------
def test_model_choices_exclude_tensorflow_formats_and_start_with_default():
    ids = [mid for _, mid in checks.model_choices()]
    assert ids[0] == DEFAULT_MODEL_ID
    assert "autoseg-edgetpu-xs-savedmodel" not in ids
    assert all(catalog.CATALOG[i].format == catalog.TFLITE for i in ids)
    assert {"deeplabv3-pascal", "deeplab-cityscapes"} <= set(ids)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../../x.tflite", "autoseg-edgetpu-xs-savedmodel", "", None, 3,
                                 "https://tfhub.dev/google/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1"])
def test_check_model_id_refuses_anything_but_offered_ids(bad):
    with pytest.raises(ModelError, match="Unknown model .*choose one of autoseg-edgetpu-xs"):
        checks.check_model_id(bad)


def test_check_model_id_refuses_existing_tflite_paths(shared_models):
    path = next(shared_models.glob("*.tflite"))
    with pytest.raises(ModelError):
        checks.check_model_id(str(path))


def test_options_validation():
    assert checks.check_mode("side-by-side") == "side-by-side"
    assert checks.check_alpha("0.25") == 0.25
    for fn, bad in [(checks.check_mode, "sparkle"), (checks.check_speed, "ludicrous"),
                    (checks.check_alpha, 1.5), (checks.check_alpha, "x")]:
        with pytest.raises(InputError):
            fn(bad)


def test_class_filter():
    labels = catalog.CATALOG["deeplabv3-pascal"].labels
    assert checks.class_filter([], labels) is None
    assert checks.class_filter(None, labels) is None
    assert checks.class_filter(["Person", "bird"], labels) == (15, 3)
    assert checks.class_filter("person, car", labels) == (15, 7)
    with pytest.raises(InputError, match="Unknown class 'unicorn'"):
        checks.class_filter(["unicorn"], labels)
    assert checks.class_names("deeplabv3-pascal")[3] == "bird"


def test_check_upload(tmp_path):
    limits = Limits(max_upload_mb=0.001)  # ~1 KB
    small, big, empty = tmp_path / "a.png", tmp_path / "b.mp4", tmp_path / "c.mp4"
    small.write_bytes(b"x" * 100)
    big.write_bytes(b"x" * 2000)
    empty.write_bytes(b"")
    assert checks.check_upload(small, limits) == small
    with pytest.raises(InputError, match="upload limit is 0.001 MB"):
        checks.check_upload(big, limits)
    with pytest.raises(InputError, match="empty"):
        checks.check_upload(empty, limits)
    with pytest.raises(InputError, match="No file"):
        checks.check_upload(None, limits)


def test_safe_stem():
    assert checks.safe_stem("/tmp/x/My clip (1).mp4") == "My_clip_1"
    assert checks.safe_stem("...") == "result"


# -- segmenter cache --------------------------------------------------------------------------
def test_segmenter_cache_loads_each_model_once_across_threads():
    calls = []

    def factory(mid):
        calls.append(mid)
        time.sleep(0.05)
        return object()

    cache = jobs.SegmenterCache(factory=factory)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("deeplabv3-pascal"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["deeplabv3-pascal"] and len({id(g) for g in got}) == 1
    with pytest.raises(ModelError):
        cache.get("../../x.tflite")
    assert cache.loaded() == ["deeplabv3-pascal"]


# -- page pieces --------------------------------------------------------------------------
def test_legend_html_escapes_and_orders():
    items = [LegendItem(1, "road", (140, 140, 140), 0.7), LegendItem(2, "<b>car</b>", (0, 102, 200), 0.2996),
             LegendItem(3, "sky", (6, 230, 230), 0.0004)]
    page = views.legend_html(items)
    assert "<b>car</b>" not in page and "&lt;b&gt;car&lt;/b&gt;" in page
    assert page.index("road") < page.index("car")
    assert "70.0%" in page and "30.0%" in page and "#0066c8" in page
    assert "others" in page and "<0.1%" not in page.replace("&lt;0.1%", "")  # escaped
    assert views.format_share(0.0004) == "<0.1%" and views.format_share(0.5) == "50.0%"
    assert "No pixels" in views.legend_html([])


VIDEO_STATS = jobs.VideoStats(frames=377, width=768, height=432, output_width=1536, output_height=432,
                              source_fps=12.5, output_fps=12.5, processing_fps=14.2, realtime_factor=1.14,
                              seconds=26.5, model_runs=60, model="autoseg-edgetpu-xs", speed="realtime",
                              temporal=True, mode="side-by-side", duration=30.16, trimmed_to_seconds=None)
PHOTO_STATS = jobs.PhotoStats(width=512, height=343, output_width=512, output_height=343, seconds=0.05, model="m",
                              mode="overlay", downscaled_from=(9000, 6000))


def test_stats_markdown():
    text = views.stats_markdown(VIDEO_STATS)
    for part in ("377 frames", "12.5 fps → 12.5 fps", "14.2 frames/s", "autoseg-edgetpu-xs", "realtime"):
        assert part in text
    assert "first 120 s only" in views.stats_markdown(replace(VIDEO_STATS, trimmed_to_seconds=120.0))
    assert "Decoded 9 of 35 frames; the file is truncated." in views.stats_markdown(
        replace(VIDEO_STATS, warning="decoded 9 of 35 frames; the file is truncated."))
    assert "Decoded" not in text
    text = views.stats_markdown(PHOTO_STATS)
    assert "512×343" in text and "50 ms" in text and "downscaled from 9000×6000" in text
    assert "downscaled" not in views.stats_markdown(replace(PHOTO_STATS, downscaled_from=None))


def test_stats_json_is_the_api_output():
    """The API's stats: these keys, JSON types only (a client reads them by name)."""
    video = VIDEO_STATS.to_json()
    assert list(video) == ["kind", "frames", "width", "height", "output_width", "output_height", "source_fps",
                           "output_fps", "processing_fps", "realtime_factor", "seconds", "model_runs", "model",
                           "speed", "temporal", "mode", "duration", "trimmed_to_seconds", "warning"]
    assert video["kind"] == "video" and video["frames"] == 377 and video["trimmed_to_seconds"] is None
    assert video["warning"] == ""
    photo = PHOTO_STATS.to_json()
    assert photo == {"kind": "image", "width": 512, "height": 343, "output_width": 512, "output_height": 343,
                     "seconds": 0.05, "model": "m", "mode": "overlay", "downscaled_from": [9000, 6000]}
    assert replace(PHOTO_STATS, downscaled_from=None).to_json()["downscaled_from"] is None
    assert json.loads(json.dumps(video)) == video and json.loads(json.dumps(photo)) == photo


def test_timeline_plot_top_classes_downsampled():
    tl = Timeline()
    for i in range(1200):  # 2 minutes at 10 fps, 10 classes; class 0 grows
        hist = np.zeros(256, np.int64)
        hist[:10] = np.arange(10, 0, -1) * 1000
        hist[0] += 10 * i
        hist[9] = 1 if i == 0 else 0  # almost nothing: left out
        tl.add(i, i / 10, hist)
    legend = [LegendItem(c, f"c{c}", (c, 0, 0), s) for c, s in
              enumerate([0.5, 0.1, 0.09, 0.08, 0.07, 0.05, 0.04, 0.03, 0.02, 1e-6])]
    plot = views.timeline_plot(tl, legend)
    frame = plot["value"]
    assert list(frame.columns) == ["time", "share", "class"] and plot["visible"] is True
    assert list(frame["class"].unique()) == [f"c{c}" for c in range(8)]  # the 8 largest, largest first
    assert len(frame) == 8 * 500 and frame["time"].is_monotonic_increasing is False  # one run per class
    times = frame[frame["class"] == "c0"]["time"].to_numpy()
    assert np.all(np.diff(times) > 0) and times[0] == pytest.approx(0.05) and times[-1] < 120  # bin means
    share = frame[frame["class"] == "c0"]["share"].to_numpy()
    assert share[0] < share[-1]  # growing, averaged over runs of 2-3 frames
    assert plot["color_map"]["c1"] == "#010000" and plot["y_lim"][0] == 0 and plot["y_lim"][1] % 5 == 0
    assert frame["share"].max() <= plot["y_lim"][1] <= 100
    short = Timeline()
    for i in range(3):
        short.add(i, i * 0.04, np.bincount([1, 1, 2], minlength=256))
    plot = views.timeline_plot(short, [LegendItem(1, "a", (1, 2, 3), 0.67), LegendItem(2, "b", (4, 5, 6), 0.33)])
    assert plot["value"]["time"].tolist() == [0.0, 0.04, 0.08] * 2 and plot["y_lim"] == [0, 75]
    assert views.timeline_plot(Timeline(), [])["visible"] is False


def test_transparent_result_is_shown_on_a_checkerboard():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:8] = (10, 20, 30, 255)
    shown = views.on_checkerboard(rgba)
    assert shown.shape == (16, 16, 3) and (shown[:8] == (10, 20, 30)).all()
    assert set(np.unique(shown[8:])) == {204, 255}
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert views.on_checkerboard(rgb) is rgb


def test_settings_follow_the_output_mode():
    shown = {m: [u.get("visible") for u in Handlers.mode_changed(m)[:5]] for m in MODES}
    # opacity, blur, colour, background image, feather
    assert shown == {"overlay": [True, False, False, False, False], "mask": [False] * 5,
                     "side-by-side": [True, False, False, False, False],
                     "blur-background": [False, True, False, False, True],
                     "replace-background": [False, False, True, True, True],
                     "remove-background": [False, False, False, False, True]}
    assert "empty = person" in Handlers.mode_changed("blur-background")[5]["info"]
    assert Handlers.mode_changed("overlay")[5]["info"] == "empty = all classes"


def test_background_is_a_colour_or_an_uploaded_photo(tmp_path):
    from PIL import Image

    assert checks.check_colour("#0f0") == (0, 255, 0) and checks.check_colour("rgb(1, 2, 3)") == (1, 2, 3)
    assert checks.check_colour("green") == (0, 128, 0) and checks.check_colour("#123456") == (18, 52, 86)
    photo = tmp_path / "secret.png"
    Image.new("RGB", (8, 6), (1, 2, 3)).save(photo)
    for bad in (str(photo), "/etc/passwd", "", None, 3, "#" + "f" * 80):  # a file name is never read
        with pytest.raises(InputError, match="Unknown background colour"):
            checks.check_colour(bad)
    o = checks.effect_options()
    assert (o.blur, o.color, o.image, o.feather) == (15.0, (0, 255, 0), None, 3.0)
    o = checks.effect_options(20, "#ff0000", None, 0)
    assert (o.blur, o.color, o.feather) == (20.0, (255, 0, 0), 0.0)
    o = checks.effect_options(None, "#ff0000", str(photo), None)  # an uploaded photo wins over the colour
    assert o.color is None and o.image.shape == (6, 8, 3)
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    with pytest.raises(InputError, match="The background image c.mp4 is not a photo"):
        checks.effect_options(image=str(clip))
    with pytest.raises(InputError, match="upload limit"):
        checks.effect_options(image=str(photo), limits=Limits(max_upload_mb=1e-5))
    with pytest.raises(InputError, match="blur must be between 0 and 200"):
        checks.effect_options(blur=201)


def test_frame_rate_reports_rate():
    seen = []
    fr = jobs.FrameRate(lambda d, t, r: seen.append((d, t, r)))
    for i in range(1, 4):
        fr(i, 3)
        time.sleep(0.01)
    assert [s[0] for s in seen] == [1, 2, 3] and seen[0][2] == 0.0 and seen[-1][2] > 0


def test_temp_store_sweeps_old_jobs(tmp_path):
    store = jobs.TempStore(tmp_path / "store", max_age=60)
    old, new, running = store.new_job(), store.new_job(), store.new_job()
    store.finish(old), store.finish(new)
    past = time.time() - 120
    for d in (old, running):
        os.utime(d, (past, past))
    assert store.sweep() == 1
    assert not old.exists() and new.exists() and running.exists()  # a job still writing is never swept
    store.close()
    assert not store.root.exists()


def _finished_job(store: jobs.TempStore, nbytes: int, reserve: int | None = None, age: float = 0.0):
    job = store.new_job(nbytes if reserve is None else reserve)
    (job / "x_segmented.png").write_bytes(b"\0" * nbytes)
    store.finish(job)
    t = time.time() - age
    os.utime(job, (t, t))
    return job


def test_temp_store_keeps_results_within_its_budget_oldest_out_first(tmp_path):
    kb = 1024
    store = jobs.TempStore(tmp_path / "store", max_bytes=100 * kb)
    a, b, c = (_finished_job(store, 40 * kb, age=30 - i) for i in range(3))  # c evicts a
    assert not a.exists() and b.exists() and c.exists() and store.used_bytes() == 80 * kb
    running = store.new_job(30 * kb)  # b goes: 40 (c) + 30 reserved
    assert not b.exists() and c.exists() and store.used_bytes() == 70 * kb
    with pytest.raises(InputError, match=r"would take up to about 0\.10 MB; the server keeps at most 0\.10 MB"):
        store.new_job(101 * kb)
    with pytest.raises(InputError, match="jobs running now hold 0.03 of the 0.10 MB"):
        store.new_job(80 * kb)  # c could go, the running job's reservation cannot
    assert c.exists(), "a refused job removed a result for nothing"
    # A running job past its reservation grows it (a quarter more), evicting results, or hears no.
    assert store.grow(running, 50 * kb) and not c.exists()
    assert not store.grow(running, 90 * kb)
    store.discard(running)
    assert not running.exists() and store.used_bytes() == 0


def test_label_estimates_cover_what_was_measured():
    # bytes per frame of .zip + .json measured on the shared clips (80 frames, default model)
    for (w, h), measured in {(480, 270): 4799 + 10473, (768, 432): 4307 + 6332}.items():
        assert jobs.estimate_labels_bytes(w, h, 100) > 2 * 100 * measured
    assert jobs.estimate_labels_bytes(1280, 720, 3600) < 400 * 2**20  # 2 min of 720p: well inside the budget
    assert jobs.estimate_labels_bytes(100, 50) > 3 * 100 * 50  # a photo: every pixel its own run


def test_disk_estimates_cover_what_was_measured():
    # 720p, 3,600 frames: the shared clips' worst 0.19 bits per pixel is well inside the estimate
    est = jobs.estimate_video_bytes(1280 * 720, 3600, 120, audio=True)
    assert 1280 * 720 * 3600 * 0.19 / 8 < est < 300 * 2**20
    assert jobs.estimate_video_bytes(64 * 48, 100, 4, audio=False) == 100 * (64 * 48 * 0.5 / 8 + 400)
    assert jobs.estimate_photo_bytes(100, 50) > 100 * 50 * 3


# -- admission: visitors and turns ------------------------------------------------------------
@pytest.mark.parametrize("peer,header,proxies,expected", [
    ("198.51.100.7", "203.0.113.5", (), "198.51.100.7"),  # nobody trusted: a header is anyone's claim
    ("127.0.0.1", "203.0.113.5, 10.1.2.3", ("127.0.0.1/32",), "203.0.113.5"),  # the first address
    ("10.16.3.80", "203.0.113.5", ("*",), "203.0.113.5"),  # a Space: every peer is its proxy
    ("198.51.100.7", "203.0.113.5", ("10.0.0.0/8",), "198.51.100.7"),  # not from the proxy
    ("10.1.1.1", "not-an-address", ("10.0.0.0/8",), "10.1.1.1"),
    ("10.1.1.1", "", ("10.0.0.0/8",), "10.1.1.1"),
])
def test_client_address_trusts_the_forwarded_header_only_from_a_proxy(peer, header, proxies, expected):
    headers = {"x-forwarded-for": header} if header else {}
    assert admission.client_address(peer, headers, proxies) == expected


def test_admission_one_running_one_waiting_per_visitor_in_arrival_order():
    import asyncio

    gate = admission.Admission(slots=1, visitor_jobs=2)
    alice, bob = admission.Visitor("s-alice", "203.0.113.1"), admission.Visitor("s-bob", "203.0.113.2")
    order, seen = [], []

    async def job(ticket, name, hold):
        await gate.wait_turn(ticket, report=lambda ahead: seen.append((name, ahead)))
        order.append(name)
        await asyncio.sleep(hold)
        ticket.release()

    async def main():
        a1, a2, b1 = gate.admit(alice), gate.admit(alice), gate.admit(bob)
        with pytest.raises(admission.Refused, match=r"^You already have 2 jobs waiting \(the limit per visitor is 2\)"):
            gate.admit(alice)
        with pytest.raises(admission.Refused, match="^Your network address already has"):
            gate.admit(admission.Visitor("s-alice-new-tab", "203.0.113.1"))
        runs = [asyncio.ensure_future(job(t, n, 0.3)) for t, n in ((a1, "a1"), (a2, "a2"), (b1, "b1"))]
        await asyncio.sleep(0.15)
        assert gate.snapshot()["running"] == 1 and gate.snapshot()["waiting"] == 2
        with pytest.raises(admission.Refused, match="^You already have a job running and one waiting"):
            gate.admit(alice)
        await asyncio.gather(*runs)
        gate.admit(None).release()  # the server's own jobs (examples) are not counted per visitor

    asyncio.run(main())
    assert order == ["a1", "a2", "b1"] and ("b1", 2) in seen
    assert gate.snapshot() == {"running": 0, "waiting": 0, "visitors": {}}


def test_admission_waiting_job_leaves_when_its_visitor_goes():
    import asyncio

    gate = admission.Admission(slots=1, visitor_jobs=2)
    first, second = gate.admit(admission.Visitor("a")), gate.admit(admission.Visitor("b"))

    async def main():
        await gate.wait_turn(first)
        with pytest.raises(admission.Abandoned):
            await gate.wait_turn(second, gone=lambda: True)
        first.release()

    asyncio.run(main())
    assert gate.snapshot() == {"running": 0, "waiting": 0, "visitors": {}}


# -- jobs (real model) ------------------------------------------------------------------------
def test_run_photo_modes_and_pixel_limit(shared_images, tmp_path):
    cache, store = jobs.SegmenterCache(), jobs.TempStore(tmp_path / "s")
    bird = shared_images / "bird.bmp"
    r = jobs.run_photo(cache, bird, "deeplabv3-pascal", "side-by-side", 0.5, ["bird"], Limits(), store)
    assert r.output.name == "bird_segmented.png" and r.display.shape == r.original.shape == (343, 512, 3)
    from PIL import Image

    with Image.open(r.output) as im:
        assert im.size == (1024, 343)
    assert [it.name for it in r.legend] == ["bird"]
    small = Limits(max_pixels=100 * 100)
    r = jobs.run_photo(cache, bird, "deeplabv3-pascal", "mask", 0.5, None, small, store)
    assert r.original.shape[0] * r.original.shape[1] <= 100 * 100 and r.stats.downscaled_from == (512, 343)
    cam = np.full((120, 160, 3), 90, np.uint8)
    r = jobs.run_photo(cache, cam, DEFAULT_MODEL_ID, "overlay", 0.5, None, Limits(), store)
    assert r.output.name == "webcam_segmented.png"
    with pytest.raises(InputError, match="is a photo, not a video"):
        jobs.VideoRequest.parse(bird, Limits(), DEFAULT_MODEL_ID, "overlay", 0.5, "accurate")


def test_run_photo_effect_and_labels(shared_images, tmp_path):
    """remove-background: an RGBA PNG; labels: the class map as .zip and COCO .json beside it."""
    from PIL import Image
    from media import read_coco, read_zip

    from segmentation.pipeline import segment_image

    cache, store = jobs.SegmenterCache(), jobs.TempStore(tmp_path / "s")
    bird = shared_images / "bird.bmp"
    r = jobs.run_photo(cache, bird, "deeplabv3-pascal", "remove-background", 0.5, ["bird"], Limits(), store,
                       effect=checks.effect_options(feather=0), labels=True)
    assert [p.name for p in r.downloads] == ["bird_segmented.png", "bird_labels.zip", "bird_labels.json"]
    assert sorted(f.name for f in r.output.parent.iterdir()) == sorted(p.name for p in r.downloads)
    expected = segment_image(cache.get("deeplabv3-pascal"), bird).class_map
    with Image.open(r.output) as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3] == 255, expected == 3)  # hard edge: alpha is the bird
    assert r.display.shape == (343, 512, 4)
    assert np.array_equal(read_zip(r.labels[0])[0][0], expected)
    assert np.array_equal(read_coco(r.labels[1])[0][0], expected)
    assert store.used_bytes() == sum(p.stat().st_size for p in r.downloads)


class _SlowStub(StubSegmenter):
    def predict(self, rgb):
        time.sleep(0.05)
        return super().predict(rgb)


def _stub_cache(segmenter) -> jobs.SegmenterCache:
    return jobs.SegmenterCache(factory=lambda model_id: segmenter)


def _run_video(cache, clip, limits, store, mode="overlay", classes=None, *, cancel=None, **asked):
    """One video job as the handlers run it: the request parsed, then run."""
    request = jobs.VideoRequest.parse(clip, limits, DEFAULT_MODEL_ID, mode, 0.5, "accurate", classes, **asked)
    return jobs.run_video(cache, request, limits, store, cancel=cancel)


def test_run_video_work_budget_refuses_visitors_and_trims_examples(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=30)  # 25 fps
    cache, store, small = _stub_cache(StubSegmenter()), jobs.TempStore(tmp_path / "s"), Limits(max_frames=10)
    over = r"^The video has 30 frames; the limit is 10 frames \(0\.333 s at 30 frames per second\)\.$"
    with pytest.raises(InputError, match=over):
        _run_video(cache, clip, small, store)
    with pytest.raises(InputError, match=r"^The video runs at 25 frames per second; the limit is 24\.5\.$"):
        _run_video(cache, clip, Limits(max_fps=24.5), store)
    r = _run_video(cache, clip, small, store, trim=True)
    assert r.stats.frames == 10 and r.stats.trimmed_to_seconds == 0.4
    assert list(store.root.iterdir()) == [r.output.parent]


def test_run_video_past_the_wall_clock_is_stopped_and_removed(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=60)  # ~3 s with the slow stub
    store = jobs.TempStore(tmp_path / "s")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"^The job took longer than the limit of 0\.5 s and was stopped; nothing"):
        _run_video(_stub_cache(_SlowStub()), clip, Limits(max_job_seconds=0.5), store)
    assert time.monotonic() - t0 < 2.0
    assert list(store.root.iterdir()) == [] and store.used_bytes() == 0
    # Stopped by someone else (Stop): the pipeline's own Cancelled, not the wall-clock sentence.
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        _run_video(_stub_cache(_SlowStub()), clip, Limits(max_job_seconds=0.5), store, cancel=cancel)


def test_run_video_effect_labels_and_timeline(tmp_path):
    """remove-background: a WebM; labels: a .zip and a COCO .json, both written by the pipeline in
    the same pass, the same class maps at the same times; the timeline: one entry per frame."""
    from media import decode_rgba_webm
    from media import read_coco, read_zip

    clip = make_clip(tmp_path / "c.mp4", frames=12)
    store = jobs.TempStore(tmp_path / "s")
    r = _run_video(_stub_cache(StubSegmenter()), clip, Limits(), store, "remove-background", ["class 1"],
                   effect=checks.effect_options(feather=0), labels=True)
    assert [p.name for p in r.downloads] == ["c_segmented.webm", "c_labels.zip", "c_labels.json"]
    assert sorted(f.name for f in r.output.parent.iterdir()) == sorted(p.name for p in r.downloads)
    maps, meta = read_zip(r.labels[0])
    coco, doc = read_coco(r.labels[1])
    assert maps.shape == (12, 48, 64) and np.array_equal(maps, coco)
    assert [f["time"] for f in meta["frames"]] == [im["time"] for im in doc["images"]] == list(r.timeline.times)
    assert len(r.timeline) == 12 and r.stats.mode == "remove-background"
    alpha = np.stack(decode_rgba_webm(r.output))[..., 3]
    assert np.array_equal(alpha > 127, maps == 1)  # the stub's top half is class 1: opaque; the rest clear
    # the API's runs: no labels, and an overlay stays an MP4
    r = _run_video(_stub_cache(StubSegmenter()), clip, Limits(), store)
    assert [p.name for p in r.downloads] == ["c_segmented.mp4"]


def test_live_session_realtime_and_model_switch(shared_models):
    cache = jobs.SegmenterCache()
    live = LiveSession(interval=0.1)
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for _ in range(4):
        out, text = live.process(cache.get(DEFAULT_MODEL_ID), frame, "side-by-side", 0.5, None, "realtime")
    assert out.shape == (240, 640, 3)
    assert "ms per frame" in text and "frames/s" in text and live.keyframes < live.frames == 4
    out, text = live.process(cache.get("deeplabv3-pascal-dm05"), frame, "mask", 0.5, (15,), "accurate")
    assert out.shape == frame.shape and "deeplabv3-pascal-dm05" in text


def test_live_people_effect_runs_the_light_person_model(shared_models, shared_videos):
    """A background effect that keeps people runs the landscape selfie model alone and says so;
    another foreground (or an overlay) keeps the chosen model."""
    import av

    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in zip(range(121), c.decode(video=0))][-3:]
    cache = jobs.SegmenterCache()
    people = cache.get("selfie-segmentation-landscape")
    live = LiveSession(interval=0.1)
    for frame in frames:
        out, text = live.process(cache.get(DEFAULT_MODEL_ID), frame, "replace-background", 0.5, None,
                                 "accurate", people=people)
    assert "selfie-segmentation-landscape (people only" in text and out.shape == frame.shape
    green = np.all(out == (0, 255, 0), axis=-1)
    assert 0.7 < green.mean() < 0.99  # the background replaced, the woman (about 1/10 of the frame) kept
    out, text = live.process(cache.get(DEFAULT_MODEL_ID), frames[-1], "replace-background", 0.5, (1,),
                             "accurate", people=people)
    assert "people only" not in text and DEFAULT_MODEL_ID in text


# -- example files ----------------------------------------------------------------------------
def test_examples_are_pinned_and_attributed():
    readme = (Path(ex.__file__).resolve().parent.parent / "examples" / "README.md").read_text()
    for e in ex.EXAMPLES:
        assert len(e.sha256) == 64 and e.url.startswith("https://github.com/")
        assert e.name in readme and e.url in readme and e.licence in readme
        assert e.model in catalog.CATALOG and e.mode in checks.MODES and e.speed in checks.SPEEDS


def _fake_example(tmp_path: Path, data: bytes) -> ex.ExampleFile:
    return replace(ex.EXAMPLES[-1], name="thing.bin", url="https://invalid.invalid/thing.bin",
                   sha256=hashlib.sha256(data).hexdigest())


def test_ensure_examples_copies_verified_files_from_a_source(tmp_path):
    data = b"example bytes"
    e = _fake_example(tmp_path, data)
    wrong, right, dest = tmp_path / "wrong", tmp_path / "right", tmp_path / "cache"
    wrong.mkdir(), right.mkdir()
    (wrong / e.name).write_bytes(b"tampered")
    (right / e.name).write_bytes(data)
    got = ex.ensure_examples(dest, sources=[wrong, right], download=False, examples=[e])
    assert got == [(e, dest / e.name)] and (dest / e.name).read_bytes() == data
    assert not list(dest.glob("*.part"))
    # a cached copy is reused, a tampered cached copy is replaced
    (dest / e.name).write_bytes(b"tampered")
    ex.ensure_examples(dest, sources=[right], download=False, examples=[e])
    assert (dest / e.name).read_bytes() == data


def test_ensure_examples_offline_logs_one_line_and_goes_on(tmp_path, caplog):
    e = _fake_example(tmp_path, b"never there")
    with caplog.at_level("WARNING"):
        got = ex.ensure_examples(tmp_path / "cache", sources=[], download=True, timeout=2, examples=[e])
    assert got == []
    lines = [r for r in caplog.records if r.name == ex.__name__]
    assert len(lines) == 1 and "1 of 1 unavailable" in lines[0].getMessage() and ex.ENV_SOURCE in lines[0].getMessage()
    assert not (tmp_path / "cache" / e.name).exists()


def test_source_dirs_split_on_pathsep():
    assert ex.source_dirs(os.pathsep.join(["/a", "", "/b"])) == [Path("/a"), Path("/b")]


def test_shared_files_match_the_pinned_hashes(shared_videos, shared_images, tmp_path):
    got = ex.ensure_examples(tmp_path, sources=[shared_videos, shared_images], download=False)
    assert [e.name for e, _ in got] == [e.name for e in ex.EXAMPLES if not e.source_sha256]
    trimmed = [e for e in ex.EXAMPLES if e.source_sha256]
    assert [e.name for e in trimmed] == ["one-by-one-person-detection.mp4"]
    for e in trimmed:  # the shared file is the published original the shipped one was cut from
        assert weights.sha256_file(shared_videos / e.name) == e.source_sha256


def test_shipped_examples_are_used_in_place(caplog):
    """examples/ holds every example, verified, under ~3 MB each; nothing is copied or fetched."""
    with caplog.at_level("WARNING"):
        got = ex.ensure_examples(sources=[], download=False)
    assert [(e, p) for e, p in got] == [(e, ex.EXAMPLES_DIR / e.name) for e in ex.EXAMPLES]
    assert not [r for r in caplog.records if r.name == ex.__name__]
    assert ex.EXAMPLES[0].name == "classroom.gif"
    assert all(p.stat().st_size < 3_000_000 for _, p in got)


def test_a_trimmed_example_is_never_downloaded(tmp_path, caplog):
    e = replace(_fake_example(tmp_path, b"trimmed"), source_sha256="0" * 64)
    with caplog.at_level("WARNING"):
        assert ex.ensure_examples(tmp_path / "cache", sources=[], download=True, timeout=2, examples=[e]) == []
    assert "untrimmed original" in caplog.text and not (tmp_path / "cache" / e.name).exists()


def test_results_cache_dir_is_named_after_the_code(tmp_path):
    a, b = ex.results_cache_dir(tmp_path), ex.results_cache_dir(tmp_path)
    assert a == b and a.parent == tmp_path and len(a.name) == 12
