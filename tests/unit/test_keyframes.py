"""Realtime with the model in the background (``keyframes.BackgroundKeyframes``, the live view's
schedule), on real footage with the real default model: no frame waits for the model, its answer
lands on a later frame carried there by the flow, cuts still start afresh, a failing model is
said, and the answers stay as close to the model's as the clock schedule's."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from segmentation.keyframes import BackgroundKeyframes, Keyframes
from segmentation.temporal import TemporalOptions, frame_segmenter
from segmentation.video import read_frames


@pytest.fixture(scope="module")
def bottle_frames(shared_videos) -> list[np.ndarray]:
    return [f.rgb for f in read_frames(shared_videos / "bottle-detection.mp4", 40)]


class Gated:
    """The real segmenter, whose model calls after the first wait until ``gate`` is opened."""

    def __init__(self, segmenter):
        self._seg, self.gate, self.calls = segmenter, threading.Event(), 0
        self.waiting = threading.Event()

    def __getattr__(self, name):
        return getattr(self._seg, name)

    def scores(self, rgb):
        self.calls += 1
        if self.calls > 1:
            self.waiting.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return self._seg.scores(rgb)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def test_the_live_schedule_is_background_keyframes(default_segmenter):
    fs = frame_segmenter(default_segmenter, "realtime", 15, schedule="background")
    assert type(fs) is BackgroundKeyframes and fs.blend
    assert type(frame_segmenter(default_segmenter, "realtime", 15, schedule="clock")) is Keyframes
    assert type(frame_segmenter(default_segmenter, "accurate", 15, schedule="background")) is not BackgroundKeyframes


def test_frames_go_on_while_the_model_runs(default_segmenter, bottle_frames):
    """The model is held; frames keep coming out (carried by flow); once it answers, the answer
    lands on a later frame, merged where it was asked and carried to the frame it lands on."""
    gated = Gated(default_segmenter)
    fs = BackgroundKeyframes(gated, 15, TemporalOptions())
    first = fs(bottle_frames[0])
    assert first.keyframe and np.array_equal(first.class_map, default_segmenter.segment(bottle_frames[0]).class_map)
    out = []
    for rgb in bottle_frames[1:12]:  # a run is sent by frame min_interval..interval and held there
        out.append(fs(rgb))
    assert gated.waiting.is_set(), "no model run was sent"
    assert not any(o.keyframe for o in out)  # nothing landed: the frames did not wait for it
    assert fs.model_ms is not None  # the first (cut) run's time, for the live adapter
    gated.gate.set()
    landed = None
    for i, rgb in enumerate(bottle_frames[12:], 12):
        for _ in range(200):  # give the run time to finish before this frame (it is not waited for)
            if fs._run is None or fs._run.done:
                break
            threading.Event().wait(0.01)
        o = fs(rgb)
        if o.keyframe:
            landed = (i, o)
            break
    assert landed is not None, "the model's answer never landed"
    i, o = landed
    assert fs.keyframes == 2  # the first frame, and the held run
    # carried to frame i, the answer (asked 9+ frames before, in the clip's hardest stretch, where
    # the model's answers for consecutive frames agree on 74-85% of the pixels) fits frame i
    assert agreement(o.class_map, default_segmenter.segment(bottle_frames[i]).class_map) > 0.8


def test_answers_stay_close_to_the_model(default_segmenter, bottle_frames):
    """Over the clip, the background schedule's maps agree with the model on each frame about as
    well as the clock schedule's (both run the model on some frames only)."""
    def mean_agreement(schedule: str) -> tuple[float, int]:
        fs = frame_segmenter(default_segmenter, "realtime", 15, schedule=schedule)
        agree = []
        for rgb in bottle_frames:
            if isinstance(fs, BackgroundKeyframes) and fs._run is not None:
                fs._run._thread.join()  # as on a machine where the model takes about a frame's time
            agree.append(agreement(fs(rgb).class_map, default_segmenter.segment(rgb).class_map))
        return float(np.mean(agree)), fs.keyframes

    clock, _ = mean_agreement("clock")
    background, runs = mean_agreement("background")
    assert 1 < runs < len(bottle_frames)
    assert background > 0.9 and background > clock - 0.02, (background, clock)


def test_a_cut_runs_the_model_on_the_frame(default_segmenter, bottle_frames, shared_videos):
    other = next(iter(read_frames(shared_videos / "one-by-one-person-detection.mp4", 1))).rgb
    other = cv2.resize(other, (bottle_frames[0].shape[1], bottle_frames[0].shape[0]))
    fs = frame_segmenter(default_segmenter, "realtime", 15, schedule="background")
    for rgb in bottle_frames[:5]:
        fs(rgb)
    cut = fs(other)
    assert cut.keyframe and np.array_equal(cut.class_map, default_segmenter.segment(other).class_map)


class Failing:
    """The real segmenter, whose second model call fails."""

    def __init__(self, segmenter):
        self._seg, self.calls = segmenter, 0

    def __getattr__(self, name):
        return getattr(self._seg, name)

    def scores(self, rgb):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("the model failed")
        return self._seg.scores(rgb)


def test_a_failing_background_run_is_raised_in_the_frame_path(default_segmenter, bottle_frames):
    fs = BackgroundKeyframes(Failing(default_segmenter), 15, TemporalOptions())
    with pytest.raises(RuntimeError, match="the model failed"):
        for rgb in bottle_frames:
            if fs._run is not None:
                fs._run._thread.join()
            fs(rgb)
