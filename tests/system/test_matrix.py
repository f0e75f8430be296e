"""Bad and odd inputs, each through the CLI and through the running app's API.

Every input is generated here (PyAV, Pillow, numpy: small sizes, few frames)
and goes through ``python3 -m segmentation IN -o OUT`` and through
gradio_client against one ``python3 app.py`` started for the module. Each must
give a correct result (frame count, timing/fps, size and orientation read back
from the output file) or one clear error sentence (its words are asserted).

A user picks the endpoint (and the CLI's output name) from the file's name: a
video goes to /segment_video, a photo to /segment_image. Then the file is also
sent to the other endpoint, which must refuse it clearly, or, for a file whose
name lies about its content, do the job. The CLI is given an output of the kind
the input's name suggests; when the content says otherwise, it must say so and
then succeed with the right kind.

Afterwards the server still serves, and neither the app nor the CLI has left a
temporary file anywhere: both run with TMPDIR (and the app's Gradio cache)
inside the test's folders, which are checked file by file.

Models are not under test here: the fastest catalog model runs with overlay
opacity 0, so each output pixel is the input's (orientation is read from a red
marker). The outcome of every case is written to artifacts/matrix.md
(docs/limits-and-faults.md's table is its reviewed copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from app_server import (IMAGE, VIDEO, api_error, job_dirs, result_file, running_app, stop_app, store_dir, submit,
                        temp_leftovers)
from media import (RED, assert_same_timing, audio_only, close_to, corner_image, damage, decoded_frames, make_clip,
                   picture, run_cli, stream_facts, video_times)
from PIL import Image

MODEL = "deeplabv3-pascal-dm05"  # the fastest catalog model: the inputs are under test, not the model
CLI_IMAGE_MAX = (6324, 6324)  # a 10000x10000 photo under the library's 40 MP (SEGMENTATION_MAX_IMAGE_PIXELS)
APP_IMAGE_MAX = (2880, 2880)  # ... and under the app's default SEGMENTATION_MAX_PIXELS (3840*2160)
TIMEOUT = 180
ROOT = Path(__file__).resolve().parents[2]


# -- what each case must give ----------------------------------------------------------------------
@dataclass(frozen=True)
class Video:
    """A correct video result."""

    frames: int | tuple[int, int]  # exact, or (lo, hi) for damaged input
    size: tuple[int, int]  # as displayed (w, h); the H.264 file is padded to even sides
    rate: Fraction | None = Fraction(25)  # the output's average frame rate (None: variable)
    same_timing: bool = True  # every frame at its source time, same duration
    marker: tuple[slice, slice] | None = None  # where the source's top-left red marker must show
    audio: str | None = None


@dataclass(frozen=True)
class Photo:
    """A correct photo result: the output's size through the CLI and through the app."""

    cli_size: tuple[int, int]
    api_size: tuple[int, int]
    red: tuple[int, int] | None = None  # (y, x) that must be red: the picture is upright
    downscaled: bool = False


@dataclass(frozen=True)
class Refused:
    """One clear sentence, for the CLI and each endpoint."""

    cli: str
    video: str
    image: str


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    make: Callable[[Path, Path], object]  # (path, work folder)
    want: Video | Photo | Refused

    @property
    def sent_to(self) -> str:
        """Where a user sends it, going by the name."""
        return IMAGE if Path(self.file).suffix in (".png", ".jpg") else VIDEO


def _text(p: Path, _):
    p.write_text("This is a shopping list, not a film.\nmilk\neggs\n" * 20)


def _damaged(how: str):
    def make(p: Path, work: Path):
        whole = make_clip(work / f"whole-{how}.mp4", size=(160, 120), frames=60, audio="aac", audio_rate=44100)
        damage(whole, p, how)
    return make


