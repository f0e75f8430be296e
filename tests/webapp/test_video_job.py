"""A page video job reads its input once: sniffed and probed once, decoded in one pass, and its
labels (.zip and COCO .json) written in that pass, never read back."""

from __future__ import annotations

import asyncio
import zipfile
from collections import Counter
from pathlib import Path

import av
import pytest

from media import StubSegmenter, make_clip
from segmentation import DEFAULT_MODEL_ID, decoding, video
from webapp import request as request_module
from webapp.admission import Admission
from webapp.context import AppContext
from webapp.handlers import Handlers
from webapp.jobs import SegmenterCache, TempStore
from webapp.limits import Limits


@pytest.fixture
def context(tmp_path):
    limits = Limits()
    ctx = AppContext(limits=limits, store=TempStore(tmp_path / "store"),
                     segmenters=SegmenterCache(factory=lambda model_id: StubSegmenter()),
                     admission=Admission(limits.concurrency, limits.visitor_jobs), warm_examples=False)
    yield ctx
    ctx.close()


def _counting(monkeypatch, counts: Counter, key: str, owner, name: str, path: Path | None = None) -> None:
    """Wrap ``owner.name`` so each call (on ``path`` only, when given) adds one to ``counts[key]``."""
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        if path is None or (args and Path(str(args[0])) == path):
            counts[key] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def test_a_page_video_job_probes_once_and_decodes_in_one_pass(context, tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)  # H.264: browsers play it, no preview copy
    counts: Counter = Counter()
    _counting(monkeypatch, counts, "sniffed", request_module, "sniff_kind")
    _counting(monkeypatch, counts, "probed", video, "probe")
    _counting(monkeypatch, counts, "decoded", decoding, "open_input", clip)  # read_frames: one per pass
    _counting(monkeypatch, counts, "opened", av, "open", clip)
    read_back = []
    real_zip = zipfile.ZipFile

    class WatchedZip(real_zip):
        def __init__(self, file, mode="r", *args, **kwargs):
            if mode == "r":
                read_back.append(file)
            super().__init__(file, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", WatchedZip)

    result = asyncio.run(Handlers(context)._run(None, str(clip), None, "upload", DEFAULT_MODEL_ID, "overlay", 0.5,
                                                "accurate", [], None))

    downloads = [Path(p).name for p in result[-1]["value"]]
    assert downloads == ["clip_segmented.mp4", "clip_labels.zip", "clip_labels.json"]
    assert counts["sniffed"] == 1 and counts["probed"] == 1 and counts["decoded"] == 1
    # FFmpeg opens the file for: the probe, the decoding pass, the sink's audio track, and the
    # previews' check that browsers play it as it is (its header only).
    assert counts["opened"] == 4, counts
    assert read_back == []  # the COCO .json is not converted from the .zip
