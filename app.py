"""Gradio web app: real-time semantic segmentation of videos, photos and a live webcam.

Run ``python app.py`` (Hugging Face Spaces runs the same). This file is the entry point and the
page's layout: ``main`` builds the app's context (limits, job store, segmenters, logging) and
``build_app`` wires Gradio components to the handlers in ``webapp.handlers``. Validation, jobs,
legend and stats live in the ``webapp`` package; segmentation itself in the ``segmentation`` library.

Environment (all optional): GRADIO_SERVER_NAME (default 127.0.0.1), GRADIO_SERVER_PORT (7860),
GRADIO_EXAMPLES_CACHE (example results; default .gradio/cached_examples/<hash of the code>/), and
the SEGMENTATION_* settings, each with its default and meaning in one table: segmentation/config.py
(docs/configuration.md).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from pathlib import Path

if __name__ == "__main__":  # stop at once on SIGTERM / Ctrl-C while the imports below run (seconds)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))

import gradio as gr

from segmentation import DEFAULT_MODEL_ID, config
from segmentation.draw import MODES
from segmentation.effects import EffectOptions
from segmentation.errors import SegmentationError
from segmentation.pipeline import SPEEDS
from webapp import examples as example_files
from webapp.checks import class_names, model_choices
from webapp.context import AppContext, setup_logging
from webapp.gradio_compat import (PAGE_JS, accept_missing_inputs, compute_example,
                                  explain_refused_paths, pass_upload_path)
from webapp.handlers import Handlers
from webapp.live import LIVE_INTERVAL
from webapp.views import PAGE_CSS

log = logging.getLogger("app")

HEAVY = "heavy"  # concurrency group of photo/video jobs (UI and API share it)

INTRO = """# Real-time semantic segmentation
Drop a **video** or a **photo** (or use your webcam): every pixel is labelled with a class. Show the classes
over the picture or as a mask, or keep the people and blur, replace or remove the background. Videos keep
their frame rate and audio; *realtime* runs the model on keyframes and follows the motion between them,
*accurate* runs it on every frame."""


def build_app(context: AppContext, examples: list[tuple[example_files.ExampleFile, Path]]
              ) -> tuple[gr.Blocks, list[gr.helpers.Examples]]:
    """The page and the API endpoints; returns them with the example tables (to warm their cache)."""
    limits, on = context.limits, Handlers(context)
    # Photo/video handlers Gradio starts at once: the running jobs and those waiting for a slot, each
    # admitted per visitor in its handler (webapp.admission); the rest wait in Gradio's queue.
    heavy = dict(concurrency_id=HEAVY, concurrency_limit=limits.concurrency + limits.queue_size)
    tables: list[gr.helpers.Examples] = []
    with gr.Blocks(title="Real-time semantic segmentation", delete_cache=(max(60, limits.tmp_max_age // 4),
                                                                        limits.tmp_max_age)) as app:
        gr.Markdown(INTRO)
        # The settings, placed in their column below (after the results, see there).
        model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL_ID, label="Model", elem_id="model", render=False)
        mode = gr.Radio(list(MODES), value="overlay", label="Output", elem_id="mode", render=False)
        alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity", elem_id="alpha", render=False)
        effect = EffectOptions()
        blur = gr.Slider(1, 60, value=effect.blur, step=1, label="Blur strength (px)", visible=False,
                         info="Gaussian sigma in the picture's pixels; 15 suits 720p", elem_id="blur", render=False)
        colour = gr.ColorPicker(value=str(effect.background), label="Background colour", visible=False,
                                info="when no background image is given", elem_id="background-colour", render=False)
        background_image = gr.Image(sources=["upload"], type="filepath", label="Background image (optional)",
                                    visible=False, height=160, elem_id="background-image", render=False)
        feather = gr.Slider(0, 20, value=effect.feather, step=0.5, label="Edge feather (px)", visible=False,
                            info="soft edge around the kept classes; 0 = hard edge", elem_id="feather", render=False)
        speed = gr.Radio(list(SPEEDS), value="accurate", label="Speed (video and live)",
                         info="realtime: model on keyframes + optical flow", elem_id="speed", render=False)
        temporal = gr.Checkbox(True, label="Temporal smoothing (video and live)",
                               info="blend each frame with the previous ones along the motion: "
                                    "no flicker; off = every frame on its own", elem_id="temporal", render=False)
        classes = gr.Dropdown(class_names(DEFAULT_MODEL_ID), value=[], multiselect=True,
                              label="Show only these classes", info="empty = all classes",
                              elem_id="classes", render=False)
        settings = [model, mode, alpha, blur, colour, background_image, feather, speed, temporal, classes]
        with gr.Row(equal_height=False):
            # The drop zone and results first, the settings after them: on the right on a desktop,
            # below on a phone (a narrow screen stacks the columns in this order).
            with gr.Column(scale=3, min_width=320):
                with gr.Tabs():
                    with gr.Tab("Video or photo", id="files"):
                        source = gr.State("upload")
                        with gr.Tabs():
                            with gr.Tab("Upload", id="upload") as upload_tab:
                                upload = pass_upload_path(gr.File(label="Drop a video or a photo",
                                                                  file_types=["video", "image"], elem_id="upload"))
                            with gr.Tab("Webcam photo", id="webcam") as webcam_tab:
                                webcam_photo = gr.Image(sources=["webcam"], type="numpy", label="Webcam photo",
                                                        elem_id="webcam-photo")
                        # pick by pointing: a still of the input; a click toggles the class under it
                        still = gr.Image(type="numpy", label="Pick classes: click on the picture",
                                         interactive=False, visible=False, height=260, buttons=[],
                                         elem_id="pick-still")
                        pick_at = gr.Slider(0, 1, value=0, step=0.1, label="Frame to pick from (s)",
                                            visible=False, elem_id="pick-at")
                        pick_status = gr.Markdown("", elem_id="pick-status")
                        upload_tab.select(lambda: "upload", None, source, queue=False, api_visibility="private")
                        webcam_tab.select(lambda: "webcam", None, source, queue=False, api_visibility="private")
                        with gr.Row():
                            run_btn = gr.Button("Run", variant="primary", scale=4, elem_id="run")
                            # enabled only while a job of this page runs
                            stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop", interactive=False)
                        # the page's message: a failure in plain words, or "Stopped"; until the next action
                        status = gr.HTML("", elem_id="job-status")
                        # no download button of its own: it would save the picture shown (checkerboard
                        # included) as image.png; the downloads below hold the result file itself
                        slider = gr.ImageSlider(label="Original | segmented", type="numpy", format="png",
                                                buttons=["fullscreen"], elem_id="result-photo")
                        with gr.Row():
                            original_video = gr.Video(label="Original", visible=False, elem_id="original-video")
                            result_video = gr.Video(label="Segmented", visible=False, elem_id="result-video")
                        legend = gr.HTML(label="Classes present", elem_id="legend")
                        timeline = gr.LinePlot(x="time", y="share", color="class", x_title="time (s)",
                                               y_title="share of the frame (%)", colors_in_legend=[],  # the
                                               label="Classes over time (colours as in the legend)",  # HTML one
                                               visible=False, elem_id="timeline")
                        stats = gr.Markdown(elem_id="stats")
                        download = gr.File(label="Download: the result, and its labels (.zip: an 8-bit PNG of "
                                                 "class ids per frame + labels.json; .json: COCO)",
                                           file_count="multiple", interactive=False, visible=False, elem_id="download")
                        outputs = [slider, original_video, result_video, legend, timeline, stats, download]
                        if examples:
                            tables.append(_examples_table(examples, upload, [model, mode, alpha, speed, classes],
                                                          outputs, on))
                        else:
                            gr.Markdown("*Examples are unavailable (offline, see the server log).*")
                    with gr.Tab("Live webcam", id="live"):
                        with gr.Row():
                            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                           elem_id="live-input")
                            # an inline JPEG per frame (views.live_image_html)
                            live_out = gr.HTML(label="Segmented live", elem_id="live-output")
                        live_stats = gr.Markdown("Start the webcam to segment it live.", elem_id="live-stats")
                        session = gr.State(None)
                        live_timer = gr.Timer(0.5, active=False)  # on while frames come (on.live_idle)
            with gr.Column(scale=1, min_width=260, elem_id="settings"):
                for component in settings:
                    component.render()
                gr.Markdown(f"Limits: {limits.max_upload_mb:g} MB per file, videos up to "
                            f"{limits.max_seconds:g} s, {limits.max_frames:,} frames, {limits.max_fps:g} frames/s "
                            f"and {limits.max_pixels:,} pixels per frame; one job running and one waiting "
                            "per visitor.")
        look = [blur, colour, background_image, feather]
        # Run first clears the previous result and message and enables Stop (a generator's first
        # update), then shows the job's result or failure (webapp.handlers.Handlers.run). One progress
        # display: on the result that is shown (the photo slider or the result video).
        job = run_btn.click(on.run, [upload, webcam_photo, source, model, mode, alpha, speed, classes, temporal, *look],
                            [*outputs, status, stop_btn], **heavy, show_progress_on=[slider, result_video],
                            api_visibility="undocumented", api_name="run")
        stop_btn.click(on.stopped, None, [status, stop_btn, slider], cancels=[job], queue=False,
                       show_progress="hidden", api_visibility="private")
        # a new file or photo is the next action: the last message goes
        for changed in (upload.change, webcam_photo.change):
            changed(lambda: "", None, status, queue=False, show_progress="hidden", api_visibility="private")
        # the live view adapts its speed to the machine until the user picks one (webapp.live.LiveAdapter)
        speed_chosen = gr.State(False)
        speed.input(lambda: True, None, speed_chosen, queue=False, show_progress="hidden", api_visibility="private")
        cam.stream(on.live, [cam, model, mode, alpha, speed, classes, temporal, *look, session, speed_chosen],
                   [live_out, live_stats, session, live_timer], stream_every=LIVE_INTERVAL, time_limit=limits.live_seconds,
                   concurrency_id="live", concurrency_limit=limits.live_concurrency, api_visibility="undocumented",
                   api_name="live", show_progress="hidden")
        live_timer.tick(on.live_idle, session, [live_stats, live_timer], queue=False, api_visibility="private")
        # unqueued: a still is quick, and a queued event would show Gradio's queue status beside the run's
        upload.change(on.pick_source, upload, [still, pick_at, pick_status], queue=False, show_progress="hidden",
                      api_visibility="private")
        webcam_photo.change(on.pick_webcam, webcam_photo, [still, pick_at, pick_status], queue=False,
                            show_progress="hidden", api_visibility="private")
        pick_at.change(on.pick_frame, [upload, pick_at], still, show_progress="hidden", trigger_mode="always_last",
                       api_visibility="private")
        still.select(on.pick, [still, model, mode, classes], [classes, pick_status], show_progress="hidden",
                     api_visibility="private")
        model.change(on.model_changed, model, classes, queue=False, api_visibility="private")
        mode.change(on.mode_changed, mode, [alpha, *look, classes], queue=False, api_visibility="private")

        # API-only endpoints (gradio_client): /segment_image and /segment_video. The effect settings are
        # trailing inputs with defaults: a client sending only the earlier ones still works.
        with gr.Column(visible=False):
            a_file = pass_upload_path(gr.File(label="file"))
            a_model = gr.Textbox(DEFAULT_MODEL_ID, label="model")
            a_mode = gr.Textbox("overlay", label="mode")
            a_alpha = gr.Number(0.5, label="alpha")
            a_speed = gr.Textbox("accurate", label="speed")
            a_classes = gr.JSON([], label="classes")  # list of class names (or one comma-separated string)
            a_temporal = gr.Checkbox(True, label="temporal")
            a_look = [gr.Number(effect.blur, label="blur"), gr.Textbox(str(effect.background), label="background"),
                      pass_upload_path(gr.File(label="background_image", file_types=["image"])),
                      gr.Number(effect.feather, label="feather")]
            a_image = gr.Image(type="filepath", format="png", label="result image")
            a_video = gr.Video(label="result video")
            a_legend = gr.JSON(label="legend")
            a_stats = gr.JSON(label="stats")
            a_img_btn = gr.Button("segment_image")
            a_vid_btn = gr.Button("segment_video")
        a_img_btn.click(on.api_segment_image, [a_file, a_model, a_mode, a_alpha, a_classes, *a_look],
                        [a_image, a_legend, a_stats], api_name="segment_image", **heavy)
        a_vid_btn.click(on.api_segment_video, [a_file, a_model, a_mode, a_alpha, a_speed, a_classes, a_temporal,
                                               *a_look], [a_video, a_legend, a_stats], api_name="segment_video",
                        **heavy)
    # A client sending only the inputs these had before the effects (the page's "run" included) still works.
    accept_missing_inputs(app, {"run": 9, "segment_image": 5, "segment_video": 6})
    explain_refused_paths(app)  # a server file a request may not read: a sentence, not {"error": null}
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    return app, tables


def _examples_table(examples, upload, settings, outputs, on) -> gr.helpers.Examples:
    """The examples: one row each with its thumbnail, title and the settings it sets (model, output,
    speed); choosing one sets them and shows its (cached) result, and the line under the table says
    what it set, so that nothing changes out of sight (on a phone the settings are far below)."""
    model, mode, alpha, speed, classes = settings
    posters = example_files.POSTERS_DIR
    # hidden, but rendered: every component an event sets must be in the page's config (gradio_client)
    poster = gr.Image(type="filepath", label="Thumbnail", visible=False)
    title = gr.Textbox(label="Example", visible=False)
    sets = gr.Textbox(label="Settings it sets", visible=False)
    rows = []
    for ex, path in examples:
        try:
            thumb = str(example_files.poster(ex, path, posters))
        except Exception:  # no thumbnail: the row still works
            log.exception("No thumbnail for example %s", ex.name)
            thumb = None
        # the settings in a few words (short model ids): three narrow columns fit a phone's width
        rows.append([thumb, ex.title, ex.short_settings(), str(path), ex.model, ex.mode, ex.alpha, ex.speed, []])
    inputs = [poster, title, sets, upload, model, mode, alpha, speed, classes]
    table = gr.Examples(rows, inputs, outputs, fn=on.run_example, cache_examples=True, cache_mode="lazy",
                        label="Examples (each sets the model, output and speed that suit it)",
                        visible_columns=[0, 1, 2], examples_per_page=len(rows), elem_id="examples")
    note = gr.Markdown("", elem_id="example-settings")
    lines = [ex.settings_line() for ex, _ in examples]
    table.dataset.click(lambda chosen: f"**Example settings:** {lines[chosen[0]]} (see *Settings*; "
                                       "change them and press Run to try others)",
                        table.dataset, note, queue=False, show_progress="hidden", api_visibility="private")
    return table


def warm_up(context: AppContext, tables: list[gr.helpers.Examples]) -> None:
    """After start: load the default model, then (unless switched off) the example results."""
    try:
        log.info("Loading the default model %s...", DEFAULT_MODEL_ID)
        context.segmenters.get(DEFAULT_MODEL_ID)
    except SegmentationError as exc:
        log.error("The default model is not available: %s", exc)
        return
    if not context.warm_examples:
        return
    for table in tables:
        for i in range(len(table.examples)):
            try:
                compute_example(table, i)  # Gradio's lazy cache: computed once, then served to everyone
            except Exception:  # any failure of one example: logged in full, the others still run
                log.exception("Could not compute the result of example %d", i)
    log.info("Example results are cached.")


STOP_SECONDS = 2.0  # SIGTERM or Ctrl-C to exit, at any moment (start-up, example warm-up, a job)


def stop_on_signals(context: AppContext, server: list[gr.Blocks]) -> None:
    """SIGTERM and SIGINT (Ctrl-C) stop the app within ``STOP_SECONDS``, whatever it is doing, with
    one log line and no traceback: the job store's folder is removed, the server is asked to close
    (Gradio then deletes its cache of this run's files) for at most about a second, the store is
    removed again (a job that was still writing), and the process ends without waiting for running
    jobs or the example warm-up (their threads cannot be interrupted). A second signal ends it at once.
    ``server``: the Blocks once launched (empty before)."""
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        code = 130 if signum == signal.SIGINT else 0
        if stopping.is_set():
            os._exit(code)
        stopping.set()
        log.info("Stopping (%s).", signal.Signals(signum).name)
        logging.shutdown()
        # Threads that cannot be interrupted (the example warm-up, a running job) may fail on files
        # the stop removes: nothing they print in the last second is the user's business.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)

        def close() -> None:
            context.close()
            for demo in server:
                demo.close(verbose=False)

        closer = threading.Thread(target=close, name="stop", daemon=True)
        closer.start()
        closer.join(STOP_SECONDS - 1.3)  # Gradio closing its server may wait on open connections
        context.close()
        logging.shutdown()
        os._exit(code)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main() -> None:
    try:
        config.check()  # every SEGMENTATION_* setting (segmentation/config.py, docs/configuration.md)
        context = AppContext.from_env()
    except ValueError as exc:  # a bad SEGMENTATION_* value: say which, don't start
        sys.exit(f"error: {exc}")
    atexit.register(context.close)
    launched: list[gr.Blocks] = []
    stop_on_signals(context, launched)
    setup_logging()
    os.chdir(Path(__file__).resolve().parent)  # examples/ and .gradio/ are relative to the project
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(example_files.results_cache_dir()))
    demo, tables = build_app(context, example_files.ensure_examples())
    context.store.start_sweeper()
    limits = context.limits
    demo.launch(max_file_size=limits.max_upload_bytes, css=PAGE_CSS, js=PAGE_JS,
                prevent_thread_lock=True,
                allowed_paths=[str(example_files.EXAMPLES_DIR), str(example_files.POSTERS_DIR)],
                # Gradio's running events: every admitted photo/video handler, the live streams, the rest
                max_threads=max(40, limits.concurrency + limits.queue_size + limits.live_concurrency + 8))
    launched.append(demo)
    threading.Thread(target=warm_up, args=(context, tables), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
