"""Pick by pointing (webapp.pick): toggling, the message, the still and the cached class map."""

from __future__ import annotations

import numpy as np
from media import StubSegmenter

from webapp.pick import Picker, message, still_of, toggle


def test_toggle_adds_then_removes():
    assert toggle([], "car") == (["car"], True)
    assert toggle(["person", "car"], "car") == (["person"], False)
    assert toggle(None, "person") == (["person"], True)


def test_message_says_where_the_class_went():
    assert message("car", True, "overlay") == "Added **car** to the class filter"
    assert message("person", False, "blur-background") == "Removed **person** from the foreground"


def test_picker_names_the_class_under_the_pixel_once_per_still_and_model():
    stub = StubSegmenter()  # top half class 1, bottom half class 0
    picker = Picker(lambda model_id: stub)
    still = np.zeros((40, 60, 3), np.uint8)
    assert picker.pick(still, 5, 5, "stub") == "class 1"
    assert picker.pick(still, 5, 35, "stub") == "class 0"
    assert stub.calls == 1  # the second click reused the class map
    picker.pick(still + 1, 5, 5, "stub")
    assert stub.calls == 2  # another still


def test_still_of_a_video_is_the_frame_at_the_time_asked(tmp_path):
    from media import make_clip

    clip = make_clip(tmp_path / "c.mp4", size=(64, 48), frames=30)
    first, later = still_of(clip, 0.0), still_of(clip, 0.5)
    assert first.shape == later.shape == (48, 64, 3)
    assert not np.array_equal(first, later)


def test_a_file_that_cannot_be_read_shows_no_still_and_no_toast(tmp_path):
    from webapp.context import AppContext
    from webapp.handlers import Handlers

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    context = AppContext.from_env()
    try:
        still, slider, status = Handlers(context).pick_source(str(bad))
    finally:
        context.close()
    assert still["visible"] is False and slider["visible"] is False and status == ""
