"""The installable package: build the wheel, install it in a fresh venv, run it from elsewhere.

The wheel is built from a copy of the checkout (so no ``build/`` or ``*.egg-info`` is left in
it) without build isolation (offline: the running Python's setuptools builds it), installed with
``--no-deps`` into a venv that sees the system site-packages (the dependencies come from there),
and the ``segmentation`` console command then segments a photo from a folder outside the
checkout: no ``SEGMENTATION_WEIGHTS``, an empty HOME, the network blocked (``offline_guard``).
The embedded models come from the installed ``segmentation_weights`` package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from offline_guard import child_env, offline  # noqa: F401 (fixture)
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "examples" / "bird.bmp"  # 512x343


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kwargs)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_wheel_installs_and_runs_from_anywhere_offline(tmp_path, offline):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".gradio", "artifacts", "__pycache__", ".pytest_cache", ".benchmarks", "build", "dist",
        "*.egg-info", "tfhub", "*.part"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", src, "-w", wheels, "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet"], cwd=tmp_path)
    [wheel] = wheels.glob("video_segmentation-0.3.0-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("autoseg_edgetpu_xs_scores64.tflite", "autoseg_edgetpu_xs_fused_argmax.tflite",
              "deeplabv3_mnv2_pascal_quant.tflite", "deeplabv3_mnv2_dm05_pascal_quant.tflite",
              "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite", "selfie_segmentation.tflite",
              "selfie_segmentation_landscape.tflite", "LICENSE"):
        assert f"segmentation_weights/{f}" in names
    assert "segmentation/cli.py" in names and not [n for n in names if n.startswith(("tests/", "examples/"))]

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    py, command = venv / "bin" / "python", venv / "bin" / "segmentation"
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = child_env(offline)
    r = _run([py, "-c", "import segmentation, segmentation.weights as w; print(segmentation.__file__); "
                        "print(w.cache_dirs()[0])"], cwd=elsewhere, env=env)
    module, first_dir = r.stdout.split("\n")[:2]
    assert Path(module).is_relative_to(venv) and not Path(module).is_relative_to(ROOT), module
    assert Path(first_dir).name == "segmentation_weights" and Path(first_dir).is_relative_to(venv), first_dir

    out = elsewhere / "bird_segmented.png"
    r = _run([command, PHOTO, "-o", out], cwd=elsewhere, env=env)
    assert "autoseg-edgetpu-xs" in r.stderr, r.stderr
    assert Image.open(out).size == Image.open(PHOTO).size == (512, 343)
    # A bad input: a non-zero exit status from the console script, as from python -m segmentation.
    bad = subprocess.run([command, elsewhere / "missing.jpg", "-o", elsewhere / "x.png"], cwd=elsewhere,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad
    assert not (elsewhere / "x.png").exists()