def _gif(p: Path, _):
    frames = [Image.fromarray(picture(i, 48, 32)) for i in range(6)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _photo(size, mode: str | None = None, **save):
    def make(p: Path, _):
        rgb = picture(0, *size)
        img = {None: lambda: Image.fromarray(rgb),
               "L": lambda: Image.fromarray(rgb[..., 1], "L"),
               "RGBA": lambda: Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA"),
               "I;16": lambda: Image.fromarray(rgb[..., 1].astype(np.uint16) * 257),
               "CMYK": lambda: Image.fromarray(rgb).convert("CMYK")}[mode]()
        img.save(p, **save)
        with Image.open(p) as check:
            assert mode is None or check.mode == mode, check.mode
    return make


def _exif_rotated(p: Path, _):
    exif = Image.Exif()
    exif[0x0112] = 6  # display turned 90 degrees clockwise: 40x20 stored, 20x40 shown, top-left -> top-right
    corner_image(40, 20).save(p, exif=exif, quality=95)


def _huge(p: Path, _):
    Image.new("RGB", (10000, 10000), (90, 120, 200)).save(p, compress_level=1)


VIDEO_NOT_PHOTO = "is a video, not a photo: use the video endpoint (segment_video)"
NEITHER = "is neither a photo nor a video that can be read"
VFR_PTS = [0, 40, 80, 90, 100, 200, 250, 330, 333, 400, 520, 540, 600, 700, 710, 760, 900, 950, 1000, 1033]

CASES = [
    Case("zero-byte file", "empty.mp4", lambda p, _: p.write_bytes(b""),
         Refused("empty.mp4 is empty (0 bytes)", "empty.mp4 is empty (0 bytes)", "empty.mp4 is empty (0 bytes)")),
    Case("text renamed .mp4", "notes.mp4", _text,
         Refused("notes.mp4 is not a video file FFmpeg can read", "notes.mp4 is not a video file FFmpeg can read",
                 f"notes.mp4 {NEITHER}")),
    Case("mp4 truncated at 50%", "truncated.mp4", _damaged("truncated"),
         Video(frames=(1, 59), size=(160, 120), same_timing=False)),
    Case("mp4 with corrupted bytes in the middle", "corrupted.mp4", _damaged("corrupted"),
         Video(frames=(1, 60), size=(160, 120), rate=None, same_timing=False)),  # lost frames leave a gap
    Case("audio-only file", "tone.m4a", lambda p, _: audio_only(p),
         Refused("tone.m4a is an audio-only file", "tone.m4a is an audio-only file", f"tone.m4a {NEITHER}")),
    Case("one-frame video", "one-frame.mp4", lambda p, _: make_clip(p, frames=1), Video(frames=1, size=(64, 48))),
    Case("16x16 video", "tiny.mp4", lambda p, _: make_clip(p, size=(16, 16), frames=10),
         Video(frames=10, size=(16, 16))),
    Case("3840x2160 video, 3 frames", "uhd.mp4", lambda p, _: make_clip(p, size=(3840, 2160), frames=3),
         Video(frames=3, size=(3840, 2160))),
    Case("odd width/height (65x49)", "odd.mp4", lambda p, _: make_clip(p, size=(65, 49), frames=12),
         Video(frames=12, size=(65, 49))),
    # Coded 64x48 with the marker top-left; shown turned 90 degrees counter-clockwise (48x64),
    # the marker lands bottom-left, as FFmpeg's autorotate shows it (see test_video).
    Case("rotation metadata 90 degrees", "rotated.mp4", lambda p, _: make_clip(p, rotation=90, frames=10, marker=True),
         Video(frames=10, size=(48, 64), marker=(slice(64 - 16, 64), slice(0, 12)))),
    Case("variable frame rate", "vfr.mp4",
         lambda p, _: make_clip(p, pts=[t * 90 for t in VFR_PTS], time_base=Fraction(1, 90000), rate=Fraction(20)),
         Video(frames=20, size=(64, 48), rate=None)),
    Case("30000/1001 fps", "ntsc.mp4",
         lambda p, _: make_clip(p, pts=[i * 1001 for i in range(36)], time_base=Fraction(1, 30000),
                                rate=Fraction(30000, 1001)),
         Video(frames=36, size=(64, 48), rate=Fraction(30000, 1001))),
    Case("WebM (VP9 + Opus)", "clip.webm",
         lambda p, _: make_clip(p, frames=20, codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"},
                                audio="libopus"),
         Video(frames=20, size=(64, 48), audio="aac")),
    Case("MKV (H.264)", "clip.mkv", lambda p, _: make_clip(p, frames=20), Video(frames=20, size=(64, 48))),
    Case("MOV (H.264 + AAC)", "clip.mov", lambda p, _: make_clip(p, frames=20, audio="aac", audio_rate=44100),
         Video(frames=20, size=(64, 48), audio="aac")),
    Case("animated GIF", "animated.gif", _gif, Video(frames=6, size=(48, 32), rate=Fraction(10))),
    Case("grayscale PNG", "gray.png", _photo((40, 30), "L"), Photo((40, 30), (40, 30))),
    Case("RGBA PNG", "rgba.png", _photo((42, 28), "RGBA"), Photo((42, 28), (42, 28))),
    Case("16-bit PNG", "16bit.png", _photo((38, 26), "I;16"), Photo((38, 26), (38, 26))),
    Case("CMYK JPEG", "cmyk.jpg", _photo((44, 30), "CMYK", quality=95), Photo((44, 30), (44, 30))),
    Case("EXIF-rotated JPEG (orientation 6)", "exif-rotated.jpg", _exif_rotated,
         Photo((20, 40), (20, 40), red=(1, 18))),
    Case("1x1 image", "1x1.png", _photo((1, 1)), Photo((1, 1), (1, 1))),
    Case("10000x10000 image", "10000x10000.png", _huge, Photo(CLI_IMAGE_MAX, APP_IMAGE_MAX, downscaled=True)),
    Case("video with a .jpg extension (H.264 MKV)", "video.jpg",
         lambda p, _: make_clip(p, frames=20, fmt="matroska"), Video(frames=20, size=(64, 48))),
    Case("image with a .mp4 extension (JPEG)", "photo.mp4", _photo((36, 24), format="JPEG"),
         Photo((36, 24), (36, 24))),
]
IDS = [c.id for c in CASES]

OUTCOMES: dict[str, dict[str, str]] = {c.id: {} for c in CASES}  # for artifacts/matrix.md
API_RESULTS: list[Path] = []  # one job folder in the app's store per successful API call


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("matrix-inputs")
    work = d / "work"
    work.mkdir()
    paths = {}
    for c in CASES:
        paths[c.id] = d / c.file
        c.make(paths[c.id], work)
    return paths


@pytest.fixture(scope="module")
def app(shared_models, tmp_path_factory, artifacts):
    try:
        with running_app(tmp_path_factory.mktemp("matrix-app")) as app:
            yield app
    finally:
        _write_table(artifacts / "matrix.md")


def _write_table(path: Path) -> None:
    rows = ["| input | CLI | app API | outcome / message |", "|---|---|---|---|"]
    for c in CASES:
        o = OUTCOMES[c.id]
        rows.append(f"| {c.id} (`{c.file}`) | {o.get('cli', 'not run')} | {o.get('api', 'not run')} "
                    f"| {o.get('message', '')} |")
    path.write_text("\n".join(rows) + "\n")


# -- checking outputs --------------------------------------------------------------------------------
def _even(size: tuple[int, int]) -> tuple[int, int]:
    return size[0] + size[0] % 2, size[1] + size[1] % 2


def check_video(out: Path, src: Path, want: Video) -> int:
    """Assert ``out`` is the right video for ``src``; return its frame count."""
    facts = stream_facts(out)
    assert facts["codec"] == "h264", facts
    times = np.array(video_times(out))
    n = len(times)
    lo, hi = want.frames if isinstance(want.frames, tuple) else (want.frames, want.frames)
    assert lo <= n <= hi, f"{n} frames, expected {want.frames}"
    assert facts["size"] == _even(want.size), facts
    if want.rate is not None:
        assert facts["rate"] == want.rate, facts
    if want.same_timing:
        assert_same_timing(src, out)
    else:  # damaged: the frames that could be decoded, each at its own 1/25 s slot
        slots = times * 25
        assert np.all(np.diff(times) > 0) and np.allclose(slots, np.round(slots), atol=0.05), times
    if want.marker is not None:
        img = decoded_frames(out, 1)[0].to_ndarray(format="rgb24").astype(int)
        red = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)
        assert red[want.marker].mean() > 0.8, "the picture is not turned upright"
        assert red.sum() < 1.3 * 16 * 12, "red outside the marker's corner"
    if want.audio is not None:
        assert facts["audio"] == want.audio, facts
    return n


