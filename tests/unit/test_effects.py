"""Background effects: blur, replace and remove the background around the chosen classes.

Checked on synthetic maps (exactness, feathering, cover scaling, option
checks), on a real photo (bird.bmp, DeepLabV3 PASCAL, class ``bird``)
through the library and the CLI, and on real video: frames 300-330 of
one-by-one-person-detection (someone walks in; the default model, class
``person``) and car-detection (it has audio) into WebM with alpha. Every
output is read back: the foreground well inside the mask is the source, the
background is blurred (less high-frequency energy), replaced or transparent.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import (StubSegmenter, decode_rgb, decode_rgba_webm, detail, inside, make_clip, no_leftovers,
                   run_cli, stream_facts, video_times)
from PIL import Image

from segmentation import draw, video
from segmentation.draw import MODES, DrawOptions, Mode
from segmentation.effects import (BackgroundEffect, Effect, EffectOptions, composite, cover, default_foreground,
                                  feather)
from segmentation.errors import InputError
from segmentation.labels import ADE20K_32, CITYSCAPES, PASCAL_VOC
from segmentation.pipeline import VideoOptions, segment_image, segment_video

PERSON_ADE = ADE20K_32.index("person")
BIRD = PASCAL_VOC.index("bird")


@pytest.fixture
def scene():
    """A textured 120x160 frame and a class map with a disc of class 5 (and a class 7 block)."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    cm = np.zeros((120, 160), np.uint8)
    cv2.circle(cm, (80, 60), 40, 5, -1)
    cm[:20, :20] = 7
    return frame, cm


# -- options ---------------------------------------------------------------------------------------
def test_modes_include_the_effects():
    assert {"blur-background", "replace-background", "remove-background"} <= set(MODES)
    assert Mode("remove-background") is Mode.REMOVE_BACKGROUND
    assert DrawOptions(mode="blur-background").background_effect is Effect.BLUR
    assert DrawOptions(mode="overlay").background_effect is None
    assert not DrawOptions(mode="blur-background", outlines=True).show_outlines
    assert draw.output_size(65, 49, "remove-background") == (65, 49)


@pytest.mark.parametrize("value,rgb", [("#00ff00", (0, 255, 0)), ("#f00", (255, 0, 0)), ("blue", (0, 0, 255)),
                                       ((1, 2, 3), (1, 2, 3)), ("rgb(10,20,30)", (10, 20, 30))])
def test_background_colours(value, rgb):
    o = EffectOptions(background=value)
    assert o.color == rgb and o.image is None


@pytest.mark.parametrize("kwargs,words", [
    ({"blur": -1}, "blur"), ({"blur": float("nan")}, "blur"), ({"blur": "lots"}, "blur"), ({"feather": 99}, "feather"),
    ({"background": "#12345"}, "colour"), ({"background": "nosuchcolour"}, "colour"),
    ({"background": "missing.jpg"}, "not found"), ({"background": (0, 300, 0)}, "0..255"),
])
def test_bad_effect_options(kwargs, words):
    with pytest.raises(InputError, match=words):
        EffectOptions(**kwargs)


def test_background_image_read_once(tmp_path):
    p = tmp_path / "bg.png"
    Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(p)
    o = EffectOptions(background=p)
    assert o.color is None and o.image.shape == (10, 20, 3)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(InputError, match="background image"):
        EffectOptions(background=tmp_path / "notes.png")


def test_default_foreground_is_person():
    assert default_foreground(ADE20K_32) == (PERSON_ADE,)
    assert default_foreground(PASCAL_VOC) == (15,)
    assert default_foreground(CITYSCAPES) == (CITYSCAPES.index("person"),)
    with pytest.raises(InputError, match="person"):
        default_foreground(("background", "cat", "dog"))
    opts = DrawOptions(mode="blur-background")
    assert opts.resolve(PASCAL_VOC).classes == (15,)
    assert DrawOptions(mode="blur-background", classes=(3,)).resolve(PASCAL_VOC).classes == (3,)
    assert DrawOptions(mode="overlay").resolve(("a",)).classes is None  # nothing to resolve
    with pytest.raises(InputError, match="foreground"):
        draw.render(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((256, 3), np.uint8), opts)


