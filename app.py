"""Gradio web app: real-time semantic segmentation of videos, photos and a live webcam.

Run ``python app.py`` (Hugging Face Spaces runs the same). This file only wires
Gradio components to the package: validation, limits, jobs, legend and stats
live in ``segmentation.service``; segmentation itself in ``segmentation.pipeline``.

Environment (all optional): GRADIO_SERVER_NAME (default 127.0.0.1),
GRADIO_SERVER_PORT (7860), SEGMENTATION_WEIGHTS (model cache),
SEGMENTATION_EXAMPLES_SOURCE (local folders holding the example files),
SEGMENTATION_MAX_UPLOAD_MB (200), SEGMENTATION_MAX_SECONDS (120),
SEGMENTATION_MAX_PIXELS (3840*2160), SEGMENTATION_CONCURRENCY (1),
SEGMENTATION_QUEUE_SIZE (16), SEGMENTATION_LIVE_CONCURRENCY (2),
SEGMENTATION_LIVE_SECONDS (120), SEGMENTATION_TMP_MAX_AGE (3600),
SEGMENTATION_WARM_EXAMPLES (1: compute the example results in the background after start;
they are cached under .gradio/cached_examples/<hash of the code>/, or GRADIO_EXAMPLES_CACHE).
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import gradio as gr
from gradio.utils import NamedString
from gradio_client.utils import is_valid_file

from segmentation import DEFAULT_MODEL_ID, service
from segmentation import examples as example_files
from segmentation.draw import MODES
from segmentation.errors import SegmentationError
from segmentation.pipeline import SPEEDS, sniff_kind

log = logging.getLogger("segmentation.app")

LIVE_INTERVAL = 0.1  # seconds between webcam frames sent by the browser
HEAVY = "heavy"  # concurrency group of photo/video jobs (UI and API share it)

try:
    LIMITS = service.Limits.from_env()
except ValueError as exc:  # a bad SEGMENTATION_* value: say which, don't start
    sys.exit(f"error: {exc}")
SEGMENTERS = service.SegmenterCache()
STORE = service.TempStore(max_age=LIMITS.tmp_max_age)
EXAMPLE_TABLES: list[gr.Examples] = []  # filled by build(); their results are computed by _warm_up
demo: gr.Blocks | None = None


def upload_component(**kwargs) -> gr.File:
    """A ``gr.File`` whose jobs get the uploaded file's path and nothing more.

    Gradio 6.31's ``File`` opens an unused ``NamedTemporaryFile(delete=False)`` in its cache on
    every call and never deletes it: one stray empty file per job, forever. The fix is set on
    the instance: a ``gr.File`` subclass would make Gradio write an ``app.pyi`` beside this file.
    """
    component = gr.File(**kwargs)
    component._process_single_file = functools.partial(_uploaded_path, component)
    return component


def _uploaded_path(component: gr.File, data) -> NamedString:
    if component.file_types and not is_valid_file(data.path, component.file_types):
        raise gr.Error(f"Invalid file type. Please upload a file that is one of these formats: {component.file_types}")
    return NamedString(data.path)


# -- errors and cancellation ------------------------------------------------------------
def _user_error(exc: BaseException) -> gr.Error:
    """Every failure becomes one sentence for the user; unexpected ones are logged in full."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, SegmentationError):
        return gr.Error(str(exc), print_exception=False)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        log.error("Disk full while writing a result: %s", exc)
        return gr.Error("The server ran out of disk space while writing the result; nothing was kept. "
                        "Try again later, or with a shorter or smaller file.", print_exception=False)
    log.error("Unexpected error", exc_info=exc)
    return gr.Error("Something went wrong while processing this file; the error was logged on the server. "
                    "Try another file or model.", print_exception=False)


def _event_id() -> str | None:
    try:
        from gradio.context import LocalContext

        return LocalContext.event_id.get(None)
    except Exception:
        return None


def _client_gone(event_id: str | None) -> bool:
    """Whether Gradio marked this event's client as gone (tab closed / disconnected)."""
    queue = getattr(demo, "_queue", None)
    if not event_id or queue is None:
        return False
    try:
        for jobs in queue.active_jobs:
            for job in jobs or ():
                if getattr(job, "_id", None) == event_id:
                    return not job.alive
    except Exception:
        return False
    return False


