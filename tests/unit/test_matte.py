"""The person matte: sources, errors, fusion over time, and people kept on real photos and video."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from segmentation import Segmenter
from segmentation.draw import DrawOptions, Mode
from segmentation.effects import BackgroundEffect, Effect, default_foreground, soft_matte
from segmentation.errors import InputError
from segmentation.matte import (GRID_WH, LANDSCAPE_ID, PASCAL_ID, SELFIE_ID, MatteSource, PersonMatte,
                                alpha, check_matte, person_ids)
from segmentation.pipeline import segment_image
from segmentation.segmenter import SegmenterOptions
from segmentation.temporal import frame_segmenter

from media import run_cli


def test_matte_source_names():
    assert [m.value for m in MatteSource] == ["auto", "selfie", "pascal", "model"]
    assert check_matte("selfie") is MatteSource.SELFIE
    with pytest.raises(InputError, match="person matte source"):
        check_matte("selfy")


def test_alpha_is_the_sigmoid():
    logits = np.array([[-20.0, 0.0, 20.0]], np.float32)
    assert alpha(logits).tolist() == [[0, 128, 255]]


def test_feather_widens_outwards_and_never_eats_a_thin_person():
    a = np.zeros((64, 64), np.uint8)
    a[:, 31:33] = 255  # a person two grid cells wide
    m = soft_matte(a, (256, 256), sigma=10.0)
    assert m[:, 126:130].min() == 255  # still opaque in the middle
    assert m[:, 100].max() > 0  # the edge spreads outwards
    assert np.array_equal(soft_matte(a, (64, 64), 0.0), a)


def test_sources_per_job(shared_models):
    seg = Segmenter.create()
    loaded = []

    def load(mid):
        loaded.append(mid)
        return Segmenter.create(mid)

    PersonMatte(seg, "auto", still=True, load=load)
    assert loaded == [SELFIE_ID, LANDSCAPE_ID, PASCAL_ID]
    loaded.clear()
    video = PersonMatte(seg, "auto", still=False, load=load)
    assert loaded == [LANDSCAPE_ID] and video.uses_model_scores  # no PASCAL on every frame
    loaded.clear()
    assert not PersonMatte(seg, "selfie", load=load).uses_model_scores and loaded == [SELFIE_ID, LANDSCAPE_ID]
    loaded.clear()
    model = PersonMatte(seg, "model", load=load)
    assert loaded == [] and model.uses_model_scores
    logits = model.logits(np.zeros((90, 160, 3), np.uint8))
    assert logits.shape == (GRID_WH[1], GRID_WH[0]) and logits.dtype == np.float32


def test_model_without_person_and_foreground_without_person_are_refused(shared_models, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"thing{i}" for i in range(21)))
    seg = Segmenter(SegmenterOptions(model="deeplabv3-pascal-dm05", labels_file=str(names)))
    with pytest.raises(InputError, match="no 'person' class"):
        PersonMatte(seg, "model")
    car = DrawOptions(mode=Mode.BLUR_BACKGROUND, classes=(21,), matte="selfie")
    with pytest.raises(InputError, match="foreground \\(car\\) has no person"):
        car.matte_ids(Segmenter.create().labels)
    # auto quietly serves other foregrounds from the class map, as before
    assert DrawOptions(mode=Mode.BLUR_BACKGROUND, classes=(21,)).matte_ids(Segmenter.create().labels) == ()


def test_cli_matte_choices_and_errors(shared_models, shared_images, tmp_path):
    bird = str(shared_images / "bird.bmp")
    r = run_cli(bird, "-o", str(tmp_path / "a.png"), "--mode", "blur-background", "--matte", "selfie",
                "--classes", "car")
    assert r.returncode == 2 and "has no person" in r.stderr and not (tmp_path / "a.png").exists()
    r = run_cli(bird, "-o", str(tmp_path / "b.png"), "--mode", "remove-background", "--matte", "pascal")
    assert r.returncode == 0, r.stderr
    r = run_cli(bird, "-o", str(tmp_path / "c.png"), "--model", "selfie-segmentation", "--classes", "car",
                "--mode", "blur-background")
    assert r.returncode == 2 and "background, person" in r.stderr


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def test_people_kept_on_real_photos(shared_people, shared_models):
    """Default remove-background on 16 photos of the person set: the matte beats the old class-map
    cut-out clearly (benchmarks/people.py measures all 145)."""
    seg = Segmenter.create()
    old = BackgroundEffect(Effect.REMOVE, default_foreground(seg.labels))
    new_ious, old_ious = [], []
    for img in sorted((shared_people / "images").glob("*.jpg"))[:16]:
        rgb = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB)
        gt = cv2.imread(str(shared_people / "masks" / f"{img.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        size = (gt.shape[1], gt.shape[0])
        new = segment_image(seg, rgb, DrawOptions(mode=Mode.REMOVE_BACKGROUND)).rendered[..., 3]
        before = old(rgb, seg.segment(rgb).class_map)[..., 3]
        new_ious.append(_iou(cv2.resize(new, size) > 127, gt))
        old_ious.append(_iou(cv2.resize(before, size) > 127, gt))
    assert np.mean(new_ious) >= np.mean(old_ious) + 0.03, (np.mean(new_ious), np.mean(old_ious))
    assert np.mean(new_ious) > 0.85


def _frames(path, first: int, last: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        out = []
        for i, f in enumerate(c.decode(video=0)):
            if i >= first:
                out.append(f.to_ndarray(format="rgb24"))
            if i >= last:
                return out
    return out


@pytest.mark.parametrize("speed,model_every", [("accurate", 1), ("accurate", 2), ("realtime", 1)])
def test_whole_woman_kept_in_the_person_video(shared_videos, shared_models, speed, model_every):
    """Frame 120 of the person video: the matte keeps the woman whom PASCAL finds (the old Autoseg
    person class kept only her hair and legs); the fused matte reaches every frame, keyframe or not,
    also when the semantic model runs on every other frame only (a job that shows only the matte)."""
    frames = _frames(shared_videos / "one-by-one-person-detection.mp4", 100, 120)
    seg = Segmenter.create()
    fs = frame_segmenter(seg, speed, 10.0, True, matte=PersonMatte(seg))
    if model_every > 1:
        fs.model_every = model_every
    answers = [fs(f) for f in frames]
    assert all(a.matte is not None and a.matte.shape == (GRID_WH[1], GRID_WH[0]) for a in answers)
    if speed == "realtime":
        assert not all(a.keyframe for a in answers)
    if model_every == 2:
        assert [a.keyframe for a in answers] == [i % 2 == 0 for i in range(len(answers))]
    h, w = frames[-1].shape[:2]
    kept = soft_matte(answers[-1].matte, (w, h), 3.0) > 127
    pascal = Segmenter.create("deeplabv3-pascal")
    woman = np.isin(pascal.segment(frames[-1]).class_map, person_ids(pascal.labels))
    assert woman.sum() > 3000
    assert (kept & woman).sum() / woman.sum() > 0.9
    assert kept.sum() < 2.0 * woman.sum()  # the background goes
    old = seg.segment(frames[-1]).class_map == seg.labels.index("person")
    assert (old & woman).sum() / woman.sum() < 0.6  # what the issue saw


def test_matte_history_resets_on_a_cut(shared_models):
    seg = Segmenter.create()
    fs = frame_segmenter(seg, "accurate", 10.0, True, matte=PersonMatte(seg, "model"))
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    b = 255 - a
    fs(a), fs(a)
    after_cut = fs(b).matte
    fresh = frame_segmenter(seg, "accurate", 10.0, True, matte=PersonMatte(seg, "model"))(b).matte
    assert np.array_equal(after_cut, fresh)