# -- the annotator on synthetic maps ---------------------------------------------------------------
def test_blur_keeps_foreground_exactly(scene):
    frame, cm = scene
    out = BackgroundEffect("blur-background", (5,), EffectOptions(blur=6))(frame, cm)
    fg = inside(cm == 5, 12)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[fg], frame[fg])
    bg = inside(cm == 0, 12)
    assert detail(out, bg) < 0.2 * detail(frame, bg)


def test_blur_has_no_halo():
    """The blurred background near a bright foreground is not lit by it (masked blur)."""
    frame = np.full((100, 100, 3), 20, np.uint8)
    cm = np.zeros((100, 100), np.uint8)
    cm[30:70, 30:70] = 1
    frame[cm == 1] = 250
    out = BackgroundEffect("blur-background", (1,), EffectOptions(blur=8, feather=0))(frame, cm)
    assert np.abs(out[cm == 0].astype(int) - 20).max() <= 1


def test_replace_with_colour_and_feather(scene):
    frame, cm = scene
    out = BackgroundEffect("replace-background", (5, 7), EffectOptions(background="#0000ff", feather=2))(frame, cm)
    bg = inside(cm == 0, 10)
    assert (out[bg] == (0, 0, 255)).all()
    for c in (5, 7):
        fg = inside(cm == c, 8)
        assert np.array_equal(out[fg], frame[fg])
    # the edge is a ramp, not a step: across the disc's left edge the matte takes many values
    effect = BackgroundEffect("replace-background", (5,), EffectOptions(feather=2))
    row = effect.matte(cm, (160, 120))[60, 30:50]
    assert len(np.unique(row)) >= 6 and row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row.astype(int)) >= 0)


def test_feather_smooths_a_coarse_map():
    """A class map at 1/8 of the frame: the matte has no 8-pixel staircase (bilinear, blurred)."""
    small = np.zeros((16, 16), np.uint8)
    cv2.circle(small, (8, 8), 5, 255, -1)
    m = feather(small, (128, 128), 3.0)
    row = m[64, :40].astype(int)
    assert len(np.unique(row)) >= 8  # a ramp, not two levels
    assert np.abs(np.diff(row)).max() < 80  # no jump of a full step
    assert m[64, 64] == 255 and m[0, 0] == 0
    assert (feather(small, (16, 16), 0) == small).all()


def test_remove_gives_rgba(scene):
    frame, cm = scene
    out = BackgroundEffect("remove-background", (5,))(frame, cm)
    assert out.shape == (120, 160, 4)
    fg, bg = inside(cm == 5, 12), inside(cm != 5, 12)
    assert (out[fg, 3] == 255).all() and np.array_equal(out[fg, :3], frame[fg])
    assert (out[bg, 3] == 0).all() and (out[bg, :3] == 0).all()  # nothing of the background is left


def test_composite_matches_float_blend(scene):
    frame, _ = scene
    back = np.roll(frame, 7, axis=1)
    matte = np.tile(np.linspace(0, 255, 160).astype(np.uint8), (120, 1))
    a = matte.astype(np.float64)[..., None] / 255
    ref = np.floor(frame * a + back * (1 - a) + 0.5)
    assert np.abs(composite(frame, back, matte).astype(int) - ref).max() <= 1
    assert np.array_equal(composite(frame, back, np.full_like(matte, 255)), frame)
    assert np.array_equal(composite(frame, back, np.zeros_like(matte)), back)


def test_cover_keeps_aspect_and_centre():
    img = np.zeros((100, 400, 3), np.uint8)  # wide: a red centre stripe between blue ends
    img[:, :100] = (0, 0, 255)
    img[:, 300:] = (0, 0, 255)
    img[:, 100:300] = (255, 0, 0)
    out = cover(img, (200, 200))  # square frame: scaled to 200 high (800 wide), centre 200 cut
    assert out.shape == (200, 200, 3)
    assert (out[:, 5:-5] == (255, 0, 0)).all()
    tall = cover(img, (50, 400))
    assert tall.shape == (400, 50, 3)


def test_render_dispatches_to_the_annotator(scene):
    frame, cm = scene
    palette = np.zeros((256, 3), np.uint8)
    opts = DrawOptions(mode="replace-background", classes=(5,), effect=EffectOptions(background="red"))
    expect = BackgroundEffect("replace-background", (5,), EffectOptions(background="red"))(frame, cm)
    assert np.array_equal(draw.render(frame, cm, palette, opts), expect)
    assert np.array_equal(draw.render(frame, cm, palette, opts), expect)  # cached annotator, same answer


