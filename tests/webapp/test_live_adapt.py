"""The live view keeps up with the camera: ``LiveAdapter``'s decisions from (fake) per-frame
times, and a ``LiveSession`` on a model made slow (``SEGMENTATION_LIVE_SLOW_MODEL``) that
switches to realtime and says so in its status line, unless the user chose the speed."""

from __future__ import annotations

import time

import numpy as np
from media import StubSegmenter, picture

from webapp.live import SLOW_MODEL_ENV, LiveAdapter, LiveSession, slowed


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def feed(adapter, ms, speed="accurate", n=None, adapt=True, model_ms=None):
    """Frames of ``ms`` each until the adapter decides (or ``n`` frames); True if it changed."""
    for _ in range(n or adapter.WARM_FRAMES + adapter.WINDOW):
        if adapter.record(ms, speed, adapt, model_ms):
            return True
    return False


def test_a_slow_machine_steps_down_to_realtime_then_a_smaller_frame():
    a = LiveAdapter(1 / 15, clock=Clock())
    assert a.budget_ms == 50.0
    assert feed(a, 62.0)  # accurate: 62 ms a frame where a 15 fps camera leaves 50
    assert a.choose("accurate") == ("realtime", 1.0)
    assert "accurate took 62 ms per frame" in a.status("accurate")
    assert feed(a, 55.0)
    assert a.choose("accurate") == ("realtime", 0.5)
    assert "realtime at 50% size, chosen to keep up" in a.status("accurate")
    assert not feed(a, 80.0, n=50)  # nothing lower to go to


def test_a_fast_machine_keeps_the_settings():
    a = LiveAdapter(1 / 15, clock=Clock())
    assert not feed(a, 20.0, n=100)
    assert a.choose("accurate") == ("accurate", 1.0)
    assert "adapts if it falls behind" in a.status("accurate")


def test_the_users_choice_wins():
    a = LiveAdapter(1 / 15, clock=Clock())
    assert not feed(a, 200.0, n=100, adapt=False)
    assert a.choose("accurate", adapt=False) == ("accurate", 1.0)
    assert a.status("accurate", adapt=False) == "accurate (your choice: not adapted)"


def test_realtime_already_goes_straight_to_the_smaller_frame():
    a = LiveAdapter(1 / 15, clock=Clock())
    assert feed(a, 70.0, speed="realtime")
    assert a.choose("realtime") == ("realtime", 0.5)


def test_room_to_spare_tries_more_again_later_and_less_often_after_a_failed_try():
    clock = Clock()
    a = LiveAdapter(1 / 15, clock=clock)
    feed(a, 62.0)
    assert a.level == 1
    assert not feed(a, 10.0)  # room to spare, but too soon
    clock.t += a.UP_AFTER
    assert feed(a, 10.0, n=a.WINDOW)  # then it tries accurate again
    assert a.level == 0
    clock.t += 1
    assert feed(a, 62.0)  # still too slow: down again ...
    clock.t += a.UP_AFTER
    assert not feed(a, 10.0)  # ... and the next try waits twice as long
    clock.t += a.UP_AFTER
    assert feed(a, 10.0, n=a.WINDOW)


def test_realtime_tries_accurate_again_only_when_the_model_would_fit():
    """At realtime the model runs beside the frames, which then take a few ms: that quiet is no
    reason to try accurate again unless a model run on every frame would fit the budget too."""
    clock = Clock()
    a = LiveAdapter(1 / 15, clock=clock)
    feed(a, 62.0)
    assert a.level == 1
    clock.t += 10 * a.UP_AFTER_MAX
    assert not feed(a, 8.0, n=100, model_ms=48.0)  # 8 + 48 ms: over the 50 ms budget
    assert a.level == 1
    assert feed(a, 8.0, n=a.WINDOW, model_ms=13.0)  # 8 + 13 ms: accurate would fit: try it
    assert a.level == 0


class SleepySegmenter(StubSegmenter):
    """A model of ~15 ms a call (this machine's Autoseg, about)."""

    def predict(self, rgb):
        time.sleep(0.015)
        return super().predict(rgb)


