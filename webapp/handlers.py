"""The page's and the API's event handlers, over one ``AppContext``.

Each handler validates nothing itself (``jobs`` and ``checks`` do) and turns every failure into
one ``gr.Error`` sentence (``user_errors``). Photo and video jobs are admitted per visitor
(``gr.Request``: session and address, see ``admission``), wait their turn for a job slot, run off
the event loop, and stop when the user presses Stop or their client goes away (``in_thread``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading

import gradio as gr

from segmentation.errors import SegmentationError
from segmentation.files import is_disk_full
from segmentation.pipeline import sniff_kind

from . import gradio_compat, views
from .admission import visitor_of
from .checks import check_alpha, check_mode, check_speed, check_upload, class_filter, class_names
from .context import AppContext
from .jobs import FrameRate, PhotoOutcome, VideoOutcome, run_photo, run_video
from .live import LiveSession

log = logging.getLogger(__name__)


# -- errors and cancellation ------------------------------------------------------------
def user_error(exc: BaseException) -> gr.Error:
    """Every failure becomes one sentence for the user; unexpected ones are logged in full."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, SegmentationError):
        return gr.Error(str(exc), print_exception=False)
    if is_disk_full(exc):
        log.error("Disk full while writing a result: %s", exc)
        return gr.Error("The server ran out of disk space while writing the result; nothing was kept. "
                        "Try again later, or with a shorter or smaller file.", print_exception=False)
    log.error("Unexpected error", exc_info=exc)
    return gr.Error("Something went wrong while processing this file; the error was logged on the server. "
                    "Try another file or model.", print_exception=False)


def user_errors(fn):
    """Decorator: whatever goes wrong in ``fn`` reaches the user as one ``gr.Error`` sentence."""
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:  # every failure, logged in full by user_error if unexpected
                raise user_error(exc) from None
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # every failure, logged in full by user_error if unexpected
                raise user_error(exc) from None
    return wrapper


async def in_thread(fn, *args, cancel: threading.Event | None = None, on_done=None):
    """Run a blocking job off the event loop; Stop, a cancelled task or a gone client set ``cancel``.
    ``on_done()`` is called once the thread has finished, whatever happened (after Stop too, when the
    job has really stopped)."""
    event = gradio_compat.current_event()
    event_id = event.event_id if event else None
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "exception not retrieved"
    if on_done is not None:
        fut.add_done_callback(lambda f: on_done())
    try:
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.5)
            if done:
                return fut.result()
            if cancel is not None and gradio_compat.client_gone(event):
                log.info("Client disconnected; cancelling job %s", event_id)
                cancel.set()
    except asyncio.CancelledError:
        if cancel is not None:
            log.info("Job %s cancelled (Stop)", event_id)
            cancel.set()
        raise


# -- handlers --------------------------------------------------------------------------------
def _waiting_shown(progress):
    """A ``waiting(jobs_ahead)`` reporter for the page's progress bar (None without one)."""
    if progress is None:
        return None

    def show(ahead: int) -> None:
        progress((0, None), desc=f"Waiting for a free slot · {ahead} job{'s' if ahead != 1 else ''} ahead",
                 unit="frames")

    return show


