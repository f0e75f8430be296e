"""The page's components, laid out: what a visitor sees, with no event wired (``app.py`` wires them).

* ``Settings``: the settings column (model, output, opacity, the effects' settings, speed, classes).
* ``FilesTab``: the "Video or photo" tab: drop zone or webcam photo, pick by pointing, Run and
  Stop, the job's message and its results.
* ``LiveTab``: the "Live webcam" tab: the streaming webcam, the segmented picture, its status.
* ``ApiInputs``: the hidden components of the API-only endpoints (``/segment_image``,
  ``/segment_video``, ``/segment_labels``).
* ``examples_table``: the examples, one row each with its thumbnail, title and settings.

Each function creates its components inside the caller's ``gr.Blocks`` context.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from segmentation import DEFAULT_MODEL_ID
from segmentation.draw import MODES
from segmentation.effects import EffectOptions
from segmentation.pipeline import SPEEDS

from . import examples as example_files
from .checks import class_names, model_choices
from .gradio_compat import pass_upload_path, recompute_missing_examples
from .limits import Limits

log = logging.getLogger(__name__)

INTRO = """# Real-time semantic segmentation
Drop a **video** or a **photo** (or use your webcam): every pixel is labelled with a class. Show the classes
over the picture or as a mask, or keep the people and blur, replace or remove the background. Videos keep
their frame rate and audio; *realtime* runs the model on keyframes and follows the motion between them,
*accurate* runs it on every frame."""

# The live webcam's button starts the stream: "Start", not Gradio's "Record" (nothing is recorded).
# Gradio looks a flat key up before its own nested strings, so this one wins over them (English).
I18N = gr.I18n(en={"audio.record": "Start"})

LIVE_HINT = "Press **Start** under the webcam to segment it live."


@dataclass
class Settings:
    """The settings, created unrendered: ``render`` places them in the settings column."""

    model: gr.Dropdown
    mode: gr.Radio
    alpha: gr.Slider
    blur: gr.Slider
    colour: gr.ColorPicker
    background_image: gr.Image
    feather: gr.Slider
    speed: gr.Radio
    temporal: gr.Checkbox
    classes: gr.Dropdown

    @property
    def look(self) -> list:
        """The background effects' settings, in the handlers' order."""
        return [self.blur, self.colour, self.background_image, self.feather]

    def render(self, limits: Limits) -> None:
        for component in (self.model, self.mode, self.alpha, *self.look, self.speed, self.temporal, self.classes):
            component.render()
        gr.Markdown(f"Limits: {limits.max_upload_mb:g} MB per file, videos up to "
                    f"{limits.max_seconds:g} s, {limits.max_frames:,} frames, {limits.max_fps:g} frames/s "
                    f"and {limits.max_pixels:,} pixels per frame; one job running and one waiting "
                    "per visitor.")


def settings() -> Settings:
    effect = EffectOptions()
    return Settings(
        model=gr.Dropdown(model_choices(), value=DEFAULT_MODEL_ID, label="Model", elem_id="model", render=False),
        mode=gr.Radio(list(MODES), value="overlay", label="Output", elem_id="mode", render=False),
        alpha=gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity", elem_id="alpha", render=False),
        blur=gr.Slider(1, 60, value=effect.blur, step=1, label="Blur strength (px)", visible=False,
                       info="Gaussian sigma in the picture's pixels; 15 suits 720p", elem_id="blur", render=False),
        colour=gr.ColorPicker(value=str(effect.background), label="Background colour", visible=False,
                              info="when no background image is given", elem_id="background-colour", render=False),
        background_image=gr.Image(sources=["upload"], type="filepath", label="Background image (optional)",
                                  visible=False, height=160, elem_id="background-image", render=False),
        feather=gr.Slider(0, 20, value=effect.feather, step=0.5, label="Edge feather (px)", visible=False,
                          info="soft edge around the kept classes; 0 = hard edge", elem_id="feather", render=False),
        speed=gr.Radio(list(SPEEDS), value="accurate", label="Speed (video and live)",
                       info="realtime: model on keyframes + optical flow", elem_id="speed", render=False),
        temporal=gr.Checkbox(True, label="Temporal smoothing (video and live)",
                             info="blend each frame with the previous ones along the motion: "
                                  "no flicker; off = every frame on its own", elem_id="temporal", render=False),
        classes=gr.Dropdown(class_names(DEFAULT_MODEL_ID), value=[], multiselect=True,
                            label="Show only these classes", info="empty = all classes",
                            elem_id="classes", render=False),
    )


@dataclass
class FilesTab:
    upload: gr.File
    webcam_photo: gr.Image
    upload_tab: gr.Tab
    webcam_tab: gr.Tab
    source: gr.State  # "upload" or "webcam": the sub-tab shown
    still: gr.Image  # pick by pointing: a still of the input; a click toggles the class under it
    pick_at: gr.Slider
    pick_status: gr.Markdown
    run_btn: gr.Button
    stop_btn: gr.Button
    status: gr.HTML
    slider: gr.ImageSlider
    original_video: gr.Video
    result_video: gr.Video
    legend: gr.HTML
    timeline: gr.LinePlot
    stats: gr.Markdown
    download: gr.File

    @property
    def outputs(self) -> list:
        """A job's results, in the handlers' order (``views.no_result``)."""
        return [self.slider, self.original_video, self.result_video, self.legend, self.timeline, self.stats,
                self.download]


def files_tab() -> FilesTab:
    """The "Video or photo" tab's content, up to its results (the examples go under them)."""
    source = gr.State("upload")
    with gr.Tabs():
        with gr.Tab("Upload", id="upload") as upload_tab:
            upload = pass_upload_path(gr.File(label="Drop a video or a photo", file_types=["video", "image"],
                                              elem_id="upload"))
        with gr.Tab("Webcam photo", id="webcam") as webcam_tab:
            webcam_photo = gr.Image(sources=["webcam"], type="numpy", label="Webcam photo", elem_id="webcam-photo")
    still = gr.Image(type="numpy", label="Pick classes: click on the picture", interactive=False, visible=False,
                     height=260, buttons=[], elem_id="pick-still")
    pick_at = gr.Slider(0, 1, value=0, step=0.1, label="Frame to pick from (s)", visible=False, elem_id="pick-at")
    pick_status = gr.Markdown("", elem_id="pick-status")
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", scale=4, elem_id="run")
        # enabled only while a job of this page runs
        stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop", interactive=False)
    # the page's message: a failure in plain words, or "Stopped"; until the next action
    status = gr.HTML("", elem_id="job-status")
    # no download button of its own: it would save the picture shown (checkerboard included) as
    # image.png; the downloads below hold the result file itself
    slider = gr.ImageSlider(label="Original | segmented", type="numpy", format="png", buttons=["fullscreen"],
                            elem_id="result-photo")
    with gr.Row():
        original_video = gr.Video(label="Original", visible=False, elem_id="original-video")
        result_video = gr.Video(label="Segmented", visible=False, elem_id="result-video")
    legend = gr.HTML(label="Classes present", elem_id="legend")
    timeline = gr.LinePlot(x="time", y="share", color="class", x_title="time (s)", y_title="share of the frame (%)",
                           colors_in_legend=[],  # the HTML legend is the chart's
                           label="Classes over time (colours as in the legend)", visible=False, elem_id="timeline")
    stats = gr.Markdown(elem_id="stats")
    download = gr.File(label="Download: the result, and its labels (.zip: an 8-bit PNG of class ids per frame + "
                             "labels.json; .json: COCO)", file_count="multiple", interactive=False, visible=False,
                       elem_id="download")
    return FilesTab(upload, webcam_photo, upload_tab, webcam_tab, source, still, pick_at, pick_status, run_btn,
                    stop_btn, status, slider, original_video, result_video, legend, timeline, stats, download)