# -- a real photo --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pascal(shared_models):
    from segmentation import Segmenter

    return Segmenter.create("deeplabv3-pascal")


@pytest.fixture(scope="module")
def bird(shared_images):
    return shared_images / "bird.bmp"


@pytest.mark.parametrize("mode", ["blur-background", "replace-background", "remove-background"])
def test_photo_library(pascal, bird, mode):
    opts = DrawOptions(mode=mode, classes=(BIRD,), effect=EffectOptions(blur=12, background="#ff00ff"))
    res = segment_image(pascal, bird, opts)
    cm, src, out = res.class_map, res.original, res.rendered
    fg, bg = inside(cm == BIRD), inside(cm != BIRD)
    assert fg.sum() > 5000 and bg.sum() > 50000  # the bird is found, and there is background
    assert np.array_equal(out[fg][:, :3], src[fg])
    if mode == "blur-background":
        assert detail(out, bg) < 0.6 * detail(src, bg)
    elif mode == "replace-background":
        assert (out[bg] == (255, 0, 255)).all()
    else:
        assert out.shape[2] == 4 and (out[fg, 3] == 255).all() and (out[bg, 3] == 0).all()
    assert [it.name for it in res.legend] == ["bird"]


@pytest.mark.parametrize("mode,suffix", [("blur-background", ".jpg"), ("replace-background", ".png"),
                                         ("remove-background", ".png"), ("remove-background", ".webp")])
def test_photo_cli(pascal, bird, tmp_path, mode, suffix):
    out = tmp_path / f"out{suffix}"
    bg = tmp_path / "bg.png"
    Image.fromarray(np.full((30, 40, 3), (10, 200, 30), np.uint8)).save(bg)
    r = run_cli(str(bird), "-o", str(out), "--model", "deeplabv3-pascal", "--mode", mode, "--classes", "bird",
                *(["--background", str(bg)] if mode == "replace-background" else []),  # elsewhere: refused
                "--labels-out", str(tmp_path / "ids.png"))
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "ids.png") as im:
        cm = np.array(im)
    src = np.array(Image.open(bird).convert("RGB"))
    with Image.open(out) as im:
        got = np.array(im)
    fg, bg = inside(cm == BIRD), inside(cm != BIRD)
    if mode == "remove-background":
        assert got.shape == src.shape[:2] + (4,)
        assert (got[bg, 3] == 0).all() and (got[fg, 3] == 255).all()
        if suffix == ".png":  # lossless
            assert np.array_equal(got[fg, :3], src[fg])
    elif mode == "replace-background":
        assert np.array_equal(got[fg], src[fg])
        assert (got[bg] == (10, 200, 30)).all()
    else:  # JPEG: close, not exact
        assert np.abs(got[fg].astype(int) - src[fg]).mean() < 8  # JPEG quality 75 on feathers
        assert detail(got, bg) < 0.7 * detail(src, bg)


def _error_only(r, *outputs: Path) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    for out in outputs:
        no_leftovers(out.parent, out)
    return lines[0]


@pytest.mark.parametrize("case", ["unknown class", "unreadable background", "missing background", "jpeg alpha",
                                  "bad blur", "no person class", "bmp alpha"])
def test_photo_cli_bad_input(shared_models, bird, tmp_path, case):
    out = tmp_path / "out.png"
    labels_out = tmp_path / "ids.png"
    args = [str(bird), "--model", "deeplabv3-pascal", "--labels-out", str(labels_out)]
    if case == "unknown class":
        args += ["-o", str(out), "--mode", "blur-background", "--classes", "unicorn"]
    elif case == "unreadable background":
        (tmp_path / "bg.jpg").write_text("not a picture at all")
        args += ["-o", str(out), "--mode", "replace-background", "--background", str(tmp_path / "bg.jpg")]
    elif case == "missing background":
        args += ["-o", str(out), "--mode", "replace-background", "--background", str(tmp_path / "none.jpg")]
    elif case == "jpeg alpha":
        out = tmp_path / "out.jpg"
        args += ["-o", str(out), "--mode", "remove-background"]
    elif case == "bmp alpha":
        out = tmp_path / "out.bmp"
        args += ["-o", str(out), "--mode", "remove-background"]
    elif case == "bad blur":
        args += ["-o", str(out), "--mode", "blur-background", "--blur", "-2"]
    else:
        names = tmp_path / "labels.txt"
        names.write_text("\n".join("human" if n == "person" else n for n in PASCAL_VOC) + "\n")
        args = [str(bird), "--model", str(shared_models / "deeplabv3_mnv2_pascal_quant.tflite"), "--labels",
                str(names), "-o", str(out), "--mode", "blur-background", "--labels-out", str(labels_out)]
    line = _error_only(run_cli(*args), out, labels_out)
    words = {"unknown class": "unicorn", "unreadable background": "background image", "missing background":
             "not found", "jpeg alpha": ".png or .webp", "bmp alpha": ".png or .webp", "bad blur": "blur",
             "no person class": "person"}[case]
    assert words in line


