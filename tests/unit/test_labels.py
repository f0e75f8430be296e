"""Class names: each model's label list in its output's id order, checked on real pictures.

The golden tests compare ids, so a label list shifted by one (as Coral's
Cityscapes file is: it puts "background" first) passes them. Here the
*names* must fit what is in the picture: the road under a car's camera is
"road", the sky above it "sky" (or "building"), walking people "person".
CamVid (../shared/camvid) is read for evaluation only.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation import Segmenter
from segmentation.labels import CITYSCAPES, cityscapes_palette, palette
from segmentation.video import read_frames


@pytest.fixture(scope="module")
def street(shared_videos) -> np.ndarray:
    """The first CamVid frame (480x360, a street seen from a car)."""
    path = shared_videos.parent / "camvid" / "val"
    frames = sorted(path.glob("*.png"))
    assert frames, f"no CamVid frames in {path}"
    return np.asarray(Image.open(frames[0]).convert("RGB"))


def largest(names: tuple[str, ...], region: np.ndarray) -> str:
    return names[int(np.bincount(region.ravel()).argmax())]


@pytest.mark.parametrize("model", ["deeplab-cityscapes", "autoseg-edgetpu-xs"])
def test_street_names(shared_models, street, model):
    seg = Segmenter.create(model)
    cm = seg.segment(street).class_map
    h, w = cm.shape
    assert largest(seg.labels, cm[int(h * 0.85):, w // 3: 2 * w // 3]) == "road"
    assert largest(seg.labels, cm[: h // 8]) in ("sky", "building")


def test_cityscapes_labels_are_the_train_ids():
    assert len(CITYSCAPES) == 19 and CITYSCAPES[0] == "road" and CITYSCAPES[-1] == "bicycle"
    assert "background" not in CITYSCAPES
    pal = palette("cityscapes")
    assert np.array_equal(pal, cityscapes_palette())
    assert tuple(pal[0]) == (128, 64, 128) and tuple(pal[10]) == (70, 130, 180)  # road, sky


def test_catalog_cityscapes_entry_uses_its_palette(shared_models):
    seg = Segmenter.create("deeplab-cityscapes")
    assert seg.labels == CITYSCAPES and tuple(seg.palette[0]) == (128, 64, 128)


@pytest.fixture(scope="module")
def people(shared_videos) -> list[np.ndarray]:
    """Frames of the person video in which someone walks through the office."""
    want = {300, 600, 1000}
    return [f.rgb for i, f in enumerate(read_frames(shared_videos / "one-by-one-person-detection.mp4", 1001))
            if i in want]


def test_people_are_person_in_pascal_and_ade20k(shared_models, people):
    pascal, ade = Segmenter.create("deeplabv3-pascal"), Segmenter.create("autoseg-edgetpu-xs")
    for rgb in people:
        p = pascal.segment(rgb).class_map
        counts = np.bincount(p.ravel(), minlength=len(pascal.labels))
        counts[pascal.labels.index("background")] = 0
        assert pascal.labels[int(counts.argmax())] == "person"
        where = p == pascal.labels.index("person")
        assert where.mean() > 0.02
        # where PASCAL sees the person, the ADE20K model's name for it is "person" too
        assert largest(ade.labels, ade.segment(rgb).class_map[where]) == "person"