@dataclass
class LiveTab:
    cam: gr.Image
    output: gr.HTML
    stats: gr.Markdown
    session: gr.State
    timer: gr.Timer  # on while frames come (Handlers.live_idle)


def live_tab() -> LiveTab:
    """The "Live webcam" tab's content: the webcam (its button starts and stops the stream), the
    segmented picture beside it (below it on a phone) and the status line."""
    with gr.Row(elem_id="live-row"):
        cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-input")
        output = gr.HTML(label="Segmented live", elem_id="live-output")  # an inline JPEG per frame
    stats = gr.Markdown(LIVE_HINT, elem_id="live-stats")
    return LiveTab(cam, output, stats, gr.State(None), gr.Timer(0.5, active=False))


@dataclass
class ApiInputs:
    """The API-only endpoints' components, in a hidden column. The effect settings are trailing
    inputs with defaults: a client sending only the earlier ones still works."""

    file: gr.File
    model: gr.Textbox
    mode: gr.Textbox
    alpha: gr.Number
    speed: gr.Textbox
    classes: gr.JSON  # list of class names (or one comma-separated string)
    temporal: gr.Checkbox
    look: list  # blur, background (a colour), background_image, feather
    image: gr.Image
    video: gr.Video
    result: gr.File
    labels: gr.File
    legend: gr.JSON
    stats: gr.JSON
    image_btn: gr.Button
    video_btn: gr.Button
    labels_btn: gr.Button