def check_photo(out: Path, size: tuple[int, int], want: Photo) -> None:
    with Image.open(out) as im:
        assert im.size == size, (im.size, size)
        rgb = np.asarray(im.convert("RGB"))
    if want.red is not None:
        y, x = want.red
        assert close_to(rgb[y, x], RED, tol=40), f"not upright: {rgb[y, x]} at {want.red}"
        assert not close_to(rgb[y, -1 - x], RED, tol=40) and not close_to(rgb[-1 - y, x], RED, tol=40)


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- the CLI -----------------------------------------------------------------------------------------
def _cli(src: Path, out: Path, tmp: Path):
    """Run the CLI with its own empty TMPDIR; afterwards TMPDIR is empty again and OUT's folder holds
    nothing but OUT."""
    tmp.mkdir()
    r = run_cli(str(src), "-o", str(out), "--model", MODEL, "--alpha", "0", timeout=TIMEOUT,
                env={"TMPDIR": str(tmp)})
    assert sorted(p.name for p in tmp.iterdir()) == [], "the CLI left temporary files"
    assert sorted(p.name for p in out.parent.iterdir()) == ([out.name] if r.returncode == 0 else []), \
        "the CLI left something beside OUT (or OUT after a failure)"
    return r


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli(case: Case, inputs, tmp_path, shared_models):
    src = inputs[case.id]
    want = case.want
    named_video = case.sent_to == VIDEO
    out = tmp_path / "out" / ("result.mp4" if named_video else "result.png")
    out.parent.mkdir()
    r = _cli(src, out, tmp_path / "tmp1")
    if isinstance(want, Refused):
        assert r.returncode == 2, (r.returncode, r.stderr)
        line = _one_error_line(r.stderr)
        assert want.cli in line, line
        OUTCOMES[case.id]["cli"] = f"refused, exit 2: `{line}`"
        return
    note = ""
    if isinstance(want, Video) != named_video:  # the name lies: the CLI says what to do
        assert r.returncode == 2, (r.returncode, r.stderr)
        line = _one_error_line(r.stderr)
        kind = "a video: the output must be an .mp4 or .webm file" if isinstance(want, Video) else \
            "an image: the output must be .png, .jpg, .bmp or .webp"
        assert f"{case.file} is {kind}" in line, line
        note = f"`-o {out.name}` refused: `{line}`; then "
        out = out.with_suffix(".mp4" if isinstance(want, Video) else ".png")
        r = _cli(src, out, tmp_path / "tmp2")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    if isinstance(want, Video):
        n = check_video(out, src, want)
        assert f"{case.file}: {n} frames" in r.stderr, r.stderr
        OUTCOMES[case.id]["cli"] = note + f"OK: {n} frames {'x'.join(map(str, want.size))}"
    else:
        check_photo(out, want.cli_size, want)
        if want.downscaled:
            assert "downscaled from 10000x10000" in r.stderr, r.stderr
        OUTCOMES[case.id]["cli"] = note + f"OK: {'x'.join(map(str, want.cli_size))}" + \
            (" (downscaled, said on stderr)" if want.downscaled else "")


