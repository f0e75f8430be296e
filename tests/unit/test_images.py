"""Odd images through ``load_image`` and ``Segmenter.segment``.

Inputs are generated with Pillow/numpy into ``tmp_path``. Every segmentation
must come back as a uint8 class map of exactly the image's (h, w), for both
resize policies, whatever the file's mode, orientation or aspect ratio.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from media import BLUE, GREEN, RED, close_to, corner_image
from PIL import Image

from segmentation import InputError, Segmenter, SegmenterOptions, load_image
from segmentation.catalog import ModelEntry
from segmentation.images import as_rgb_array


def _save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


# -- load_image: modes ---------------------------------------------------------------------
def test_grayscale_png(tmp_path):
    a = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (7, 1))  # 7x25
    rgb = load_image(_save(Image.fromarray(a, "L"), tmp_path / "g.png"))
    assert rgb.shape == (7, 25, 3) and rgb.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(rgb[..., c], a)


def test_rgba_png_is_composited_on_white(tmp_path):
    a = np.zeros((10, 20, 4), np.uint8)
    a[:, :10] = (255, 0, 0, 255)  # opaque red
    a[:, 10:] = (0, 0, 0, 0)  # fully transparent black
    rgb = load_image(_save(Image.fromarray(a, "RGBA"), tmp_path / "a.png"))
    assert rgb.shape == (10, 20, 3)
    assert np.all(rgb[:, :10] == RED)
    assert np.all(rgb[:, 10:] == 255), "transparent pixels must become white, not black"


def test_16bit_png(tmp_path):
    a = np.zeros((6, 9), np.uint16)
    a[:, 3:6] = 32768
    a[:, 6:] = 65535
    img = Image.fromarray(a)
    path = _save(img, tmp_path / "d.png")
    with Image.open(path) as check:
        assert check.mode == "I;16"
    rgb = load_image(path)
    assert rgb.shape == (6, 9, 3) and rgb.dtype == np.uint8
    assert np.all(rgb[:, :3] == 0)
    assert np.all(rgb[:, 3:6] == 128)
    assert np.all(rgb[:, 6:] == 255)


def test_dark_16bit_png_is_scaled_as_16_bit(tmp_path):
    # Values all below 256 in a 16-bit file are *dark*, not full-range 8-bit.
    a = np.full((4, 4), 200, np.uint16)
    rgb = load_image(_save(Image.fromarray(a), tmp_path / "dark.png"))
    assert np.all(rgb <= 1)


def test_cmyk_jpeg(tmp_path):
    img = Image.new("RGB", (40, 24), RED).convert("CMYK")
    path = _save(img, tmp_path / "c.jpg", quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    rgb = load_image(path)
    assert rgb.shape == (24, 40, 3)
    assert close_to(rgb[12, 20], RED)


def test_exif_orientation_6_is_applied(tmp_path):
    # Orientation 6: the stored picture must be rotated 90 degrees clockwise to display,
    # so a 40x20 file shows as 20x40 and its top-left corner lands at the top right.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(corner_image(40, 20), tmp_path / "r.jpg", exif=exif, quality=95)
    rgb = load_image(path)
    assert rgb.shape == (40, 20, 3)
    assert close_to(rgb[1, -2], RED)
    for y, x in ((1, 1), (-2, 1), (-2, -2)):
        assert close_to(rgb[y, x], BLUE)


def test_palette_png_with_and_without_transparency(tmp_path):
    img = Image.new("P", (8, 4))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    a = np.zeros((4, 8), np.uint8)
    a[:, 4:] = 1
    a[0, 0] = 2
    img.putdata(a.ravel().tolist())
    rgb = load_image(_save(img, tmp_path / "p.png"))
    assert rgb.shape == (4, 8, 3)
    assert tuple(rgb[1, 1]) == RED and tuple(rgb[1, 5]) == GREEN and tuple(rgb[0, 0]) == BLUE

    img.info["transparency"] = 1  # green is transparent -> white
    rgb = load_image(_save(img, tmp_path / "pt.png", transparency=1))
    assert tuple(rgb[1, 1]) == RED and tuple(rgb[1, 5]) == (255, 255, 255)


def test_one_pixel_image(tmp_path):
    rgb = load_image(_save(Image.new("RGB", (1, 1), (10, 20, 30)), tmp_path / "one.png"))
    assert rgb.shape == (1, 1, 3) and tuple(rgb[0, 0]) == (10, 20, 30)


def test_bytes_input(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (5, 3), GREEN).save(buf, "PNG")
    rgb = load_image(buf.getvalue())
    assert rgb.shape == (3, 5, 3) and np.all(rgb == GREEN)


# -- load_image: size limits ---------------------------------------------------------------
def test_huge_jpeg_is_downscaled_to_max_pixels(tmp_path, monkeypatch):
    """A 10000x10000 JPEG (small on disk) comes back under SEGMENTATION_MAX_IMAGE_PIXELS with its aspect ratio."""
    path = _save(Image.new("L", (10000, 10000), 77), tmp_path / "huge.jpg", quality=50)
    assert path.stat().st_size < 5_000_000
    monkeypatch.setenv("SEGMENTATION_MAX_IMAGE_PIXELS", "1_000_000")  # keeps the decode small (JPEG draft)
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    assert h * w <= 1_000_000
    assert h * w >= 900_000, "downscaled much further than needed"
    assert abs(w / h - 1.0) < 0.01
    assert np.all(np.abs(rgb.astype(int) - 77) <= 2)


def test_large_png_keeps_aspect_when_downscaled(tmp_path, monkeypatch):
    a = np.zeros((1500, 6000), np.uint8)
    a[:, 3000:] = 200  # left half black, right half light grey
    path = _save(Image.fromarray(a), tmp_path / "wide.png")
    monkeypatch.setenv("SEGMENTATION_MAX_IMAGE_PIXELS", "1_000_000")
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    assert h * w <= 1_000_000 and h * w >= 950_000
    assert abs(w / h - 4.0) < 0.01
    assert np.all(rgb[:, : w // 2 - 2] == 0) and np.all(rgb[:, w // 2 + 2:] == 200)
    # An explicit max_pixels wins over the module default.
    small = load_image(path, max_pixels=40_000)
    assert small.shape[0] * small.shape[1] <= 40_000 and abs(small.shape[1] / small.shape[0] - 4.0) < 0.05


def test_image_over_hard_limit_is_refused(tmp_path, monkeypatch):
    path = _save(Image.new("L", (2000, 1000)), tmp_path / "bomb.png")
    monkeypatch.setenv("SEGMENTATION_HARD_MAX_IMAGE_PIXELS", "1_000_000")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    with pytest.raises(InputError) as info:
        load_image(path)
    msg = str(info.value)
    assert "bomb.png" in msg and ("limit" in msg or "too large" in msg)


# -- load_image: bad input -----------------------------------------------------------------
def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"these are not the pixels you are looking for\n" * 10)
    with pytest.raises(InputError, match=r"notes\.png is not an image file"):
        load_image(path)
    with pytest.raises(InputError, match="not an image file"):
        load_image(b"\x00\x01garbage")


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)  # incompressible: a long scan
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.jpg is damaged or truncated"):
        load_image(path)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="File not found") as info:
        load_image(missing)
    assert str(missing) in str(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.png"):
        load_image(path)


# -- in-memory arrays ------------------------------------------------------------------------
def test_as_rgb_array_conversions():
    assert as_rgb_array(np.full((2, 3), 7, np.uint8)).shape == (2, 3, 3)
    assert np.all(as_rgb_array(np.full((2, 3, 3), 1.0, np.float32)) == 255)
    assert np.all(as_rgb_array(np.full((2, 3, 3), 65535, np.uint16)) == 255)
    rgba = np.zeros((2, 2, 4), np.uint8)  # transparent -> white
    assert np.all(as_rgb_array(rgba) == 255)
    for bad in (np.zeros((2, 3, 2), np.uint8), np.zeros((0, 3, 3), np.uint8), np.zeros(5, np.uint8)):
        with pytest.raises(InputError, match="Expected an image array"):
            as_rgb_array(bad)
    with pytest.raises(InputError, match="dtype"):
        as_rgb_array(np.zeros((2, 2, 3), np.int64))


# -- segment(): the class map always covers the image -------------------------------------
@pytest.fixture(scope="module")
def segmenters(default_segmenter) -> dict[str, Segmenter]:
    """The default model under both resize policies (one loaded runner shared)."""
    letterbox = Segmenter(SegmenterOptions(resize="letterbox"), entry=default_segmenter.entry,
                          runner=default_segmenter.runner)
    return {"stretch": default_segmenter, "letterbox": letterbox}


def _odd_inputs(tmp_path: Path, bird: np.ndarray) -> dict[str, np.ndarray]:
    exif = Image.Exif()
    exif[0x0112] = 6
    pal = Image.new("P", (33, 17))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    files = {
        "gray": _save(Image.fromarray(bird.mean(axis=2).astype(np.uint8), "L"), tmp_path / "g.png"),
        "rgba": _save(Image.fromarray(np.dstack([bird, np.full(bird.shape[:2], 128, np.uint8)]), "RGBA"),
                      tmp_path / "a.png"),
        "16bit": _save(Image.fromarray(bird[..., 1].astype(np.uint16) * 257), tmp_path / "d.png"),
        "cmyk": _save(Image.fromarray(bird).convert("CMYK"), tmp_path / "c.jpg"),
        "exif6": _save(Image.fromarray(bird), tmp_path / "r.jpg", exif=exif),
        "palette": _save(pal, tmp_path / "p.png"),
        "1x1": _save(Image.new("RGB", (1, 1), (90, 90, 90)), tmp_path / "one.png"),
        "tall": _save(Image.new("RGB", (3, 700), (200, 10, 10)), tmp_path / "tall.png"),
        "wide": _save(Image.new("RGB", (900, 2), (10, 10, 200)), tmp_path / "wide.png"),
    }
    out = {name: load_image(p) for name, p in files.items()}
    out["bird"] = bird
    half = bird.copy()
    half[:, bird.shape[1] // 2:] = 128
    out["bird-left-half-grey"] = half
    return out


def test_segment_keeps_every_image_size(segmenters, shared_images, tmp_path):
    bird = load_image(shared_images / "bird.bmp")
    assert bird.shape == (343, 512, 3)
    inputs = _odd_inputs(tmp_path, bird)
    assert inputs["exif6"].shape == (512, 343, 3)
    assert inputs["tall"].shape == (700, 3, 3)
    for name, rgb in inputs.items():
        for policy, seg in segmenters.items():
            res = seg.segment(rgb)
            assert res.class_map.shape == rgb.shape[:2], f"{name}/{policy}: {res.class_map.shape}"
            assert res.class_map.dtype == np.uint8
            assert int(res.class_map.max()) < len(res.labels)
            # An explicit output size is honoured too.
            assert seg.segment(rgb, size_wh=(40, 30)).class_map.shape == (30, 40)


def test_letterbox_matches_stretch_on_a_square_image(segmenters, shared_images):
    # A square picture needs no padding: both policies must feed the model the same pixels.
    rgb = load_image(shared_images / "bird_segmentation.bmp")
    a = segmenters["stretch"].segment(rgb).class_map
    b = segmenters["letterbox"].segment(rgb).class_map
    assert np.array_equal(a, b)


def test_letterbox_finds_the_bird_in_the_left_half(shared_models, shared_images):
    bird = load_image(shared_images / "bird.bmp")
    half = bird.copy()
    half[:, 256:] = 128
    seg = Segmenter(SegmenterOptions(model="deeplabv3-pascal-dm05", resize="letterbox"))
    cm = seg.segment(half).class_map
    assert cm.shape == (343, 512)
    bird_id = seg.labels.index("bird")
    assert np.count_nonzero(cm[:, :256] == bird_id) > 2000
    # The grey half holds (almost) no bird: measured 13 of 76,832 pixels with letterbox.
    assert np.count_nonzero(cm[:, 288:] == bird_id) < 200


# -- segment() geometry with a scripted runner ------------------------------------------------
class RedGreenRunner:
    """Model stand-in: class 1 where red > green, else 2, at 1/4 of a 64x64 input (like real models)."""

    input_size_wh = (64, 64)
    output_kind = "class_ids"
    num_classes = None

    def __init__(self):
        self.inputs = []

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
        self.inputs.append(rgb)
        small = rgb[2::4, 2::4].astype(int)
        return np.where(small[..., 0] > small[..., 1], 1, 2).astype(np.int64)


@pytest.mark.parametrize("policy", ["stretch", "letterbox"])
def test_segment_geometry_on_a_wide_image(policy):
    entry = ModelEntry(id="scripted", name="scripted", format="tflite", labels=("pad", "red", "green"))
    runner = RedGreenRunner()
    seg = Segmenter(SegmenterOptions(resize=policy), entry=entry, runner=runner)
    rgb = np.zeros((50, 200, 3), np.uint8)
    rgb[:, :100] = RED
    rgb[:, 100:] = GREEN
    cm = seg.segment(rgb).class_map
    assert cm.shape == (50, 200) and cm.dtype == np.uint8
    assert np.all(cm[:, :96] == 1) and np.all(cm[:, 104:] == 2)
    fed = runner.inputs[-1]
    if policy == "letterbox":
        # 200x50 scaled to 64x16 keeps the aspect; the rest is grey padding the answer ignores.
        assert np.all(fed[16:] == 128) and not np.any(np.all(fed[:16] == 128, axis=-1))
    else:
        assert not np.any(np.all(fed == 128, axis=-1))