def api_inputs() -> ApiInputs:
    effect = EffectOptions()
    with gr.Column(visible=False):
        return ApiInputs(
            file=pass_upload_path(gr.File(label="file")), model=gr.Textbox(DEFAULT_MODEL_ID, label="model"),
            mode=gr.Textbox("overlay", label="mode"), alpha=gr.Number(0.5, label="alpha"),
            speed=gr.Textbox("accurate", label="speed"), classes=gr.JSON([], label="classes"),
            temporal=gr.Checkbox(True, label="temporal"),
            look=[gr.Number(effect.blur, label="blur"), gr.Textbox(str(effect.background), label="background"),
                  pass_upload_path(gr.File(label="background_image", file_types=["image"])),
                  gr.Number(effect.feather, label="feather")],
            image=gr.Image(type="filepath", format="png", label="result image"),
            video=gr.Video(label="result video"), result=gr.File(label="result"),
            labels=gr.File(label="labels (.zip, COCO .json)", file_count="multiple"),
            legend=gr.JSON(label="legend"), stats=gr.JSON(label="stats"),
            image_btn=gr.Button("segment_image"), video_btn=gr.Button("segment_video"),
            labels_btn=gr.Button("segment_labels"))


def examples_table(examples: list[tuple[example_files.ExampleFile, Path]], upload, settings: Settings,
                   outputs: list, fn) -> gr.helpers.Examples:
    """The examples: one row each with its thumbnail, title and the settings it sets (model, output,
    speed); choosing one sets them and shows its (cached) result (``fn``), and the line under the
    table says what it set, so that nothing changes out of sight (on a phone the settings are far
    below)."""
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
    s = settings
    inputs = [poster, title, sets, upload, s.model, s.mode, s.alpha, s.speed, s.classes]
    table = gr.Examples(rows, inputs, outputs, fn=fn, cache_examples=True, cache_mode="lazy",
                        label="Examples (each sets the model, output and speed that suit it)",
                        visible_columns=[0, 1, 2], examples_per_page=len(rows), elem_id="examples")
    recompute_missing_examples(table)  # after a restart, its cached result files are gone
    note = gr.Markdown("", elem_id="example-settings")
    lines = [ex.settings_line() for ex, _ in examples]
    table.dataset.click(lambda chosen: f"**Example settings:** {lines[chosen[0]]} (see *Settings*; "
                                       "change them and press Run to try others)",
                        table.dataset, note, queue=False, show_progress="hidden", api_visibility="private")
    return table
