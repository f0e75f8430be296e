"""Drawing: render modes, alpha, class filter, fixed palettes, legend, class names, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation import draw
from segmentation.draw import DrawOptions
from segmentation.errors import InputError
from segmentation.labels import ADE20K_32, PASCAL_VOC, palette

PASCAL = palette("pascal")
ADE = palette("ade20k")


@pytest.fixture
def frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)


@pytest.fixture
def class_map() -> np.ndarray:
    cm = np.zeros((30, 40), np.uint8)
    cm[:, 10:20] = 1
    cm[:, 20:] = 15
    cm[:5, :] = 3
    return cm


def test_palettes_are_fixed_per_id():
    assert tuple(PASCAL[0]) == (0, 0, 0)
    assert tuple(PASCAL[1]) == (128, 0, 0)
    assert tuple(PASCAL[2]) == (0, 128, 0)
    assert tuple(PASCAL[15]) == (192, 128, 128)  # person
    assert tuple(ADE[0]) == (0, 0, 0)
    assert tuple(ADE[1]) == (120, 120, 120)  # wall
    assert tuple(ADE[4]) == (80, 50, 50)  # floor
    assert PASCAL.shape == ADE.shape == (256, 3) and PASCAL.dtype == ADE.dtype == np.uint8
    assert len({tuple(c) for c in ADE[:32]}) == 32, "ADE20K-32 colours must be distinct"
    assert np.array_equal(palette("pascal"), PASCAL)  # same every call


def test_mask_mode_is_the_palette_colours(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="mask"))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert tuple(out[20, 0]) == (0, 0, 0)
    assert tuple(out[20, 15]) == (128, 0, 0)
    assert tuple(out[20, 30]) == (192, 128, 128)
    assert tuple(out[0, 0]) == (128, 128, 0)  # id 3


def test_overlay_alpha_extremes(frame, class_map):
    same = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=0.0, outlines=False))
    assert np.array_equal(same, frame)
    full = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=1.0, outlines=False))
    mask = draw.render(frame, class_map, PASCAL, DrawOptions(mode="mask"))
    assert np.array_equal(full, mask)


def test_overlay_half_alpha_blends(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=0.5)).astype(int)
    y, x = 20, 15  # class 1 = (128, 0, 0)
    expected = (frame[y, x].astype(int) + np.array([128, 0, 0])) / 2
    assert np.all(np.abs(out[y, x] - expected) <= 1)


def test_side_by_side_doubles_the_width(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="side-by-side", alpha=1.0, outlines=False))
    assert out.shape == (30, 80, 3)
    assert np.array_equal(out[:, :40], frame)
    assert np.array_equal(out[:, 40:], PASCAL[class_map])
    assert draw.output_size(40, 30, "side-by-side") == (80, 30)
    assert draw.output_size(40, 30, "overlay") == (40, 30)


def test_unknown_mode_is_refused(frame, class_map):
    with pytest.raises(InputError, match="Unknown output mode 'sketch'; use one of: overlay, mask, side-by-side"):
        DrawOptions(mode="sketch")
    assert DrawOptions(mode="mask").mode is draw.Mode.MASK  # names become the enum, checked once


def test_class_filter_in_overlay_leaves_other_pixels_untouched(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=1.0, classes=(15,)))
    keep = class_map == 15
    assert np.array_equal(out[~keep], frame[~keep])  # outlines too are drawn only on kept classes
    assert np.all(out[6:, 21:] == (192, 128, 128))
    assert np.all(out[6:, 20] == 255)  # the kept class's boundary


def test_class_filter_in_mask_makes_other_pixels_black(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="mask", classes=(1, 3)))
    assert np.all(out[class_map == 15] == 0)
    assert np.all(out[class_map == 0] == 0)
    assert np.all(out[class_map == 1] == (128, 0, 0))
    assert np.all(out[class_map == 3] == (128, 128, 0))


def test_outlines_mark_class_boundaries(frame, class_map):
    out = draw.render(frame, class_map, PASCAL, DrawOptions(mode="mask", outlines=True))
    assert np.all(out[10:, 10] == 255) and np.all(out[10:, 20] == 255)  # vertical borders
    assert np.all(out[5, 1:9] == 255)  # the horizontal border under id 3
    assert tuple(out[20, 15]) == (128, 0, 0)  # interiors keep their colour


def test_overlay_draws_boundaries_by_default_and_mask_does_not(frame, class_map):
    # Grey-on-grey classes (ADE20K wall/road over asphalt) must stay visible in the overlay.
    over = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=0.5))
    assert np.all(over[10:, 10] == 255) and np.all(over[10:, 20] == 255)
    plain = draw.render(frame, class_map, PASCAL, DrawOptions(mode="overlay", alpha=0.5, outlines=False))
    inside = np.ones(class_map.shape, bool)
    inside[:, [10, 20]] = False
    inside[5, :] = False
    assert np.array_equal(over[inside], plain[inside])
    mask = draw.render(frame, class_map, PASCAL, DrawOptions(mode="mask"))
    assert np.array_equal(mask, PASCAL[class_map])


def test_low_res_class_map_is_scaled_with_nearest_neighbour(frame):
    small = np.array([[1, 15], [3, 0]], np.uint8)  # 2x2 for a 30x40 frame
    out = draw.render(frame, small, PASCAL, DrawOptions(mode="mask"))
    assert out.shape == frame.shape
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert colours == {tuple(PASCAL[i]) for i in (0, 1, 3, 15)}, "nearest neighbour must not invent colours"
    assert tuple(out[0, 0]) == tuple(PASCAL[1]) and tuple(out[0, -1]) == tuple(PASCAL[15])
    assert tuple(out[-1, 0]) == tuple(PASCAL[3]) and tuple(out[-1, -1]) == tuple(PASCAL[0])

    # A class map with ids 1 and 2 side by side: the scaled-up map (read back through
    # the palette) holds only those ids, never a blend like id 1.5 -> another class.
    cm = np.tile(np.array([[1, 2, 1, 2, 1]], np.uint8), (3, 1))
    over = draw.render(frame, cm, ADE, DrawOptions(mode="overlay", alpha=1.0, outlines=False))
    assert {tuple(c) for c in over.reshape(-1, 3)} == {tuple(ADE[1]), tuple(ADE[2])}


def test_low_res_class_filter_in_overlay(frame):
    small = np.zeros((3, 4), np.uint8)
    small[:, 2:] = 7
    out = draw.render(frame, small, PASCAL, DrawOptions(mode="overlay", alpha=1.0, classes=(7,), outlines=False))
    assert np.array_equal(out[:, :20], frame[:, :20])
    assert np.all(out[:, 20:] == PASCAL[7])


def test_legend_shares_sum_to_one_and_are_sorted(class_map):
    items = draw.legend(class_map, PASCAL_VOC, PASCAL)
    assert [it.id for it in items] == [15, 0, 1, 3]  # 500, 250, 250, 200 pixels; ties in id order
    assert sum(it.share for it in items) == pytest.approx(1.0)
    shares = [it.share for it in items]
    assert shares == sorted(shares, reverse=True)
    by_id = {it.id: it for it in items}
    assert by_id[15].name == "person" and by_id[15].color == (192, 128, 128)
    assert by_id[15].share == pytest.approx(500 / 1200)
    assert by_id[1].hex == "#800000"
    # From a histogram, with a class filter and a minimum share.
    hist = draw.class_histogram(class_map)
    assert [it.id for it in draw.legend(hist, PASCAL_VOC, PASCAL, classes=(3, 0))] == [0, 3]
    assert [it.id for it in draw.legend(hist, PASCAL_VOC, PASCAL, min_share=0.3)] == [15]


def test_legend_names_ids_beyond_the_labels():
    cm = np.full((2, 2), 40, np.uint8)
    (item,) = draw.legend(cm, ADE20K_32, ADE)
    assert item.name == "class 40" and item.share == 1.0


def test_class_ids_accepts_names_case_insensitively():
    assert draw.class_ids(["Person", "BIRD", " cat "], PASCAL_VOC) == (15, 3, 8)
    assert draw.class_ids(["wall", "Floor"], ADE20K_32) == (1, 4)
    assert draw.class_ids(["7"], PASCAL_VOC) == (7,)
    with pytest.raises(ValueError, match="Unknown class 'unicorn'"):
        draw.class_ids(["person", "unicorn"], PASCAL_VOC)
    with pytest.raises(ValueError):
        draw.class_ids(["300"], PASCAL_VOC)


def test_legend_image_has_one_row_per_item(class_map):
    items = draw.legend(class_map, PASCAL_VOC, PASCAL)
    img = draw.legend_image(items, width=200, row=20)
    assert img.shape == (len(items) * 20 + 8, 200, 3)
    assert tuple(img[4 + 10, 10]) == (192, 128, 128)  # first swatch: the largest class