async def _in_thread(fn, *args, cancel: threading.Event | None = None):
    """Run a blocking job off the event loop; Stop, a cancelled task or a gone client set ``cancel``."""
    event_id = _event_id()
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception not retrieved"
    try:
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.5)
            if done:
                return fut.result()
            if cancel is not None and _client_gone(event_id):
                log.info("Client disconnected; cancelling job %s", event_id)
                cancel.set()
    except asyncio.CancelledError:
        if cancel is not None:
            log.info("Job %s cancelled (Stop)", event_id)
            cancel.set()
        raise


# -- jobs ----------------------------------------------------------------------------------
def user_errors(fn):
    """Decorator: whatever goes wrong in ``fn`` reaches the user as one ``gr.Error`` sentence."""
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise _user_error(exc) from None
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                raise _user_error(exc) from None
    return wrapper


async def _photo(source, model_id, mode, alpha, classes) -> service.PhotoOutcome:
    return await _in_thread(service.run_photo, SEGMENTERS, source, model_id, mode, alpha, classes, LIMITS, STORE)


async def _video(path, model_id, mode, alpha, speed, classes, progress=None, trim=False,
                 temporal=True) -> service.VideoOutcome:
    cancel = threading.Event()
    report = None
    if progress is not None:
        def show(done: int, total: int, rate: float) -> None:
            progress((done, total), desc=f"Segmenting · {rate:.1f} frames/s", unit="frames")

        report = service.FrameRate(show, min_interval=0.2)
    return await _in_thread(service.run_video, SEGMENTERS, path, model_id, mode, alpha, speed, classes,
                            LIMITS, STORE, report, cancel, trim, bool(temporal), cancel=cancel)


@user_errors
async def run(upload, webcam_photo, source, model_id, mode, alpha, speed, classes, temporal,
              progress=gr.Progress()):
    """The Run button: a photo or a video (told apart by content), shown side by side."""
    return await _run(upload, webcam_photo, source, model_id, mode, alpha, speed, classes, progress,
                      temporal=temporal)


@user_errors
async def run_example(upload, model_id, mode, alpha, speed):
    """An example row (computed once, then served from Gradio's cache); long examples are trimmed."""
    return await _run(upload, None, "upload", model_id, mode, alpha, speed, [], None, trim=True)


async def _run(upload, webcam_photo, source, model_id, mode, alpha, speed, classes, progress, trim=False,
               temporal=True):
    use_webcam = webcam_photo is not None and (source == "webcam" or not upload)
    if use_webcam:
        kind = "image"
    elif upload:
        kind = await asyncio.to_thread(sniff_kind, service.check_upload(upload, LIMITS))
    else:
        raise gr.Error("Drop a video or a photo first (or take a webcam photo).", print_exception=False)
    if kind == "image":
        r = await _photo(webcam_photo if use_webcam else upload, model_id, mode, alpha, classes)
        return (gr.update(value=(r.original, r.display), visible=True),
                gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                service.legend_html(r.legend), service.stats_markdown(r.stats), str(r.output))
    if progress is not None:
        progress((0, None), desc="Starting…", unit="frames")
    r = await _video(upload, model_id, mode, alpha, speed, classes, progress, trim, temporal)
    two_players = mode != "side-by-side"
    return (gr.update(value=None, visible=False),
            gr.update(value=str(r.source) if two_players else None, visible=two_players),
            gr.update(value=str(r.output), visible=True),
            service.legend_html(r.legend), service.stats_markdown(r.stats), str(r.output))


@user_errors
async def api_segment_image(image, model, mode, alpha, classes):
    """Segment a photo. Returns the result image (PNG; side-by-side is twice as wide), the legend
    (classes present: id, name, colour, share of pixels) and stats."""
    r = await _photo(image, model, mode, alpha, classes)
    return str(r.output), service.legend_json(r.legend), r.stats


@user_errors
async def api_segment_video(video, model, mode, alpha, speed, classes, temporal=True):
    """Segment a video into an H.264 MP4 at the source's frame rate (audio kept). Returns the video,
    the legend (classes present over all frames) and stats (frames, fps, processing frames/s).
    ``temporal`` (default true) fuses each frame with the flow-warped previous ones (less flicker)."""
    r = await _video(video, model, mode, alpha, speed, classes, temporal=temporal)
    return str(r.output), service.legend_json(r.legend), r.stats


