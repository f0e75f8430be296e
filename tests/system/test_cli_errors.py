"""Bad usages of the command line (issue 19): one sentence, the documented exit status, nothing written.

Every row runs ``cli.main`` in this process (argparse's own exits included) on a
tiny photo and a 3-frame clip; a few run as a real subprocess too. For each:
the exit status, exactly one ``error:`` line holding the expected words, no
traceback, no errno text, no temporary name, no file written and every input
byte-for-byte unchanged. Then the help: examples, exit codes, a help text for
every option, plain choice names, and the listings.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from media import corner_image, make_clip, run_cli

from segmentation import cli
from segmentation.cli_args import build_parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def media(tmp_path_factory, shared_models) -> Path:
    d = tmp_path_factory.mktemp("cli-errors")
    shutil.copy(ROOT / "examples" / "bird.bmp", d / "bird.bmp")
    make_clip(d / "clip.mp4", frames=3)
    (d / "notes.txt").write_text("not media\n")
    (d / "two.txt").write_text("background\nthing\n")
    shutil.copy(shared_models / "pascal_voc_labels.txt", d / "names.json")  # a labels file, whatever its name
    corner_image(40, 30).save(d / "beach.png")
    (d / "folder").mkdir()
    shutil.copy(d / "clip.mp4", d / "folder" / "a.mp4")
    os.symlink(d / "clip.mp4", d / "link.mp4")
    return d


def snapshot(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}


# (name, arguments with {d} for the media folder, exit status, words of the one error line)
PHOTO, VIDEO, OUT_PNG, OUT_MP4 = "{d}/bird.bmp", "{d}/clip.mp4", "{d}/o/out.png", "{d}/o/out.mp4"
CASES = [
    ("mode typo", [PHOTO, "-o", OUT_PNG, "--mode", "maks"], 2,
     "unknown --mode 'maks' (did you mean mask?); choose from overlay, mask, side-by-side, blur-background"),
    ("speed typo", [VIDEO, "-o", OUT_MP4, "--speed", "fast"], 2, "unknown --speed 'fast'"),
    ("resize typo", [PHOTO, "-o", OUT_PNG, "--resize", "crop"], 2, "choose from stretch, letterbox"),
    ("temporal typo", [VIDEO, "-o", OUT_MP4, "--temporal", "yes"], 2, "unknown --temporal 'yes'; choose from on, off"),
    ("labels format typo", ["{d}/folder", "-o", "{d}/o/", "--labels-out-format", "csv"], 2,
     "unknown --labels-out-format 'csv'"),
    ("threads 0", [PHOTO, "-o", OUT_PNG, "--threads", "0"], 2, "--threads must be at least 1, not 0."),
    ("threads word", [PHOTO, "-o", OUT_PNG, "--threads", "two"], 2, "--threads takes a whole number, not 'two'."),
    ("alpha 2", [PHOTO, "-o", OUT_PNG, "--alpha", "2"], 2, "--alpha must be between 0 and 1"),
    ("alpha word", [PHOTO, "-o", OUT_PNG, "--alpha", "half"], 2, "--alpha takes a number, not 'half'."),
    ("max frames 0", [VIDEO, "-o", OUT_MP4, "--max-frames", "0"], 2, "--max-frames must be at least 1"),
    ("workers 0", ["{d}/folder", "-o", "{d}/o/", "--workers", "0"], 2, "--workers must be at least 1"),
    ("unknown option", [PHOTO, "-o", OUT_PNG, "--colour", "red"], 2, "unknown option or extra argument: --colour"),
    ("no input", ["-o", OUT_PNG], 2, "give an input file"),
    ("no -o", [PHOTO], 2, "-o OUTPUT is needed"),
    ("-o without value", [PHOTO, "-o"], 2, "--output needs a value."),
    ("unknown model", [PHOTO, "-o", OUT_PNG, "--model", "deeplab-v3"], 2, "Unknown model 'deeplab-v3'"),
    ("class id out of range", [PHOTO, "-o", OUT_PNG, "--classes", "99"], 2,
     "Unknown class id 99: the model's classes are 0 to 31."),
    ("class name", [PHOTO, "-o", OUT_PNG, "--classes", "unicorn"], 2, "Unknown class 'unicorn'"),
    ("missing labels file", [PHOTO, "-o", OUT_PNG, "--labels", "{d}/nope.txt"], 2,
     "cannot read {d}/nope.txt: no such file or folder."),
    ("short labels file", [PHOTO, "-o", OUT_PNG, "--model", "deeplabv3-pascal", "--labels", "{d}/two.txt"], 2,
     "The labels file two.txt holds 2 names; the model deeplabv3-pascal has 21 classes."),
    ("background in overlay", [PHOTO, "-o", OUT_PNG, "--background", "red"], 2,
     "--background has no effect in overlay mode"),
    ("blur in mask", [PHOTO, "-o", OUT_PNG, "--mode", "mask", "--blur", "5"], 2, "--blur has no effect in mask mode"),
    ("feather in overlay", [PHOTO, "-o", OUT_PNG, "--feather", "2"], 2, "--feather has no effect in overlay mode"),
    ("matte in overlay", [PHOTO, "-o", OUT_PNG, "--matte", "selfie"], 2, "--matte has no effect in overlay mode"),
    ("matte typo", [PHOTO, "-o", OUT_PNG, "--mode", "blur-background", "--matte", "selfy"], 2,
     "unknown --matte 'selfy' (did you mean selfie?); choose from auto, selfie, pascal, model"),
    ("person matte for cars", [PHOTO, "-o", OUT_PNG, "--mode", "blur-background", "--matte", "pascal",
                               "--classes", "car"], 2, "--matte pascal makes a person matte, but the foreground (car)"),
    ("alpha in an effect", [PHOTO, "-o", OUT_PNG, "--mode", "blur-background", "--alpha", "0.3"], 2,
     "--alpha has no effect in blur-background mode"),
    ("outlines in an effect", [PHOTO, "-o", OUT_PNG, "--mode", "remove-background", "--no-outlines"], 2,
     "--no-outlines has no effect in remove-background mode"),
    ("key colour with alpha", [PHOTO, "-o", OUT_PNG, "--mode", "remove-background", "--background", "red"], 2,
     "--background has no effect for remove-background to out.png"),
    ("speed for a photo", [PHOTO, "-o", OUT_PNG, "--speed", "realtime"], 2, "--speed is for videos; bird.bmp is an image."),
    ("max frames for a photo", [PHOTO, "-o", OUT_PNG, "--max-frames", "3"], 2, "--max-frames is for videos"),
    ("timeline for a photo", [PHOTO, "-o", OUT_PNG, "--timeline-out", "{d}/o/t.csv"], 2, "--timeline-out is for videos"),
    ("timeline not csv", [VIDEO, "-o", OUT_MP4, "--timeline-out", "{d}/o/t.txt"], 2, "--timeline-out must be a .csv"),
    ("photo labels npz", [PHOTO, "-o", OUT_PNG, "--labels-out", "{d}/o/x.npz"], 2,
     "--labels-out for an image must be a .png, .zip or .json file, not 'x.npz'."),
    ("photo to mp4", [PHOTO, "-o", OUT_MP4], 2, "bird.bmp is an image: the output must be"),
    ("video to png", [VIDEO, "-o", OUT_PNG], 2, "clip.mp4 is a video: the output must be"),
    ("photo onto itself", [PHOTO, "-o", PHOTO], 2, "-o {d}/bird.bmp is the input {d}/bird.bmp itself"),
    ("video onto itself", [VIDEO, "-o", VIDEO, "--max-frames", "2"], 2, "is the input {d}/clip.mp4 itself"),
    ("labels onto the input", [VIDEO, "-o", OUT_MP4, "--labels-out", VIDEO], 2, "--labels-out {d}/clip.mp4 is the input"),
    ("timeline onto the input", [VIDEO, "-o", OUT_MP4, "--timeline-out", VIDEO], 2, "--timeline-out {d}/clip.mp4 is"),
    ("output is a link to the input", [VIDEO, "-o", "{d}/link.mp4"], 2, "-o {d}/link.mp4 is the input {d}/clip.mp4"),
    ("input is a link to the output", ["{d}/link.mp4", "-o", VIDEO], 2, "is the input {d}/link.mp4 itself"),
    ("output onto the background image", [PHOTO, "-o", "{d}/beach.png", "--mode", "replace-background",
                                          "--background", "{d}/beach.png"], 2, "is the input {d}/beach.png itself"),
    ("labels onto the labels file", [PHOTO, "-o", OUT_PNG, "--model", "deeplabv3-pascal", "--labels",
                                     "{d}/names.json", "--labels-out", "{d}/names.json"], 2,
     "--labels-out {d}/names.json is the input {d}/names.json itself"),
    ("several inputs, file -o", [PHOTO, VIDEO, "-o", "{d}/o/a.mp4"], 2, "-o {d}/o/a.mp4 names a file; give a folder"),
    ("folder into a file name", ["{d}/folder", "-o", "{d}/o/out.png"], 2, "names a file; give a folder"),
    ("output under a file", [PHOTO, "-o", "{d}/bird.bmp/x.png"], 2,
     "cannot write {d}/bird.bmp/x.png: {d}/bird.bmp is a file, not a folder."),
    ("missing input", ["{d}/nope.mp4", "-o", OUT_MP4], 2, "File not found: {d}/nope.mp4"),
    ("text as input", ["{d}/notes.txt", "-o", OUT_MP4], 2, "notes.txt is not a video file FFmpeg can read"),
    ("batch flag for one file", [PHOTO, "-o", OUT_PNG, "--workers", "2"], 2, "--workers: batch options"),
    ("labels-out in a batch", ["{d}/folder", "-o", "{d}/o/", "--labels-out", "{d}/o/x.npz"], 2,
     "--labels-out names one file; in a batch use --labels-out-format instead."),
    ("list classes of an unknown model", ["--list-classes", "nosuch"], 2, "Unknown model 'nosuch'"),
]


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = cli.main(args)
    except SystemExit as exc:  # argparse's own exits
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("name, args, rc, words", CASES, ids=[c[0] for c in CASES])
def test_bad_usage(media, capsys, shared_models, name, args, rc, words):
    before = snapshot(media)
    args = [a.format(d=media) for a in args]
    code, out, err = run_main(args, capsys)
    lines = err.strip().splitlines()
    assert code == rc, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words.format(d=media) in lines[0], lines[0]
    assert "usage:" not in err
    for bad in ("Traceback", "Errno", ".part", "<Mode."):
        assert bad not in err + out, err
    assert snapshot(media) == before, "an input changed or an output was written"
    assert not (media / "o").exists() or not any((media / "o").iterdir())


def test_there_are_at_least_30_bad_usages():
    assert len(CASES) >= 30


@pytest.mark.parametrize("args, words", [
    (["{d}/bird.bmp", "-o", "{d}/bird.bmp"], "is the input"),
    (["{d}/bird.bmp", "-o", "{d}/o/x.png", "--mode", "maks"], "unknown --mode 'maks' (did you mean mask?)"),
])
def test_bad_usage_in_a_fresh_process(media, shared_models, args, words):
    r = run_cli(*[a.format(d=media) for a in args], timeout=120)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_permission_denied_names_the_output_not_a_temporary_file(media, tmp_path, capsys, monkeypatch,
                                                                 shared_models):
    """A folder that cannot be written (as root chmod does not stop us: the error is injected where the
    temporary file is created)."""
    import tempfile

    def denied(*a, dir=None, prefix="", suffix="", **k):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}x1y2z3{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    out = tmp_path / "ro" / "a.png"
    code, _, err = run_main([str(media / "bird.bmp"), "-o", str(out)], capsys)
    assert code == 2 and err.strip() == f"error: cannot write {out}: permission denied.", err


def test_help_lists_examples_exit_codes_and_every_option():
    parser = build_parser()
    text = parser.format_help()
    assert "examples:" in text and "--list-models" in text and "--list-classes" in text
    for code in ("0 ", "1 ", "2 ", "130"):
        assert f"\n  {code}" in text, code
    assert "<Mode." not in text and "{overlay,mask,side-by-side," in text
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help text"
    readme = (ROOT / "README.md").read_text()
    assert "130" in readme and "--list-classes" in readme and "--version" in readme


def test_listings_and_version(capsys, shared_models):
    code, out, _ = run_main(["--list-models"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("autoseg-edgetpu-xs ") and "deeplabv3-pascal " in out
    code, out, _ = run_main(["--list-classes", "deeplabv3-pascal"], capsys)
    assert code == 0 and out.splitlines()[3].split() == ["3", "bird"] and len(out.splitlines()) == 21
    code, out, _ = run_main(["--list-classes"], capsys)  # the --model's: the default
    assert code == 0 and len(out.splitlines()) == 32
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0 and out.strip().split()[-1][0].isdigit()