# -- the app's API -------------------------------------------------------------------------------------
def _call(client, endpoint: str, src: Path):
    """(outputs, None) or (None, error sentence) of one API call."""
    job = submit(client, endpoint, src, MODEL, alpha=0.0)
    try:
        return job.result(timeout=TIMEOUT), None
    except Exception:
        msg = api_error(job)
        assert "Traceback" not in msg and "\n" not in msg.strip(), msg
        return None, msg


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api(case: Case, inputs, app):
    srv, tmp, client = app
    src = inputs[case.id]
    want = case.want
    endpoints = [case.sent_to, IMAGE if case.sent_to == VIDEO else VIDEO]  # as a user would, then the other
    seen = []
    for endpoint in endpoints:
        out, err = _call(client, endpoint, src)
        if isinstance(want, Refused):
            expected = want.video if endpoint == VIDEO else want.image
            assert err is not None and expected in err, (endpoint, err)
            seen.append(f"{endpoint}: refused (`{err}`)")
            OUTCOMES[case.id]["message"] = "clear error"
            continue
        fits = (endpoint == VIDEO) == isinstance(want, Video)
        if not fits:
            expected = VIDEO_NOT_PHOTO if endpoint == IMAGE else \
                "is a photo, not a video: use the photo endpoint (segment_image)"
            assert err is not None and f"{case.file} {expected}" in err, (endpoint, err)
            seen.append(f"{endpoint}: refused (`{err}`)")
            continue
        assert err is None, (endpoint, err)
        result, legend, stats = out
        path = result_file(result)
        API_RESULTS.append(path)
        if isinstance(want, Video):
            n = check_video(path, src, want)
            assert stats["frames"] == n and (stats["width"], stats["height"]) == want.size, stats
            if want.rate is not None:
                assert stats["output_fps"] == round(float(want.rate), 3), stats
            seen.append(f"{endpoint}: OK, {n} frames")
        else:
            check_photo(path, want.api_size, want)
            assert (stats["width"], stats["height"]) == want.api_size, stats
            assert stats["downscaled_from"] == ([10000, 10000] if want.downscaled else None), stats
            seen.append(f"{endpoint}: OK, {'x'.join(map(str, want.api_size))}")
        assert legend and abs(sum(it["share"] for it in legend) - 1.0) < 1e-3, legend
    OUTCOMES[case.id]["api"] = "; ".join(seen)
    if isinstance(want, Video):
        OUTCOMES[case.id]["message"] = "correct video: " + ", ".join(filter(None, [
            "frame count" if want.same_timing else "the decodable frames, each at its own time",
            "each frame's time" if want.same_timing else "",
            f"{float(want.rate):.3f} fps" if want.rate else "", "size", "upright" if want.marker else "",
            f"audio as {want.audio}" if want.audio else ""]))
    elif isinstance(want, Photo):
        OUTCOMES[case.id]["message"] = "correct photo: size" + (", upright" if want.red else "") + (
            ", downscaled to the pixel limit (said)" if want.downscaled else "")