@user_errors
def live(frame, model_id, mode, alpha, speed, classes, temporal, session):
    """One webcam frame in, one segmented frame out (per-session flow propagation)."""
    if frame is None:
        return gr.skip(), gr.skip(), session
    session = session or service.LiveSession(LIVE_INTERVAL)
    seg = SEGMENTERS.get(model_id)
    out, text = session.process(seg, frame, service.check_mode(mode), service.check_alpha(alpha),
                                service.class_filter(classes, seg.labels), service.check_speed(speed),
                                bool(temporal))
    return out, text, session


@user_errors
def model_changed(model_id):
    return gr.update(choices=service.class_names(model_id), value=[])


# -- page ------------------------------------------------------------------------------------
INTRO = """# Real-time semantic segmentation
Drop a **video** or a **photo** (or use your webcam): every pixel is labelled with a class.
Videos come back as H.264 MP4 at their own frame rate with their audio.
*realtime* runs the model on keyframes and carries the classes along with optical flow in between;
*accurate* runs it on every frame."""


def build(examples: list[tuple[example_files.ExampleFile, Path]]) -> gr.Blocks:
    with gr.Blocks(title="Real-time semantic segmentation", delete_cache=(max(60, LIMITS.tmp_max_age // 4),
                                                                        LIMITS.tmp_max_age)) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                model = gr.Dropdown(service.model_choices(), value=DEFAULT_MODEL_ID, label="Model",
                                    elem_id="model")
                mode = gr.Radio(list(MODES), value="overlay", label="Output", elem_id="mode")
                alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity", elem_id="alpha")
                speed = gr.Radio(list(SPEEDS), value="accurate", label="Speed (video and live)",
                                 info="realtime: model on keyframes + optical flow", elem_id="speed")
                temporal = gr.Checkbox(True, label="Temporal smoothing (video and live)",
                                       info="blend each frame with the previous ones along the motion: "
                                            "no flicker; off = every frame on its own", elem_id="temporal")
                classes = gr.Dropdown(service.class_names(DEFAULT_MODEL_ID), value=[], multiselect=True,
                                      label="Show only these classes", info="empty = all classes",
                                      elem_id="classes")
                gr.Markdown(f"Limits: {LIMITS.max_upload_mb:g} MB per file, videos up to "
                            f"{LIMITS.max_seconds:g} s and {LIMITS.max_pixels:,} pixels per frame.")
            with gr.Column(scale=3):
                with gr.Tabs():
                    with gr.Tab("Video or photo", id="files"):
                        source = gr.State("upload")
                        with gr.Tabs():
                            with gr.Tab("Upload", id="upload") as upload_tab:
                                upload = upload_component(label="Drop a video or a photo",
                                                          file_types=["video", "image"], elem_id="upload")
                            with gr.Tab("Webcam photo", id="webcam") as webcam_tab:
                                webcam_photo = gr.Image(sources=["webcam"], type="numpy", label="Webcam photo",
                                                        elem_id="webcam-photo")
                        upload_tab.select(lambda: "upload", None, source, queue=False, api_visibility="private")
                        webcam_tab.select(lambda: "webcam", None, source, queue=False, api_visibility="private")
                        with gr.Row():
                            run_btn = gr.Button("Run", variant="primary", scale=4, elem_id="run")
                            stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
                        slider = gr.ImageSlider(label="Original | segmented", type="numpy", format="png",
                                                elem_id="result-photo")
                        with gr.Row():
                            original_video = gr.Video(label="Original", visible=False, elem_id="original-video")
                            result_video = gr.Video(label="Segmented", visible=False, elem_id="result-video")
                        legend = gr.HTML(label="Classes present", elem_id="legend")
                        stats = gr.Markdown(elem_id="stats")
                        download = gr.File(label="Download the result", interactive=False, height=110,
                                           elem_id="download")
                        outputs = [slider, original_video, result_video, legend, stats, download]
                        job = run_btn.click(run, [upload, webcam_photo, source, model, mode, alpha, speed, classes,
                                                 temporal],
                                            outputs, concurrency_id=HEAVY, concurrency_limit=LIMITS.concurrency,
                                            api_visibility="undocumented", api_name="run")
                        stop_btn.click(None, None, None, cancels=[job], api_visibility="private")
                        if examples:
                            EXAMPLE_TABLES.append(gr.Examples(
                                [[str(p), ex.model, ex.mode, ex.alpha, ex.speed] for ex, p in examples],
                                [upload, model, mode, alpha, speed], outputs, fn=run_example,
                                cache_examples=True, cache_mode="lazy",
                                example_labels=[ex.title for ex, _ in examples], label="Examples",
                            ))
                        else:
                            gr.Markdown("*Examples are unavailable (offline, see the server log).*")
                    with gr.Tab("Live webcam", id="live"):
                        with gr.Row():
                            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                           elem_id="live-input")
                            live_out = gr.Image(label="Segmented live", format="jpeg", elem_id="live-output")
                        live_stats = gr.Markdown("Start the webcam to segment it live.", elem_id="live-stats")
                        session = gr.State(None)
                        cam.stream(live, [cam, model, mode, alpha, speed, classes, temporal, session],
                                   [live_out, live_stats, session], stream_every=LIVE_INTERVAL,
                                   time_limit=LIMITS.live_seconds, concurrency_id="live",
                                   concurrency_limit=LIMITS.live_concurrency, api_visibility="undocumented",
                                   api_name="live", show_progress="hidden")
        model.change(model_changed, model, classes, queue=False, api_visibility="private")

        # API-only endpoints (gradio_client): /segment_image and /segment_video.
        with gr.Column(visible=False):
            a_file = upload_component(label="file")
            a_model = gr.Textbox(DEFAULT_MODEL_ID, label="model")
            a_mode = gr.Textbox("overlay", label="mode")
            a_alpha = gr.Number(0.5, label="alpha")
            a_speed = gr.Textbox("accurate", label="speed")
            a_classes = gr.JSON([], label="classes")  # list of class names (or one comma-separated string)
            a_temporal = gr.Checkbox(True, label="temporal")
            a_image = gr.Image(type="filepath", format="png", label="result image")
            a_video = gr.Video(label="result video")
            a_legend = gr.JSON(label="legend")
            a_stats = gr.JSON(label="stats")
            a_img_btn = gr.Button("segment_image")
            a_vid_btn = gr.Button("segment_video")
        a_img_btn.click(api_segment_image, [a_file, a_model, a_mode, a_alpha, a_classes], [a_image, a_legend, a_stats],
                        api_name="segment_image", concurrency_id=HEAVY, concurrency_limit=LIMITS.concurrency)
        a_vid_btn.click(api_segment_video, [a_file, a_model, a_mode, a_alpha, a_speed, a_classes, a_temporal],
                        [a_video, a_legend, a_stats], api_name="segment_video", concurrency_id=HEAVY,
                        concurrency_limit=LIMITS.concurrency)
    app.queue(max_size=LIMITS.queue_size, default_concurrency_limit=LIMITS.concurrency)
    return app