def test_the_status_line_goes_to_the_page_twice_a_second_and_when_the_choice_changes():
    """Each status update is rendered again by the page: not 15 times a second."""
    clock = Clock()
    session = LiveSession()
    session.adapter = LiveAdapter(clock=clock)
    sent = []
    for i in range(30):  # 2 s of a 15 fps camera
        clock.t = i / 15
        sent.append(session.status_due())
    assert sent[0] and sum(sent) == 4, sent  # at 0, 0.53, 1.07 and 1.6 s
    clock.t += 0.1
    session.adapter.level = 1  # the view chose realtime: said at once
    assert session.status_due() and not session.status_due()


def test_live_session_on_a_slowed_model_switches_to_realtime(monkeypatch):
    monkeypatch.setenv(SLOW_MODEL_ENV, "4")  # ~60 ms a frame: a 2-core machine without AVX-512
    seg = slowed(SleepySegmenter())
    session = LiveSession()
    for i in range(LiveAdapter.WARM_FRAMES + LiveAdapter.WINDOW + 1):
        out, text = session.process(seg, picture(i, 64, 48), "overlay", 0.5, None, "accurate", adapt=True)
    assert session.adapter.level == 1
    assert "realtime, chosen to keep up with the camera (accurate took" in text, text
    # the next frames run realtime: the model on keyframes only
    runs = session.keyframes
    for i in range(10):
        out, text = session.process(seg, picture(i, 64, 48), "overlay", 0.5, None, "accurate", adapt=True)
    assert session.keyframes - runs < 10
    assert out.shape == (48, 64, 3)


def test_live_session_keeps_the_chosen_speed_on_a_slowed_model(monkeypatch):
    monkeypatch.setenv(SLOW_MODEL_ENV, "4")
    seg = slowed(SleepySegmenter())
    session = LiveSession()
    for i in range(LiveAdapter.WARM_FRAMES + LiveAdapter.WINDOW + 1):
        _, text = session.process(seg, picture(i, 64, 48), "overlay", 0.5, None, "accurate", adapt=False)
    assert session.adapter.level == 0 and session.keyframes == session.frames
    assert "accurate (your choice: not adapted)" in text


def test_slowed_is_the_segmenter_itself_without_the_variable(monkeypatch):
    monkeypatch.delenv(SLOW_MODEL_ENV, raising=False)
    seg = StubSegmenter()
    assert slowed(seg) is seg
    monkeypatch.setenv(SLOW_MODEL_ENV, "3")
    s = slowed(seg)
    assert s.labels == seg.labels and np.array_equal(s.predict(np.zeros((8, 8, 3), np.uint8)), seg.predict(None))


def _striped(w: int, h: int) -> np.ndarray:
    """Vertical stripes 12 px wide: how much of their contrast is left measures the blur."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, (np.arange(w) // 12) % 2 == 1] = 255
    return img


def test_blur_at_the_smaller_working_size_looks_as_at_full_size():
    """Level 2 draws on the frame at half its size: the blur (and feather) shrink with it, so the
    half-size picture is the full-size one made smaller, not twice as blurred."""
    from segmentation.effects import EffectOptions

    seg, frame = StubSegmenter(), _striped(256, 192)  # the stub: class 1 on the top half
    effect = EffectOptions(blur=6, feather=2)

    def drawn(level: int) -> np.ndarray:
        session = LiveSession()
        session.adapter.level = level
        out, _ = session.process(seg, frame, "blur-background", 0.5, (1,), "realtime", temporal=False,
                                 effect=effect, adapt=True)
        return out.astype(np.float32)

    full, half = drawn(0), drawn(2)
    assert half.shape == (96, 128, 3)
    import cv2

    expected = cv2.resize(full, (128, 96), interpolation=cv2.INTER_AREA)
    background = (slice(70, 96), slice(8, 120))  # the blurred bottom, away from the edge and the borders
    contrast = half[background].std()
    assert abs(contrast - expected[background].std()) < 0.2 * expected[background].std() + 2, \
        (contrast, expected[background].std())
    assert np.abs(half[background] - expected[background]).mean() < 12
    assert EffectOptions(blur=6, feather=2).scaled(0.5) == EffectOptions(blur=3, feather=1)
