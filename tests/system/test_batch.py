"""The batch command (issue #11): many inputs into a folder, resumable, failures isolated.

Short generated clips (a few frames, 64x48) and a photo in a tree, plus a
broken file and a text file: through the CLI (outputs mirror the tree, the
report lists everything, exit status 1 for the broken file, rerun skips,
``--overwrite`` and a changed setting redo) and through ``run_batch`` (a
changed input is redone alone, a damaged output is redone, a worker process
that dies takes only its own input down).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from media import corner_image, decoded_frames, make_clip, run_cli

from segmentation.batch import (REPORT_NAME, BatchOptions, Status, process_one, run_batch)

FRAMES = {"a.mp4": 5, "sub/b.mkv": 4, "sub/b.mp4": 3}


def outputs(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """in/a.mp4, in/sub/b.mkv and in/sub/b.mp4 (same stem), in/sub/deep/photo.jpg, in/broken.mp4, in/notes.txt."""
    d = tmp_path_factory.mktemp("batch") / "in"
    (d / "sub" / "deep").mkdir(parents=True)
    for name, n in FRAMES.items():
        make_clip(d / name, frames=n)
    corner_image(64, 48).save(d / "sub" / "deep" / "photo.jpg")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(600))
    (d / "notes.txt").write_text("not media\n")
    return d


def test_cli_batch_outputs_report_and_exit_status(tree, tmp_path, shared_models):
    out = tmp_path / "out"
    r = run_cli(str(tree), "-o", f"{out}/", "--labels-out-format", "npz", "--workers", "2")
    assert r.returncode == 1, r.stderr  # the broken file failed; everything else went on
    assert outputs(out) == sorted([
        "a.mp4", "a.mp4.json", "a.labels.npz",
        "sub/b.mkv.mp4", "sub/b.mkv.mp4.json", "sub/b.mkv.labels.npz",  # same stem: the suffix is kept
        "sub/b.mp4.mp4", "sub/b.mp4.mp4.json", "sub/b.mp4.labels.npz",
        "sub/deep/photo.png", "sub/deep/photo.png.json", "sub/deep/photo.labels.png",  # as for one photo
        REPORT_NAME])
    for name, n in FRAMES.items():
        dst = out / (name if name == "a.mp4" else name + ".mp4")
        assert len(decoded_frames(dst)) == n
        labels = np.load(dst.with_name(dst.stem + ".labels.npz"))["labels"]
        assert labels.shape == (n, 48, 64) and labels.dtype == np.uint8
    with Image.open(out / "sub/deep/photo.labels.png") as im:
        assert im.mode == "L" and im.size == (64, 48)
    m = json.loads((out / "a.mp4.json").read_text())
    assert m["input"]["path"] == str(tree / "a.mp4") and len(m["output"]["sha256"]) == 64
    assert m["model_id"] == "autoseg-edgetpu-xs" and m["settings"]["draw"]["mode"] == "overlay"

    rep = json.loads((out / REPORT_NAME).read_text())
    status = {Path(i["input"]).name: i["status"] for i in rep["inputs"]}
    assert status == {"a.mp4": "done", "b.mkv": "done", "b.mp4": "done", "photo.jpg": "done",
                      "broken.mp4": "failed", "notes.txt": "ignored"}
    broken = next(i for i in rep["inputs"] if i["input"].endswith("broken.mp4"))
    assert "broken.mp4" in broken["reason"] and "\n" not in broken["reason"]
    assert {k: rep["summary"][k] for k in ("done", "skipped", "failed", "ignored", "frames")} == {
        "done": 4, "skipped": 0, "failed": 1, "ignored": 1, "frames": 13}
    lines = r.stderr.strip().splitlines()
    assert any(line.startswith("failed: ") and "broken.mp4" in line for line in lines)
    assert lines[-1].startswith("batch: 4 done, 0 skipped, 1 failed, 1 ignored; 13 frames in ")
    assert "frames/s" in lines[-1] and "Traceback" not in r.stderr

    # A rerun skips everything that is done (and tries the broken file again).
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    r = run_cli(str(tree), "-o", str(out), "--labels-out-format", "npz")  # existing folder: batch, no slash needed
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 0 done, 4 skipped, 1 failed, 1 ignored; 0 frames")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == mtimes

    # --overwrite redoes them.
    r = run_cli(str(tree), "-o", str(out), "--labels-out-format", "npz", "--overwrite", "--workers", "1")
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 4 done, 0 skipped, 1 failed")
    assert all(p.stat().st_mtime_ns != t for p, t in mtimes.items())

    # A changed setting redoes them, and then the new outputs are current.
    r = run_cli(str(tree), "-o", str(out), "--labels-out-format", "npz", "--mode", "mask")
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 4 done, 0 skipped, 1 failed")
    assert json.loads((out / "a.mp4.json").read_text())["settings"]["draw"]["mode"] == "mask"
    r = run_cli(str(tree), "-o", str(out), "--labels-out-format", "npz", "--mode", "mask")
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 0 done, 4 skipped, 1 failed")
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*"))


def test_cli_glob_and_files_without_failures_exit_0(tree, tmp_path, shared_models):
    out = tmp_path / "out"
    r = run_cli(str(tree / "sub" / "*.mp4"), str(tree / "a.mp4"), "-o", str(out) + os.sep, "--speed", "realtime",
                "--model", "deeplabv3-pascal-dm05")
    assert r.returncode == 0, r.stderr
    # a.mp4 (in/) and the glob's base (in/sub/) have in/ as their common folder: the tree is mirrored from there
    assert outputs(out) == ["a.mp4", "a.mp4.json", REPORT_NAME, "sub/b.mp4", "sub/b.mp4.json"]
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 2 done, 0 skipped, 0 failed; 8 frames")


def test_cli_single_file_mode_refuses_batch_options(tree, tmp_path):
    """--overwrite and --labels-out-format are for batches; --workers and --ray also split one video
    (tests/system/test_chunks.py), never a photo (tests/system/test_cli_errors.py)."""
    r = run_cli(str(tree / "a.mp4"), "-o", str(tmp_path / "x.mp4"), "--overwrite", timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: --overwrite: batch options;")
    assert not (tmp_path / "x.mp4").exists()


def test_cli_batch_refuses_labels_out_and_missing_names(tree, tmp_path, shared_models):
    r = run_cli(str(tree), "-o", f"{tmp_path}/o/", "--labels-out", "x.npz", timeout=60)
    assert r.returncode == 2 and "--labels-out-format" in r.stderr
    r = run_cli(str(tree / "a.mp4"), str(tree / "nope.mp4"), str(tree / "*.webm"), "-o", f"{tmp_path}/o/",
                "--workers", "1", timeout=120)
    assert r.returncode == 1
    assert "failed: " + str(tree / "nope.mp4") + ": File not found" in r.stderr
    assert "No file matches" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("batch: 1 done, 0 skipped, 2 failed")


def test_run_batch_redoes_only_what_changed(tree, tmp_path, shared_models):
    src = tmp_path / "in"
    shutil.copytree(tree, src)
    out = tmp_path / "out"
    opts = BatchOptions(labels_format="npz")
    first = run_batch([src], out, opts, workers=0)
    assert (first.count(Status.DONE), first.count(Status.FAILED), first.frames) == (4, 1, 13)
    assert not first.ok and "4 done, 0 skipped, 1 failed, 1 ignored" in first.summary()

    make_clip(src / "a.mp4", frames=7)  # new content: redone
    os.utime(src / "sub" / "b.mkv")  # touched only: same sha256, skipped
    (out / "sub" / "b.mp4.mp4").write_bytes(b"damaged")  # output damaged: redone
    (out / "sub" / "deep" / "photo.labels.png").unlink()  # labels gone: redone
    again = run_batch([src], out, opts, workers=0)
    done = sorted(Path(o.input).name for o in again.outcomes if o.status == Status.DONE)
    assert done == ["a.mp4", "b.mp4", "photo.jpg"], again.outcomes
    assert again.count(Status.SKIPPED) == 1 and again.frames == 7 + 3 + 1
    assert len(decoded_frames(out / "a.mp4")) == 7

    # No labels asked for: the outputs with labels are still current.
    assert run_batch([src], out, BatchOptions(), workers=0).count(Status.SKIPPED) == 4
    # Another model: everything is redone.
    assert run_batch([src], out, BatchOptions(model="deeplabv3-pascal-dm05", labels_format="npz"),
                     workers=0).count(Status.DONE) == 4


def crash_on_b(job):
    """A task whose worker process dies (as on a native crash) on b.mkv, every time."""
    if job.input.endswith("b.mkv"):
        os._exit(3)
    return process_one(job)


def test_worker_crash_fails_only_its_input(tree, tmp_path, shared_models):
    out = tmp_path / "out"
    rep = run_batch([tree / "a.mp4", tree / "sub"], out, workers=2, task=crash_on_b)
    status = {Path(o.input).name: (o.status, o.reason) for o in rep.outcomes}
    assert status["b.mkv"][0] == Status.FAILED and "worker process died" in status["b.mkv"][1]
    assert {k: v[0] for k, v in status.items() if k != "b.mkv"} == {
        "a.mp4": Status.DONE, "b.mp4": Status.DONE, "photo.jpg": Status.DONE}
    assert len(decoded_frames(out / "a.mp4")) == 5 and not (out / "sub" / "b.mkv.mp4").exists()


def test_cli_batch_effect_and_json_labels(tree, tmp_path, shared_models):
    """The single-file options carry over: a background effect, COCO .json labels for videos and photos."""
    out = tmp_path / "out"
    r = run_cli(str(tree / "a.mp4"), str(tree / "sub" / "deep"), "-o", f"{out}/", "--mode", "remove-background",
                "--labels-out-format", "json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert outputs(out) == ["a.labels.json", "a.mp4", "a.mp4.json", REPORT_NAME,
                            "sub/deep/photo.labels.json", "sub/deep/photo.png", "sub/deep/photo.png.json"]
    assert len(json.loads((out / "a.labels.json").read_text())["images"]) == 5
    with Image.open(out / "sub" / "deep" / "photo.png") as im:
        assert im.mode == "RGBA"  # remove-background: a transparent picture
    assert json.loads((out / "a.mp4.json").read_text())["settings"]["draw"]["mode"] == "remove-background"


def test_background_image_change_redoes(tree, tmp_path, shared_models):
    from segmentation.draw import DrawOptions
    from segmentation.effects import EffectOptions
    from segmentation.pipeline import VideoOptions

    bg = tmp_path / "bg.png"
    corner_image(32, 32).save(bg)

    def opts():  # read again each time, as the command does
        draw = DrawOptions(mode="replace-background", effect=EffectOptions(background=str(bg)))
        return BatchOptions(video=VideoOptions(draw=draw))

    out = tmp_path / "out"
    assert run_batch([tree / "a.mp4"], out, opts(), workers=0).count(Status.DONE) == 1
    settings = json.loads((out / "a.mp4.json").read_text())["settings"]["draw"]["effect"]
    assert settings["background_file"]["path"] == str(bg) and "image" not in settings
    assert run_batch([tree / "a.mp4"], out, opts(), workers=0).count(Status.SKIPPED) == 1
    corner_image(40, 40).save(bg)  # another picture under the same name
    assert run_batch([tree / "a.mp4"], out, opts(), workers=0).count(Status.DONE) == 1


@pytest.mark.parametrize("flags, rc, words", [(["--model", "no-such-model"], 2, "Unknown model 'no-such-model'"),
                                              (["--classes", "no-such-class"], 2, "no-such-class")])
def test_cli_batch_refuses_bad_model_or_classes_up_front(tree, tmp_path, flags, rc, words):
    r = run_cli(str(tree), "-o", f"{tmp_path}/out/", *flags, timeout=60)
    assert r.returncode == rc and r.stderr.startswith("error: ") and words in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