# -- after the whole matrix ----------------------------------------------------------------------------
def test_server_still_serves_and_left_no_temporary_files(app, shared_images):
    srv, tmp, client = app
    assert srv.process.poll() is None, "the server died"
    out, _, stats = submit(client, IMAGE, shared_images / "bird.bmp", MODEL).result(timeout=TIMEOUT)
    with Image.open(result_file(out)) as im:
        assert im.size == (512, 343)
    assert temp_leftovers(tmp) == []
    # One job folder per result handed out (failed jobs take theirs away), each holding that result.
    jobs = job_dirs(tmp)
    assert len(jobs) == len(API_RESULTS) + 1, (len(jobs), len(API_RESULTS))
    assert sorted(f.name for j in jobs for f in j.iterdir()) == sorted(
        [p.name for p in API_RESULTS] + ["bird_segmented.png"])
    log = srv.log()
    assert "Traceback" not in log and "Unexpected error" not in log, log[-3000:]
    # Nor beside the code: Gradio writes a .pyi next to any module defining a component subclass.
    assert not (ROOT / "app.pyi").exists()


def test_stopping_the_server_removes_its_store(app):
    srv, tmp, _ = app
    store = store_dir(tmp)
    stop_app(srv.process)
    assert srv.process.returncode == 0
    assert not store.exists(), "the TempStore folder outlived the server"
