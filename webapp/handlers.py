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
import time

import gradio as gr

from segmentation.draw import EFFECT_MODES, Mode
from segmentation.errors import SegmentationError
from segmentation.files import is_disk_full
from segmentation.matte import LANDSCAPE_ID
from segmentation.pipeline import sniff_kind

from . import gradio_compat, views
from .admission import visitor_of
from .checks import (check_alpha, check_mode, check_model_id, check_speed, check_upload, class_filter,
                     class_names, effect_options)
from .context import AppContext
from .photo_job import run_photo
from .request import Upload, VideoRequest
from .results import PhotoOutcome, VideoOutcome
from .video_job import run_video
from .watch import FrameRate
from .live import LiveSession, slowed
from .pick import Picker, message, still_of, toggle, video_duration

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
OPACITY_MODES = frozenset({Mode.OVERLAY.value, Mode.SIDE_BY_SIDE.value})  # where the opacity slider applies
CLASSES_LABEL = {False: ("Show only these classes", "empty = all classes"),
                 True: ("Foreground: keep these classes", "empty = person; everything else is blurred, "
                                                           "replaced or removed")}


def _effect_of(mode, blur, colour, image, feather, limits):
    """The background effect's settings for ``mode`` (None for overlay, mask, side-by-side); built in
    the job's thread, as it may read the background image."""
    return effect_options(blur, colour, image, feather, limits) if mode in EFFECT_MODES else None


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
        self.picker = Picker(context.segmenters.get)

    async def _job(self, request, fn, *args, cancel: threading.Event | None = None, waiting=None):
        """One photo/video job for the visitor behind ``request``: admitted (or refused with a sentence),
        run in its turn (``waiting(jobs_ahead)`` while it waits), its slot given back when its thread ends."""
        c = self.context
        ticket = c.admission.admit(visitor_of(request, c.limits.trusted_proxies))
        event = gradio_compat.current_event()
        await c.admission.wait_turn(ticket, gone=lambda: gradio_compat.client_gone(event), report=waiting)
        return await in_thread(fn, *args, cancel=cancel, on_done=ticket.release)

    async def _photo(self, request, source, model_id, mode, alpha, classes, effect=(None,) * 4, labels=False,
                     waiting=None) -> PhotoOutcome:
        """``effect``: (blur, colour, background image, feather) as the page or the API sent them."""
        c = self.context

        def job() -> PhotoOutcome:
            return run_photo(c.segmenters, source, model_id, mode, alpha, classes, c.limits, c.store,
                             effect=_effect_of(mode, *effect, c.limits), labels=labels)

        return await self._job(request, job, waiting=waiting)

    async def _video(self, request, upload, model_id, mode, alpha, speed, classes, progress=None, trim=False,
                     temporal=True, effect=(None,) * 4, labels=False, previews=False) -> VideoOutcome:
        """``upload``: the file as sent, or an ``Upload`` already checked; the job parses it into a
        ``VideoRequest`` (every value checked, the video probed) once, in its own thread."""
        c = self.context
        cancel = threading.Event()
        report = None
        if progress is not None:
            def show(done: int, total: int, rate: float) -> None:
                progress((done, total), desc=f"Segmenting · {rate:.1f} frames/s", unit="frames")

            report = FrameRate(show, min_interval=0.2)

        def job() -> VideoOutcome:
            asked = VideoRequest.parse(upload, c.limits, model_id, mode, alpha, speed, classes, temporal=temporal,
                                       effect=_effect_of(mode, *effect, c.limits), trim=trim, labels=labels,
                                       previews=previews)
            return run_video(c.segmenters, asked, c.limits, c.store, report, cancel)

        return await self._job(request, job, cancel=cancel, waiting=_waiting_shown(progress))

    @staticmethod
    def stopped():
        """Stop pressed (Gradio cancels the job): say so; Stop is disabled until the next Run. The photo
        slider, which carried the progress, goes too (Gradio marks a cancelled job's outputs with a bare
        "Error" badge)."""
        return (views.status_html("Stopped. Nothing was kept; press Run to start again.", kind="stopped"),
                gr.update(interactive=False), gr.update(value=None, visible=False))

    async def run(self, upload, webcam_photo, source, model_id, mode, alpha, speed, classes, temporal,
                  blur=None, colour=None, background_image=None, feather=None, request: gr.Request = None,
                  progress=gr.Progress()):
        """The Run button: a photo or a video (told apart by content), shown beside the original, with
        its legend, timeline (video), stats and downloads: the result and its labels (.zip, COCO .json);
        then the page's message and the Stop button's state.

        First the previous result and message go (a new job never shows an old one's legend, chart or
        downloads; the chart, hidden, is drawn afresh), the (empty) photo slider carries the progress
        and Stop is enabled for this job. A failure is not raised (a toast that goes away, a bare
        "Error" badge) but shown on the page in plain words, the result area empty, until the next
        action."""
        yield (*views.no_result(), views.status_html(), gr.update(interactive=True))
        try:
            result = await self._run(request, upload, webcam_photo, source, model_id, mode, alpha, speed, classes,
                                     progress, temporal=temporal, effect=(blur, colour, background_image, feather))
        except Exception as exc:  # every failure, logged in full by user_error if unexpected
            yield (*views.no_result(), views.error_html(user_error(exc).message), gr.update(interactive=False))
            return
        yield (*result, views.status_html(), gr.update(interactive=False))

    @user_errors
    async def run_example(self, poster, title, sets, upload, model_id, mode, alpha, speed, classes=None):
        """An example row (computed once for everyone, then served from Gradio's cache; no visitor's
        count); long examples are trimmed."""
        return await self._run(None, upload, None, "upload", model_id, mode, alpha, speed, [], None, trim=True)

    async def _run(self, request, upload, webcam_photo, source, model_id, mode, alpha, speed, classes, progress,
                   trim=False, temporal=True, effect=(None,) * 4):
        use_webcam = webcam_photo is not None and (source == "webcam" or not upload)
        if use_webcam:
            checked = None
        elif upload:
            checked = await asyncio.to_thread(Upload.check, upload, self.context.limits)  # sniffed once, here
        else:
            raise gr.Error("Drop a video or a photo first (or take a webcam photo).", print_exception=False)
        if checked is None or checked.kind == "image":
            r = await self._photo(request, webcam_photo if use_webcam else checked, model_id, mode, alpha, classes,
                                  effect, labels=True, waiting=_waiting_shown(progress))
            return (gr.update(value=(r.original, views.on_checkerboard(r.display)), visible=True),
                    gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                    views.legend_html(r.legend), gr.update(value=None, visible=False),
                    views.stats_markdown(r.stats), gr.update(value=[str(p) for p in r.downloads], visible=True))
        if progress is not None:
            progress((0, None), desc="Starting…", unit="frames")
        r = await self._video(request, checked, model_id, mode, alpha, speed, classes, progress, trim, temporal,
                              effect, labels=True, previews=True)
        two_players = mode != "side-by-side"
        return (gr.update(value=None, visible=False),
                gr.update(value=str(r.shown_source) if two_players else None, visible=two_players),
                gr.update(value=str(r.shown_output), visible=True),
                views.legend_html(r.legend), gr.update(**views.timeline_plot(r.timeline, r.legend)),
                views.stats_markdown(r.stats), gr.update(value=[str(p) for p in r.downloads], visible=True))

    @user_errors
    async def api_segment_image(self, image, model, mode, alpha, classes, blur=None, background=None,
                                background_image=None, feather=None, request: gr.Request = None):
        """Segment a photo. Returns the result image (PNG; side-by-side is twice as wide; RGBA for
        remove-background), the legend (classes present: id, name, colour, share of pixels) and stats.
        The background effects keep ``classes`` (default person) and take ``blur`` (px),
        ``background`` (a colour) or ``background_image`` (a photo), and ``feather`` (px)."""
        r = await self._photo(request, image, model, mode, alpha, classes, (blur, background, background_image,
                                                                             feather))
        return str(r.output), views.legend_json(r.legend), r.stats.to_json()

    @user_errors
    async def api_segment_video(self, video, model, mode, alpha, speed, classes, temporal=True, blur=None,
                                background=None, background_image=None, feather=None, request: gr.Request = None):
        """Segment a video into an H.264 MP4 (remove-background: a VP9 WebM with alpha) at the source's
        frame rate (audio kept). Returns the video, the legend (classes present over all frames) and
        stats (frames, fps, processing frames/s). ``temporal`` (default true) fuses each frame with the
        flow-warped previous ones (less flicker); the effect settings are those of ``segment_image``."""
        r = await self._video(request, video, model, mode, alpha, speed, classes, temporal=temporal,
                              effect=(blur, background, background_image, feather))
        return str(r.output), views.legend_json(r.legend), r.stats.to_json()

    @user_errors
    async def api_segment_labels(self, file, model, mode, alpha, speed, classes, temporal=True, blur=None,
                                 background=None, background_image=None, feather=None, request: gr.Request = None):
        """Segment a photo or a video (told apart by content) as the page's Run does, with its labels:
        the class maps as a ``.zip`` (an 8-bit PNG of class ids per frame and ``labels.json``) and as
        COCO ``.json``. Returns the result file, the two label files, the legend and stats; the other
        settings are those of ``segment_image`` and ``segment_video``."""
        effect = (blur, background, background_image, feather)
        checked = await asyncio.to_thread(Upload.check, file, self.context.limits)  # sniffed once, here
        if checked.kind == "image":
            r = await self._photo(request, checked, model, mode, alpha, classes, effect, labels=True)
        else:
            r = await self._video(request, checked, model, mode, alpha, speed, classes, temporal=temporal,
                                  effect=effect, labels=True)
        return str(r.output), [str(p) for p in r.labels], views.legend_json(r.legend), r.stats.to_json()

    @user_errors
    def live(self, frame, model_id, mode, alpha, speed, classes, temporal, blur=None, colour=None,
             background_image=None, feather=None, session=None, speed_chosen=False):
        """One webcam frame in, one segmented frame out (per-session flow propagation). Until the
        user picks a speed themselves (``speed_chosen``), the session adapts how it keeps up."""
        if frame is None:
            return gr.skip(), gr.skip(), session, gr.skip()
        session = session or LiveSession()
        seg = slowed(self.context.segmenters.get(model_id))
        effect = session.effect_options((mode, blur, colour, background_image, feather),
                                        lambda: _effect_of(mode, blur, colour, background_image, feather,
                                                           self.context.limits))
        mode = check_mode(mode)
        people = slowed(self.context.segmenters.get(LANDSCAPE_ID)) if mode in EFFECT_MODES else None
        out, text = session.process(seg, frame, mode, check_alpha(alpha), class_filter(classes, seg.labels),
                                    check_speed(speed), bool(temporal), effect, people, adapt=not speed_chosen)
        session.seen_at = time.monotonic()  # for live_idle
        timer = gr.skip() if session.timer_on else gr.update(active=True)
        session.timer_on = True
        return (views.live_image_html(out), text if session.status_due() else gr.skip(), session, timer)

    LIVE_IDLE_SECONDS = 1.5  # no frame for this long: the stream was stopped (or the camera went away)

    def live_idle(self, session):
        """The live tab's timer, ticking while frames come: once they stop (the webcam's stop button,
        the time limit, the camera gone), the status says so instead of a "Live ·" line that no
        longer changes, and the timer stops."""
        seen = getattr(session, "seen_at", None)
        if seen is None or time.monotonic() - seen < self.LIVE_IDLE_SECONDS:
            return gr.skip(), gr.skip()
        session.timer_on = False
        return (f"Stopped · {session.frames} frames segmented ({session.keyframes} model runs). "
                "Start the webcam again to go on.", gr.update(active=False))

    # -- pick by pointing (webapp.pick) --------------------------------------------------------
    PICK_HINT = "Click on the picture to add the class under the pointer; click it again to remove it."

    def pick_source(self, upload):
        """A new file: its still to point at (a photo, or a video's first frame, with a slider for
        the frame's time), or nothing. A file that cannot be read shows no still and no message
        here: Run says what is wrong with it, under the Run button."""
        hidden = gr.update(value=None, visible=False)
        if not upload:
            return hidden, gr.update(value=0, visible=False), ""
        try:
            return self._pick_source(upload)
        except Exception as exc:  # the file's own fault, or ours: logged, and Run tells the user
            if not isinstance(exc, (gr.Error, SegmentationError)):
                log.warning("No still to pick from for %s: %s", upload, exc)
            return hidden, gr.update(value=0, visible=False), ""

    def _pick_source(self, upload):
        limits = self.context.limits
        path = check_upload(upload, limits)
        if sniff_kind(path) == "image":
            still = still_of(path, max_pixels=limits.max_pixels)
            return gr.update(value=still, visible=True), gr.update(value=0, visible=False), self.PICK_HINT
        duration = video_duration(path)
        still = still_of(path, 0.0, max_frames=limits.max_frames)
        return (gr.update(value=still, visible=True),
                gr.update(value=0, maximum=max(0.1, round(duration, 1)), visible=duration > 0), self.PICK_HINT)

    @user_errors
    def pick_frame(self, upload, at):
        """The video's frame at ``at`` seconds, to point at."""
        if not upload:
            return gr.skip()
        limits = self.context.limits
        return still_of(check_upload(upload, limits), float(at or 0), max_frames=limits.max_frames)

    @staticmethod
    def pick_webcam(photo):
        if photo is None:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.update(value=photo, visible=True), gr.update(value=0, visible=False), Handlers.PICK_HINT

    @user_errors
    def pick(self, still, model_id, mode, classes, evt: gr.SelectData):
        """A click on the still: the class under the pointer goes into the class filter (or the
        foreground of an effect), or out of it when it was there; the status says which."""
        if still is None or evt is None or evt.index is None:
            return gr.skip(), gr.skip()
        x, y = (int(v) for v in evt.index[:2])
        name = self.picker.pick(still, x, y, check_model_id(model_id).id)
        names, added = toggle(classes, name)
        return gr.update(value=names), message(name, added, str(mode))

    @user_errors
    def model_changed(self, model_id):
        return gr.update(choices=class_names(model_id), value=[])

    @staticmethod
    def mode_changed(mode):
        """The settings that apply to ``mode``: opacity (overlay, side-by-side), blur strength (blur),
        background colour and image (replace), feather (every effect); the class filter says what it is."""
        effect = mode in EFFECT_MODES
        label, info = CLASSES_LABEL[effect]
        replace = mode == Mode.REPLACE_BACKGROUND.value
        return (gr.update(visible=mode in OPACITY_MODES), gr.update(visible=mode == Mode.BLUR_BACKGROUND.value),
                gr.update(visible=replace), gr.update(visible=replace), gr.update(visible=effect),
                gr.update(label=label, info=info))