# -- real video ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def person_clip(shared_videos, tmp_path_factory) -> Path:
    """Frames 300-329 of one-by-one-person-detection (a person in view), 10 fps, H.264 at CRF 12."""
    dst = tmp_path_factory.mktemp("clips") / "person.mp4"
    with av.open(str(shared_videos / "one-by-one-person-detection.mp4")) as c, av.open(str(dst), "w") as o:
        v = c.streams.video[0]
        s = o.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "12"}
        for i, f in enumerate(c.decode(v)):
            if i >= 330:
                break
            if i >= 300:
                g = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
                g.pts, g.time_base = i - 300, Fraction(1, 10)
                o.mux(s.encode(g))
        o.mux(s.encode(None))
    return dst


def _person_masks(npz: Path) -> np.ndarray:
    labels = np.load(npz)["labels"]
    assert (labels == PERSON_ADE).mean() > 0.03  # someone is there
    return labels == PERSON_ADE


def _cli_person(clip: Path, out: Path, frames: int, *args: str) -> np.ndarray:
    """The CLI on the person clip (default model, foreground person); the person masks of its frames."""
    npz = out.with_suffix(".npz")
    r = run_cli(str(clip), "-o", str(out), "--max-frames", str(frames), "--labels-out", str(npz), *args)
    assert r.returncode == 0, r.stderr
    return _person_masks(npz)


@pytest.mark.parametrize("mode", ["blur-background", "replace-background"])
def test_video_library(default_segmenter, person_clip, tmp_path, mode):
    out, npz = tmp_path / "out.mp4", tmp_path / "labels.npz"
    opts = VideoOptions(draw=DrawOptions(mode=mode, effect=EffectOptions(background="#0000ff")), max_frames=10, crf=16)
    res = segment_video(default_segmenter, person_clip, out, opts, labels_out=npz)
    assert res.frames == 10 and [it.name for it in res.legend] == ["person"]
    person = _person_masks(npz)
    src, got = decode_rgb(person_clip, 10), decode_rgb(out)
    assert len(got) == 10
    for s, g, p in zip(src, got, person):
        fg, bg = inside(p), inside(~p)
        assert np.abs(g[fg].astype(int) - s[fg]).mean() < 3  # the person as in the source (H.264 twice)
        if mode == "blur-background":
            assert detail(g, bg) < 0.5 * detail(s, bg)
        else:
            assert np.abs(g[bg].astype(int) - (0, 0, 255)).mean() < 6


def test_video_remove_webm_alpha(person_clip, shared_models, tmp_path):
    out = tmp_path / "out.webm"
    person = _cli_person(person_clip, out, 10, "--mode", "remove-background")
    facts = stream_facts(out)
    assert facts["codec"] == "vp9" and facts["size"] == (768, 432)
    with av.open(str(out)) as c:
        assert c.format.name.startswith("matroska") and c.streams.video[0].metadata.get("alpha_mode") == "1"
    frames = decode_rgba_webm(out)
    assert len(frames) == 10 == len(person)
    src = decode_rgb(person_clip, 10)
    for f, p, s in zip(frames, person, src):
        # The cut-out is the person matte (selfie models + Autoseg's person score), not Autoseg's
        # class map: inside the class map's person it is opaque, far from it transparent.
        fg, bg = inside(p), inside(~p)
        assert (f[fg, 3] >= 250).mean() > 0.95 and (f[bg, 3] <= 5).mean() > 0.99
        opaque = f[..., 3] >= 250
        assert np.abs(f[opaque, :3].astype(int) - s[opaque]).mean() < 4


def test_video_remove_mp4_is_green_screen(person_clip, shared_models, tmp_path):
    out = tmp_path / "out.mp4"
    person = _cli_person(person_clip, out, 5, "--mode", "remove-background")
    assert stream_facts(out)["codec"] == "h264"
    for g, p in zip(decode_rgb(out), person):
        bg = inside(~p)
        assert np.abs(g[bg].astype(int) - (0, 255, 0)).mean() < 6


