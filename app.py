"""Gradio web app: real-time semantic segmentation of videos, photos and a live webcam.

Run ``python app.py`` (Hugging Face Spaces runs the same). This file is the entry point and the
page's wiring: ``main`` builds the app's context (limits, job store, segmenters, logging) and
``build_app`` wires the page's components (laid out in ``webapp.page``) to the handlers in
``webapp.handlers``. Validation, jobs,
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
from segmentation.errors import SegmentationError
from webapp import examples as example_files
from webapp import page
from webapp.context import AppContext, setup_logging
from webapp.gradio_compat import PAGE_JS, accept_missing_inputs, compute_example, explain_refused_paths
from webapp.handlers import Handlers
from webapp.live import LIVE_INTERVAL
from webapp.views import PAGE_CSS

log = logging.getLogger("app")

HEAVY = "heavy"  # concurrency group of photo/video jobs (UI and API share it)
PRIVATE = dict(queue=False, show_progress="hidden", api_visibility="private")  # the page's quick events


def build_app(context: AppContext, examples: list[tuple[example_files.ExampleFile, Path]]
              ) -> tuple[gr.Blocks, list[gr.helpers.Examples]]:
    """The page (``webapp.page``) and the API endpoints, wired to the handlers (``webapp.handlers``);
    returns them with the example tables (to warm their cache)."""
    limits, on = context.limits, Handlers(context)
    # Photo/video handlers Gradio starts at once: the running jobs and those waiting for a slot, each
    # admitted per visitor in its handler (webapp.admission); the rest wait in Gradio's queue.
    heavy = dict(concurrency_id=HEAVY, concurrency_limit=limits.concurrency + limits.queue_size)
    tables: list[gr.helpers.Examples] = []
    with gr.Blocks(title="Real-time semantic segmentation", delete_cache=(max(60, limits.tmp_max_age // 4),
                                                                        limits.tmp_max_age)) as app:
        gr.Markdown(page.INTRO)
        settings = page.settings()  # placed in their column below (after the results, see there)
        with gr.Row(equal_height=False):
            # The drop zone and results first, the settings after them: on the right on a desktop,
            # below on a phone (a narrow screen stacks the columns in this order).
            with gr.Column(scale=3, min_width=320):
                with gr.Tabs():
                    with gr.Tab("Video or photo", id="files"):
                        files = page.files_tab()
                        if examples:
                            tables.append(page.examples_table(examples, files.upload, settings, files.outputs,
                                                              on.run_example))
                        else:
                            gr.Markdown("*Examples are unavailable (offline, see the server log).*")
                    with gr.Tab("Live webcam", id="live"):
                        live = page.live_tab()
            with gr.Column(scale=1, min_width=260, elem_id="settings"):
                settings.render(limits)
        wire_files(files, settings, on, heavy)
        wire_live(live, settings, on, limits)
        wire_settings(settings, on)
        wire_api(page.api_inputs(), on, heavy)
    # A client sending only the inputs these had before the effects (the page's "run" included) still works.
    accept_missing_inputs(app, {"run": 9, "segment_image": 5, "segment_video": 6, "segment_labels": 6})
    explain_refused_paths(app)  # a server file a request may not read: a sentence, not {"error": null}
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    return app, tables


def wire_files(files: page.FilesTab, s: page.Settings, on: Handlers, heavy: dict) -> None:
    """Run and Stop, and pick by pointing, of the "Video or photo" tab."""
    files.upload_tab.select(lambda: "upload", None, files.source, queue=False, api_visibility="private")
    files.webcam_tab.select(lambda: "webcam", None, files.source, queue=False, api_visibility="private")
    # Run first clears the previous result and message and enables Stop (a generator's first
    # update), then shows the job's result or failure (webapp.handlers.Handlers.run). One progress
    # display: on the result that is shown (the photo slider or the result video).
    job = files.run_btn.click(on.run, [files.upload, files.webcam_photo, files.source, s.model, s.mode, s.alpha,
                                       s.speed, s.classes, s.temporal, *s.look],
                              [*files.outputs, files.status, files.stop_btn], **heavy,
                              show_progress_on=[files.slider, files.result_video], api_visibility="undocumented",
                              api_name="run")
    files.stop_btn.click(on.stopped, None, [files.status, files.stop_btn, files.slider], cancels=[job], **PRIVATE)
    # a new file or photo is the next action: the last message goes
    for changed in (files.upload.change, files.webcam_photo.change):
        changed(lambda: "", None, files.status, **PRIVATE)
    # unqueued: a still is quick, and a queued event would show Gradio's queue status beside the run's
    files.upload.change(on.pick_source, files.upload, [files.still, files.pick_at, files.pick_status], **PRIVATE)
    files.webcam_photo.change(on.pick_webcam, files.webcam_photo, [files.still, files.pick_at, files.pick_status],
                              **PRIVATE)
    files.pick_at.change(on.pick_frame, [files.upload, files.pick_at], files.still, show_progress="hidden",
                         trigger_mode="always_last", api_visibility="private")
    files.still.select(on.pick, [files.still, s.model, s.mode, s.classes], [s.classes, files.pick_status],
                       show_progress="hidden", api_visibility="private")


def wire_live(live: page.LiveTab, s: page.Settings, on: Handlers, limits) -> None:
    """The live webcam: each frame segmented as it comes; the status says when the stream stopped.
    The view adapts its speed to the machine until the user picks one (webapp.live.LiveAdapter)."""
    speed_chosen = gr.State(False)
    s.speed.input(lambda: True, None, speed_chosen, **PRIVATE)
    live.cam.stream(on.live, [live.cam, s.model, s.mode, s.alpha, s.speed, s.classes, s.temporal, *s.look,
                              live.session, speed_chosen],
                    [live.output, live.stats, live.session, live.timer], stream_every=LIVE_INTERVAL,
                    time_limit=limits.live_seconds, concurrency_id="live", concurrency_limit=limits.live_concurrency,
                    api_visibility="undocumented", api_name="live", show_progress="hidden")
    live.timer.tick(on.live_idle, live.session, [live.stats, live.timer], **PRIVATE)  # no "0.3s" shown


def wire_settings(s: page.Settings, on: Handlers) -> None:
    """A new model lists its classes; an output mode shows the settings that apply to it."""
    s.model.change(on.model_changed, s.model, s.classes, queue=False, api_visibility="private")
    s.mode.change(on.mode_changed, s.mode, [s.alpha, *s.look, s.classes], queue=False, api_visibility="private")


def wire_api(a: page.ApiInputs, on: Handlers, heavy: dict) -> None:
    """The API-only endpoints (gradio_client): /segment_image, /segment_video, and /segment_labels
    (a photo or a video with its label files, as the page's downloads)."""
    a.image_btn.click(on.api_segment_image, [a.file, a.model, a.mode, a.alpha, a.classes, *a.look],
                      [a.image, a.legend, a.stats], api_name="segment_image", **heavy)
    a.video_btn.click(on.api_segment_video, [a.file, a.model, a.mode, a.alpha, a.speed, a.classes, a.temporal,
                                             *a.look], [a.video, a.legend, a.stats], api_name="segment_video", **heavy)
    a.labels_btn.click(on.api_segment_labels, [a.file, a.model, a.mode, a.alpha, a.speed, a.classes, a.temporal,
                                               *a.look], [a.result, a.labels, a.legend, a.stats],
                       api_name="segment_labels", **heavy)


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
    demo.launch(max_file_size=limits.max_upload_bytes, css=PAGE_CSS, js=PAGE_JS, i18n=page.I18N,
                prevent_thread_lock=True,
                allowed_paths=[str(example_files.EXAMPLES_DIR), str(example_files.POSTERS_DIR)],
                # Gradio's running events: every admitted photo/video handler, the live streams, the rest
                max_threads=max(40, limits.concurrency + limits.queue_size + limits.live_concurrency + 8))
    launched.append(demo)
    threading.Thread(target=warm_up, args=(context, tables), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
