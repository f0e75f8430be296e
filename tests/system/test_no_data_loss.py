"""Nothing a user types destroys data or is silently ignored (issue 19).

* An output that is the input (video, photo, labels, a link to the input) is refused by the
  CLI and by the library, and the input stays byte-for-byte the same.
* A batch whose output folder is its input folder, run three times, leaves the same files
  as run once (it never takes its own outputs, manifests or report as inputs).
* A video that ends before its own frame count, or breaks off, is reported: by the CLI
  (one ``warning:`` line), in ``VideoResult.warning`` and in the batch report.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from media import StubSegmenter, damage, make_clip, run_cli

from segmentation.batch import REPORT_NAME, Status, run_batch
from segmentation.errors import InputError
from segmentation.pipeline import segment_image, segment_video

ROOT = Path(__file__).resolve().parents[2]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_library_refuses_to_overwrite_its_input(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    photo = tmp_path / "bird.bmp"
    shutil.copy(ROOT / "examples" / "bird.bmp", photo)
    os.symlink(clip, tmp_path / "link.mp4")
    before = {p: sha(p) for p in (clip, photo)}
    seg = StubSegmenter()
    for dst, labels in ((clip, None), (tmp_path / "link.mp4", None), (tmp_path / "o.mp4", clip)):
        with pytest.raises(InputError, match="is the input .* itself"):
            segment_video(seg, clip, dst, labels_out=labels)
    with pytest.raises(InputError, match="labels_out .*bird.bmp is the input"):
        segment_image(seg, photo, labels_out=photo)
    assert {p: sha(p) for p in before} == before
    assert files(tmp_path) == ["bird.bmp", "clip.mp4", "link.mp4"]


def test_cli_refuses_a_real_video_as_its_own_output(tmp_path, shared_models):
    clip = tmp_path / "car.mp4"
    shutil.copy(ROOT / "examples" / "car-detection.mp4", clip)
    before = sha(clip)
    r = run_cli(str(clip), "-o", str(clip), "--max-frames", "5", timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: -o ") and "is the input" in r.stderr, r.stderr
    assert sha(clip) == before and files(tmp_path) == ["car.mp4"]


def test_batch_into_its_own_folder_three_times(tmp_path, shared_models):
    d = tmp_path / "media"
    d.mkdir()
    shutil.copy(ROOT / "examples" / "bird.bmp", d / "bird.bmp")
    make_clip(d / "clip.mp4", frames=3)
    (d / "notes.txt").write_text("not media\n")
    inputs = {p: sha(d / p) for p in ("bird.bmp", "clip.mp4", "notes.txt")}
    first = run_batch([d], d, workers=0)
    assert (first.count(Status.DONE), first.count(Status.IGNORED), first.count(Status.FAILED)) == (2, 1, 0)
    once = files(d)
    # clip.mp4's output would be clip.mp4 itself: it keeps its suffix
    assert once == sorted(["batch-report.json", "bird.bmp", "bird.png", "bird.png.json", "clip.mp4",
                           "clip.mp4.mp4", "clip.mp4.mp4.json", "notes.txt"])
    for _ in range(2):
        again = run_batch([d], d, workers=0)
        assert (again.count(Status.SKIPPED), again.count(Status.IGNORED), again.count(Status.DONE)) == (2, 1, 0)
        assert files(d) == once
    assert {p: sha(d / p) for p in inputs} == inputs
    r = run_cli(str(d), "-o", str(d), timeout=120)  # the command, the same
    assert r.returncode == 0 and "0 done, 2 skipped, 0 failed, 1 ignored" in r.stderr, r.stderr
    assert files(d) == once


@pytest.fixture(scope="module")
def cut_gif(tmp_path_factory) -> Path:
    """classroom.gif cut at a quarter of its bytes: 9 of its 45 frames decode, and FFmpeg says nothing."""
    p = tmp_path_factory.mktemp("cut") / "cut.gif"
    data = (ROOT / "examples" / "classroom.gif").read_bytes()
    p.write_bytes(data[: len(data) // 4])
    return p


def test_truncated_gif_is_reported_by_the_cli_and_the_batch(cut_gif, tmp_path, shared_models):
    out = tmp_path / "out.mp4"
    r = run_cli(str(cut_gif), "-o", str(out), "--speed", "realtime", timeout=120)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: cut.gif: decoded 9 frames; the file is truncated (it breaks off before its end)."]
    rep = run_batch([cut_gif], tmp_path / "b", workers=0)
    outcome = rep.outcomes[0]
    assert outcome.status == Status.DONE and outcome.frames == 9 and "decoded 9 frames" in outcome.warning
    saved = json.loads((tmp_path / "b" / REPORT_NAME).read_text())["inputs"][0]
    assert saved["warning"] == outcome.warning
    whole = run_cli(str(ROOT / "examples" / "classroom.gif"), "-o", str(tmp_path / "whole.mp4"), "--max-frames", "3",
                    timeout=120)
    assert whole.returncode == 0 and "warning" not in whole.stderr, whole.stderr


def test_truncated_mp4_counts_against_its_header(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=60)  # faststart: the frame count is at the front
    cut = damage(src, tmp_path / "cut.mp4", "truncated")
    res = segment_video(StubSegmenter(), cut, tmp_path / "out.mp4")
    assert 0 < res.frames < 60
    assert res.warning == f"decoded {res.frames} of 60 frames; the file is truncated or damaged."
    full = segment_video(StubSegmenter(), src, tmp_path / "full.mp4")
    assert full.frames == 60 and full.warning == ""
    part = segment_video(StubSegmenter(), cut, tmp_path / "part.mp4", __import__(
        "segmentation.pipeline", fromlist=["VideoOptions"]).VideoOptions(max_frames=5))
    assert part.frames == 5 and part.warning == ""  # cut by --max-frames, not by the file


def test_the_app_reports_a_truncated_video(cut_gif, tmp_path):
    from webapp import jobs, views
    from webapp.limits import Limits

    from segmentation import DEFAULT_MODEL_ID

    cache = jobs.SegmenterCache(factory=lambda model_id: StubSegmenter())
    store = jobs.TempStore(tmp_path / "store")
    try:
        asked = jobs.VideoRequest.parse(cut_gif, Limits(), DEFAULT_MODEL_ID, "overlay", 0.5, "realtime")
        r = jobs.run_video(cache, asked, Limits(), store)
    finally:
        store.close()
    assert r.stats.frames == 9 and r.stats.warning.startswith("decoded 9 frames; the file is truncated")
    assert r.stats.to_json()["warning"] == r.stats.warning
    assert "Decoded 9 frames; the file is truncated" in views.stats_markdown(r.stats)


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_run_batch_from_a_plain_script_without_a_main_guard(tmp_path, shared_models, how):
    """The README's snippet as a user saves it: no ``if __name__ == "__main__":``, two worker processes."""
    import subprocess
    import sys

    (tmp_path / "videos").mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(tmp_path / "videos" / name, frames=2)
    code = ("from segmentation.batch import BatchOptions, run_batch\n"
            "report = run_batch(['videos/'], 'out/', BatchOptions(labels_format='npz'), workers=2)\n"
            "print(report.summary(), report.ok)\n")
    script = tmp_path / "batch.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(script)] if how == "script" else [sys.executable, "-"]
    r = subprocess.run(cmd, input=None if how == "script" else code, cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stdout.startswith("2 done, 0 skipped, 0 failed") and "2 processes" in r.stdout and \
        r.stdout.strip().endswith("True"), r.stdout