def test_video_replace_with_image_cli(person_clip, shared_images, shared_models, tmp_path):
    out = tmp_path / "out.mp4"
    person = _cli_person(person_clip, out, 4, "--mode", "replace-background", "--background",
                         str(shared_images / "bird.bmp"))
    bird = cover(np.array(Image.open(shared_images / "bird.bmp").convert("RGB")), (768, 432))
    for g, p in zip(decode_rgb(out), person):
        bg = inside(~p)
        assert np.abs(g[bg].astype(int) - bird[bg]).mean() < 4


def test_webm_keeps_audio(shared_videos, shared_models, tmp_path):
    """car-detection has AAC audio: a WebM gets it as Opus, cut to the frames written."""
    src = shared_videos / "car-detection.mp4"
    out = tmp_path / "cars.webm"
    r = run_cli(str(src), "-o", str(out), "--mode", "remove-background", "--classes", "car", "--max-frames", "10")
    assert r.returncode == 0, r.stderr
    facts = stream_facts(out)
    assert facts["audio"] == "opus" and facts["codec"] == "vp9"
    assert len(video_times(out)) == 10 and len(decode_rgba_webm(out)) == 10
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        rate = a.codec_context.sample_rate
    assert abs(samples / rate - 10 / 12.5) < 0.05  # 10 frames at 12.5 fps


def test_webm_overlay_without_alpha(person_clip, shared_models, tmp_path):
    """Any mode can go to .webm (VP9 yuv420p); only remove-background carries alpha."""
    out = tmp_path / "out.webm"
    r = run_cli(str(person_clip), "-o", str(out), "--max-frames", "3")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "vp9" and "alpha_mode" not in v.metadata
    assert len(decode_rgb(out)) == 3


@pytest.mark.parametrize("case,words", [
    ("avi", "the output must be an .mp4 or .webm file"),
    ("unknown class", "Unknown class 'ghost'"),
    ("timeline for a photo", "--timeline-out"),
])
def test_video_cli_bad_input(person_clip, bird, shared_models, tmp_path, case, words):
    """Each refusal is the sentence for its own mistake, not any refusal."""
    out = tmp_path / "out.webm"
    if case == "avi":
        out = tmp_path / "out.avi"
        args = [str(person_clip), "-o", str(out), "--mode", "blur-background", "--max-frames", "2"]
    elif case == "unknown class":
        args = [str(person_clip), "-o", str(out), "--mode", "remove-background", "--classes", "ghost",
                "--max-frames", "2"]
    else:
        out = tmp_path / "out.png"
        args = [str(bird), "-o", str(out), "--timeline-out", str(tmp_path / "t.csv")]
    line = _error_only(run_cli(*args), out, tmp_path / "t.csv")
    assert words in line, line


def test_webm_copies_opus_and_encodes_aac(tmp_path):
    """Opus goes into a WebM as it is (packets copied); AAC is re-encoded to Opus."""
    opus = make_clip(tmp_path / "opus.mkv", frames=20, audio="libopus", audio_rate=48000)
    aac = make_clip(tmp_path / "aac.mp4", frames=20, audio="aac", audio_rate=44100)
    opts = VideoOptions(draw=DrawOptions(alpha=0.0))
    for src in (opus, aac):
        out = tmp_path / f"{src.stem}.webm"
        segment_video(StubSegmenter(), src, out, opts)
        facts = stream_facts(out)
        assert facts["codec"] == "vp9" and facts["audio"] == "opus"
        with av.open(str(out)) as c:
            assert c.streams.audio[0].codec_context.sample_rate == 48000
    with av.open(str(opus)) as a, av.open(str(tmp_path / "opus.webm")) as b:
        src_payloads = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        out_payloads = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert out_payloads and all(p in src_payloads for p in out_payloads)


def test_sink_refuses_alpha_in_mp4(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        video.VideoSink(tmp_path / "x.mp4", 16, 16, Fraction(10), Fraction(1, 10), alpha=True)
    assert video.container_for("a.WEBM") is video.WEBM and video.container_for("b.mp4") is video.MP4
    assert video.OUTPUT_VIDEO_SUFFIXES == (".mp4", ".m4v", ".webm")