class Handlers:
    """The functions the page's events and the API endpoints call, bound to one app context."""

    def __init__(self, context: AppContext):
        self.context = context

    async def _job(self, request, fn, *args, cancel: threading.Event | None = None, waiting=None):
        """One photo/video job for the visitor behind ``request``: admitted (or refused with a sentence),
        run in its turn (``waiting(jobs_ahead)`` while it waits), its slot given back when its thread ends."""
        c = self.context
        ticket = c.admission.admit(visitor_of(request, c.limits.trusted_proxies))
        event = gradio_compat.current_event()
        await c.admission.wait_turn(ticket, gone=lambda: gradio_compat.client_gone(event), report=waiting)
        return await in_thread(fn, *args, cancel=cancel, on_done=ticket.release)

    async def _photo(self, request, source, model_id, mode, alpha, classes, waiting=None) -> PhotoOutcome:
        c = self.context
        return await self._job(request, run_photo, c.segmenters, source, model_id, mode, alpha, classes, c.limits,
                               c.store, waiting=waiting)

    async def _video(self, request, path, model_id, mode, alpha, speed, classes, progress=None, trim=False,
                     temporal=True) -> VideoOutcome:
        c = self.context
        cancel = threading.Event()
        report = None
        if progress is not None:
            def show(done: int, total: int, rate: float) -> None:
                progress((done, total), desc=f"Segmenting · {rate:.1f} frames/s", unit="frames")

            report = FrameRate(show, min_interval=0.2)
        return await self._job(request, run_video, c.segmenters, path, model_id, mode, alpha, speed, classes,
                               c.limits, c.store, report, cancel, trim, bool(temporal), cancel=cancel,
                               waiting=_waiting_shown(progress))

    @user_errors
    async def run(self, upload, webcam_photo, source, model_id, mode, alpha, speed, classes, temporal,
                  request: gr.Request, progress=gr.Progress()):
        """The Run button: a photo or a video (told apart by content), shown side by side."""
        return await self._run(request, upload, webcam_photo, source, model_id, mode, alpha, speed, classes,
                               progress, temporal=temporal)

    @user_errors
    async def run_example(self, upload, model_id, mode, alpha, speed):
        """An example row (computed once for everyone, then served from Gradio's cache; no visitor's
        count); long examples are trimmed."""
        return await self._run(None, upload, None, "upload", model_id, mode, alpha, speed, [], None, trim=True)

    async def _run(self, request, upload, webcam_photo, source, model_id, mode, alpha, speed, classes, progress,
                   trim=False, temporal=True):
        use_webcam = webcam_photo is not None and (source == "webcam" or not upload)
        if use_webcam:
            kind = "image"
        elif upload:
            kind = await asyncio.to_thread(sniff_kind, check_upload(upload, self.context.limits))
        else:
            raise gr.Error("Drop a video or a photo first (or take a webcam photo).", print_exception=False)
        if kind == "image":
            r = await self._photo(request, webcam_photo if use_webcam else upload, model_id, mode, alpha, classes,
                                  waiting=_waiting_shown(progress))
            return (gr.update(value=(r.original, r.display), visible=True),
                    gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                    views.legend_html(r.legend), views.stats_markdown(r.stats), str(r.output))
        if progress is not None:
            progress((0, None), desc="Starting…", unit="frames")
        r = await self._video(request, upload, model_id, mode, alpha, speed, classes, progress, trim, temporal)
        two_players = mode != "side-by-side"
        return (gr.update(value=None, visible=False),
                gr.update(value=str(r.source) if two_players else None, visible=two_players),
                gr.update(value=str(r.output), visible=True),
                views.legend_html(r.legend), views.stats_markdown(r.stats), str(r.output))

    @user_errors
    async def api_segment_image(self, image, model, mode, alpha, classes, request: gr.Request = None):
        """Segment a photo. Returns the result image (PNG; side-by-side is twice as wide), the legend
        (classes present: id, name, colour, share of pixels) and stats."""
        r = await self._photo(request, image, model, mode, alpha, classes)
        return str(r.output), views.legend_json(r.legend), r.stats.to_json()

    @user_errors
    async def api_segment_video(self, video, model, mode, alpha, speed, classes, temporal=True,
                                request: gr.Request = None):
        """Segment a video into an H.264 MP4 at the source's frame rate (audio kept). Returns the video,
        the legend (classes present over all frames) and stats (frames, fps, processing frames/s).
        ``temporal`` (default true) fuses each frame with the flow-warped previous ones (less flicker)."""
        r = await self._video(request, video, model, mode, alpha, speed, classes, temporal=temporal)
        return str(r.output), views.legend_json(r.legend), r.stats.to_json()

    @user_errors
    def live(self, frame, model_id, mode, alpha, speed, classes, temporal, session):
        """One webcam frame in, one segmented frame out (per-session flow propagation)."""
        if frame is None:
            return gr.skip(), gr.skip(), session
        session = session or LiveSession()
        seg = self.context.segmenters.get(model_id)
        out, text = session.process(seg, frame, check_mode(mode), check_alpha(alpha),
                                    class_filter(classes, seg.labels), check_speed(speed), bool(temporal))
        return out, text, session

    @user_errors
    def model_changed(self, model_id):
        return gr.update(choices=class_names(model_id), value=[])
