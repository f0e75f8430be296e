"""Frame segmenters (segmentation.temporal) on real footage with the real default model.

What a viewer sees: with temporal fusion a static scene stays exactly what
the model says, flicker on real footage drops, scene cuts start afresh, and
with fusion off every frame is ``Segmenter.segment`` of that frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segmentation import Segmenter
from segmentation.errors import InputError
from segmentation.pipeline import VideoOptions, segment_video
from segmentation.classmaps import refine_labels
from segmentation.temporal import EveryFrame, Fused, Keyframes, Speed, frame_segmenter
from segmentation.video import read_frames


@pytest.fixture(scope="module")
def bottle_frames(shared_videos) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(shared_videos / "bottle-detection.mp4", 40)]


@pytest.fixture(scope="module")
def person_frames(shared_videos) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(shared_videos / "one-by-one-person-detection.mp4", 3)]


def flow_consistency(frames: list[np.ndarray], maps: list[np.ndarray]) -> float:
    """Mean agreement of each class map with the previous one warped by DIS flow (the benchmark's TC)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = frames[0].shape[:2]
    size = (320, round(h * 320 / w))
    grid = np.dstack(np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32)))
    gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA) for f in frames]
    small = [cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in maps]
    agree = []
    for t in range(1, len(frames)):
        flow = dis.calc(gray[t], gray[t - 1], None)
        warped = cv2.remap(small[t - 1], grid + flow, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        agree.append(float(np.mean(warped == small[t])))
    return float(np.mean(agree))


def test_strategy_follows_speed_and_switch(default_segmenter):
    assert type(frame_segmenter(default_segmenter, "accurate", 30, temporal=False)) is EveryFrame
    assert type(frame_segmenter(default_segmenter, Speed.ACCURATE, 30)) is Fused
    rt = frame_segmenter(default_segmenter, "realtime", 30, temporal=False)
    assert type(rt) is Keyframes and not rt.blend
    assert frame_segmenter(default_segmenter, "realtime", 30).blend
    with pytest.raises(InputError, match="Unknown speed 'ludicrous'"):
        frame_segmenter(default_segmenter, "ludicrous", 30)
    with pytest.raises(InputError, match="Unknown speed"):
        VideoOptions(speed="fast")


def test_fusion_off_is_segment_of_every_frame(default_segmenter, bottle_frames):
    fs = frame_segmenter(default_segmenter, "accurate", 30, temporal=False)
    for rgb in bottle_frames[:5]:
        assert np.array_equal(fs(rgb).class_map, default_segmenter.segment(rgb).class_map)
    assert fs.frames == fs.keyframes == 5


def test_static_scene_is_the_model_answer(default_segmenter, person_frames):
    """Fusion must not drift: the same frame over and over gives the model's answer, and stays put."""
    rgb = person_frames[0]
    expected = default_segmenter.segment(rgb).class_map
    fs = frame_segmenter(default_segmenter, "accurate", 10)
    maps = [fs(rgb).class_map for _ in range(8)]
    assert np.array_equal(maps[0], expected)  # the first frame: nothing to fuse with
    for m in maps[1:]:  # the holding class's bonus pulls boundaries towards cell edges by a pixel or two
        assert float(np.mean(m == expected)) > 0.99
    assert float(np.mean(maps[-1] == maps[-2])) > 0.999  # settling, not wandering


def test_fusion_reduces_flicker_on_real_footage(default_segmenter, bottle_frames):
    maps = {}
    for temporal in (False, True):
        fs = frame_segmenter(default_segmenter, "accurate", 29.83, temporal=temporal)
        maps[temporal] = [fs(rgb).class_map for rgb in bottle_frames]
    off, on = flow_consistency(bottle_frames, maps[False]), flow_consistency(bottle_frames, maps[True])
    assert on > off + 0.01, f"temporal consistency off {off:.4f}, on {on:.4f}"
    # and it still says what the model says on the whole: most pixels agree with every-frame output
    agree = np.mean([np.mean(a == b) for a, b in zip(maps[False], maps[True])])
    assert agree > 0.9, agree


def test_scene_cut_starts_afresh(default_segmenter, bottle_frames, person_frames):
    fs = frame_segmenter(default_segmenter, "accurate", 30)
    for rgb in bottle_frames[:5]:
        fs(rgb)
    cut = cv2.resize(person_frames[0], (bottle_frames[0].shape[1], bottle_frames[0].shape[0]))
    assert np.array_equal(fs(cut).class_map, default_segmenter.segment(cut).class_map)


def test_realtime_runs_the_model_on_keyframes_only(default_segmenter, bottle_frames):
    for temporal in (False, True):
        fs = frame_segmenter(default_segmenter, "realtime", 29.83, temporal=temporal)
        out = [fs(rgb) for rgb in bottle_frames]
        assert out[0].keyframe and 0 < fs.keyframes < len(bottle_frames) // 2 + 1
        assert all(o.class_map.shape == bottle_frames[0].shape[:2] for o in out)
        # the first frame is the model's own answer, and so is every keyframe without blending
        assert np.array_equal(out[0].class_map, default_segmenter.segment(bottle_frames[0]).class_map)
        if not temporal:
            for o, rgb in zip(out, bottle_frames):
                if o.keyframe:
                    assert np.array_equal(o.class_map, default_segmenter.segment(rgb).class_map)


@pytest.mark.parametrize("size_wh", [(8, 8), (320, 60), (1280, 240), (82, 24), (60, 320)])
def test_odd_frame_shapes_in_every_strategy(default_segmenter, size_wh):
    """Tiny and very wide frames: the flow image never goes below 32x32 (DIS crashed on 160x30)."""
    w, h = size_wh
    rng = np.random.default_rng(0)
    frames = [np.roll(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), i, axis=1) for i in range(4)]
    for speed, temporal in (("accurate", True), ("realtime", True), ("realtime", False)):
        fs = frame_segmenter(default_segmenter, speed, 30, temporal)
        assert all(fs(f).class_map.shape == (h, w) for f in frames)


