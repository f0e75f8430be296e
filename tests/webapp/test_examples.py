"""Every example of the app, run with the settings its row sets: its legend names what is in it.

Library level and quick: the example's own model (``ExampleFile.model``) on the photo, or on
every n-th frame of the video (~12 frames spread over the clip), the class shares summed
as the app's legend sums them over a video. A class counts as named when it holds at least
0.5% of the pixels (the app's legend lists every class over 0.05%).
"""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from segmentation import Segmenter
from segmentation.draw import class_histogram
from webapp import examples

MIN_SHARE = 0.005
SAMPLES = 12


def _frames(path):
    if path.name.endswith(examples.PHOTO_SUFFIXES):
        with Image.open(path) as im:
            return [np.asarray(im.convert("RGB"))]
    with av.open(str(path)) as c:
        total = c.streams.video[0].frames or 0
    step = max(1, total // SAMPLES) if total else 10
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % step == step // 2]


@pytest.fixture(scope="module")
def available(shared_models, shared_videos, shared_images):
    got = examples.ensure_examples(download=False)
    assert len(got) == len(examples.EXAMPLES), "an example file is missing"
    return got


@pytest.mark.parametrize("example", examples.EXAMPLES, ids=lambda e: e.name)
def test_example_legend_names_what_is_in_it(example, available):
    path = dict((ex.name, p) for ex, p in available)[example.name]
    seg = Segmenter.create(example.model)
    counts = np.zeros(256, np.int64)
    for frame in _frames(path):
        counts += class_histogram(seg.segment(frame).class_map)
    shares = counts / counts.sum()
    present = {seg.labels[i]: round(float(shares[i]), 4) for i in np.nonzero(shares >= MIN_SHARE)[0]}
    assert example.expect, f"{example.name} says nothing about what its legend must name"
    missing = [name for name in example.expect if name not in present]
    assert not missing, f"{example.title} with {example.model}: {missing} not in the legend {present}"


def test_settings_line_says_what_an_example_sets():
    bird = next(e for e in examples.EXAMPLES if e.name == "bird.bmp")
    assert bird.settings_line() == "model deeplabv3-pascal, output overlay, opacity 0.5"
    lot = next(e for e in examples.EXAMPLES if e.name == "car-detection.mp4")
    assert lot.settings_line() == "model deeplab-cityscapes, output overlay, opacity 0.5, speed realtime"
    assert lot.short_settings() == "deeplab-cityscapes · overlay · realtime"
    assert bird.short_settings() == "deeplabv3-pascal · overlay"


def test_posters_are_thumbnails_of_the_subject(available, tmp_path):
    for ex, path in available:
        p = examples.poster(ex, path, tmp_path)
        with Image.open(p) as im:
            assert im.format == "JPEG" and max(im.size) == 320, (ex.name, im.size)
        assert examples.poster(ex, path, tmp_path) == p  # made once