def _warm_up(app: gr.Blocks) -> None:
    """After start: load the default model, then the example results."""
    try:
        log.info("Loading the default model %s...", DEFAULT_MODEL_ID)
        SEGMENTERS.get(DEFAULT_MODEL_ID)
    except SegmentationError as exc:
        log.error("The default model is not available: %s", exc)
        return
    if os.environ.get("SEGMENTATION_WARM_EXAMPLES", "1").strip().lower() in ("0", "false", "no"):
        return
    for table in EXAMPLE_TABLES:
        for i in range(len(table.examples)):
            try:
                table.load_from_cache(i)  # Gradio's lazy cache: computed once, then served to everyone
            except Exception:
                log.exception("Could not compute the result of example %d", i)
    log.info("Example results are cached.")


def main() -> None:
    global demo
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.chdir(Path(__file__).resolve().parent)  # examples/ and .gradio/ are relative to the project
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(example_files.results_cache_dir()))
    examples = example_files.ensure_examples()
    demo = build(examples)
    atexit.register(STORE.close)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so atexit cleanup runs on a plain kill too
    STORE.start_sweeper()
    demo.launch(max_file_size=LIMITS.max_upload_bytes, css=service.LEGEND_CSS, prevent_thread_lock=True,
                allowed_paths=[str(example_files.EXAMPLES_DIR)])
    threading.Thread(target=_warm_up, args=(demo,), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