def test_class_id_model_fuses_too(shared_models, bottle_frames):
    seg = Segmenter.create("deeplabv3-pascal-dm05")
    assert not seg.has_scores
    fs = frame_segmenter(seg, "accurate", 30)
    maps = [fs(rgb).class_map for rgb in bottle_frames[:4]]
    assert all(m.shape == bottle_frames[0].shape[:2] and m.dtype == np.uint8 for m in maps)
    assert set(np.unique(maps[-1])) <= set(range(len(seg.labels)))


def test_pipeline_fusion_off_matches_segment(default_segmenter, shared_videos, tmp_path):
    src = shared_videos / "bottle-detection.mp4"
    labels = tmp_path / "labels.npz"
    r = segment_video(default_segmenter, src, tmp_path / "out.mp4", VideoOptions(temporal=False, max_frames=6),
                      labels_out=labels)
    assert r.frames == r.keyframes == 6 and r.temporal is False
    got = np.load(labels)["labels"]
    for rgb, cm in zip([f.rgb for f in read_frames(src, 6)], got):
        assert np.array_equal(cm, default_segmenter.segment(rgb).class_map)


def test_refine_labels_many_classes_falls_back_exactly():
    """More than 32 classes winning somewhere: the exact (slower) path, same answer as np.argmax."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(12, 12, 60)).astype(np.float32)
    assert len(np.unique(np.argmax(scores, axis=-1))) > 32
    up = cv2.resize(scores, (50, 40), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(refine_labels(scores, (50, 40)), np.argmax(up, axis=-1).astype(np.uint8))


def test_refine_labels_agrees_with_exact_upsampling():
    rng = np.random.default_rng(1)
    base = cv2.resize(rng.normal(size=(6, 6, 8)).astype(np.float32) * 20, (64, 64))  # smooth, 8 classes
    exact = np.argmax(cv2.resize(base, (640, 360)), axis=-1)
    assert float(np.mean(refine_labels(base, (640, 360)) == exact)) > 0.998


def test_realtime_schedule_follows_the_frames_not_the_clock(default_segmenter, bottle_frames, monkeypatch):
    """Files: keyframes at every anchor (index divisible by the interval), on cuts, and at most one
    content keyframe between anchors; the same frames give the same maps however slow the machine."""
    import time as _time

    def run(slow: bool):
        fs = frame_segmenter(default_segmenter, "realtime", 29.83, schedule="frames")
        out = []
        for i, rgb in enumerate(bottle_frames):
            out.append(fs(rgb))
            if slow and i == 3:  # a busy machine: the clock says every frame took a second
                base = _time.perf_counter()
                monkeypatch.setattr(_time, "perf_counter", lambda: base + 1000.0 * len(out))
        monkeypatch.undo()
        return fs, out

    fs, a = run(False)
    _, b = run(True)
    k = fs.interval
    assert k == fs.opt.interval == 6
    keys = [i for i, o in enumerate(a) if o.keyframe]
    assert keys == [i for i, o in enumerate(b) if o.keyframe]
    assert all(i in keys for i in range(0, len(bottle_frames), k))  # every anchor
    extra = [i for i in keys if i % k]
    assert len({i // k for i in extra}) == len(extra)  # at most one content keyframe per anchor span
    for x, y in zip(a, b):
        assert np.array_equal(x.class_map, y.class_map)


def test_realtime_entered_at_an_anchor_takes_the_same_keyframes(default_segmenter, bottle_frames):
    """A stream entered at an anchor (a chunk's warm-up) takes the single pass's keyframes from there on."""
    whole = frame_segmenter(default_segmenter, "realtime", 29.83, schedule="frames")
    keys_whole = [i for i, rgb in enumerate(bottle_frames) if whole(rgb, i).keyframe]
    start = 2 * whole.interval
    part = frame_segmenter(default_segmenter, "realtime", 29.83, schedule="frames")
    keys_part = [i for i in range(start, len(bottle_frames)) if part(bottle_frames[i], i).keyframe]
    assert keys_part == [i for i in keys_whole if i >= start]
