"""Runners: the TFLite path stays TensorFlow-free; SavedModels run through TF Hub end to end;
user-supplied model files; clear errors for models that cannot be used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segmentation import ModelError, Segmenter, SegmenterOptions, cli, resolve_model
from segmentation.catalog import SAVED_MODEL, TFLITE

ROOT = Path(__file__).resolve().parents[2]
RED, GREEN = (220, 30, 30), (30, 220, 30)


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segmentation", *map(str, args)], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=timeout)


def red_green_image(h: int = 120, w: int = 200) -> np.ndarray:
    """Left half red, right half green."""
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = RED
    img[:, w // 2:] = GREEN
    return img


# -- (1) the TFLite path never imports TensorFlow --------------------------------------------
def test_tflite_path_never_imports_tensorflow(shared_models, shared_images, tmp_path):
    proc = run_python(f"""
        import json, sys
        from segmentation import Segmenter, load_image
        seg = Segmenter.create()
        cm = seg.segment(load_image({str(shared_images / 'bird.bmp')!r})).class_map
        api = {{"model": seg.entry.id, "shape": list(cm.shape), "runner": type(seg.runner).__name__,
               "tf": sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_hub', 'keras', 'tf_keras'))}}
        from segmentation import cli
        rc = cli.main([{str(shared_images / 'bird.bmp')!r}, "-o", {str(tmp_path / 'out.png')!r},
                       "--model", "deeplabv3-pascal-dm05", "--legend"])
        print(json.dumps({{"api": api, "rc": rc, "tf_after_cli": "tensorflow" in sys.modules}}))
    """)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["api"]["model"] == "autoseg-edgetpu-xs"
    assert report["api"]["runner"] == "LiteRTRunner"
    assert report["api"]["shape"] == [343, 512]
    assert report["api"]["tf"] == [], f"TFLite segmentation imported {report['api']['tf']}"
    assert report["rc"] == 0 and (tmp_path / "out.png").is_file()
    assert report["tf_after_cli"] is False


# -- (2) tiny SavedModels through the catalog path, TFRunner and TF Hub ------------------------
@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def class_id_savedmodel(tf, tmp_path_factory) -> Path:
    """The TF Hub Autoseg signature: [1,512,512,3] float32 in, [1,512,512] class ids out.

    Class 1 where red > green, else 2 (on the normalised input, like the real model sees it).
    """

    class RedGreen(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 512, 512, 3], tf.float32, name="images")])
        def serve(self, images):
            red, green = images[..., 0], images[..., 1]
            return {"classes": tf.where(red > green, tf.constant(1, tf.int32), tf.constant(2, tf.int32))}

    folder = tmp_path_factory.mktemp("savedmodel") / "red_green"
    module = RedGreen()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="module")
def scores_savedmodel(tf, tmp_path_factory) -> Path:
    """Per-class scores [1,64,64,3] (8x8 average pooling): exercises the argmax-fusion path."""

    class RedGreenScores(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 512, 512, 3], tf.float32, name="images")])
        def serve(self, images):
            x = tf.nn.avg_pool2d(images, 8, 8, "VALID")
            red, green = x[..., 0], x[..., 1]
            return {"scores": tf.stack([tf.fill(tf.shape(red), -5.0), red - green, green - red], axis=-1)}

    folder = tmp_path_factory.mktemp("savedmodel") / "red_green_scores"
    module = RedGreenScores()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


def test_savedmodel_class_ids_end_to_end(class_id_savedmodel):
    from segmentation.runners import TFRunner

    entry = resolve_model(str(class_id_savedmodel))
    assert entry.format == SAVED_MODEL
    assert entry.local_path == class_id_savedmodel.resolve()
    seg = Segmenter(SegmenterOptions(model=str(class_id_savedmodel)))
    assert isinstance(seg.runner, TFRunner)
    assert "tensorflow_hub" in sys.modules  # loaded with hub.load, as TF Hub handles are
    assert seg.input_size_wh == (512, 512)
    img = red_green_image()
    cm = seg.segment(img).class_map
    assert cm.shape == (120, 200) and cm.dtype == np.uint8
    assert np.all(cm[:, :100] == 1) and np.all(cm[:, 100:] == 2)
    assert seg.runner.output_kind == "class_ids"
    # Swapping the halves swaps the classes: the answer really comes from the model.
    cm2 = seg.segment(img[:, ::-1]).class_map
    assert np.all(cm2[:, :100] == 2) and np.all(cm2[:, 100:] == 1)


def test_savedmodel_scores_use_argmax_fusion(scores_savedmodel):
    seg = Segmenter.create(str(scores_savedmodel), resize="letterbox")
    # known at load, before any image: what the model answers and how many classes
    assert seg.runner.output_kind == "scores" and seg.has_scores
    assert seg.runner.num_classes == len(seg.labels)
    img = red_green_image(h=100, w=300)
    low = seg.predict(img)
    assert low.ndim == 2 and low.shape[1] == 64 and low.shape[0] < 64, "argmax at the scores' resolution"
    cm = seg.segment(img).class_map
    assert cm.shape == (100, 300) and cm.dtype == np.uint8
    assert np.all(cm[:, :140] == 1) and np.all(cm[:, 160:] == 2)


def test_savedmodel_through_the_cli(class_id_savedmodel, tmp_path):
    src, out, labels_out = tmp_path / "rg.png", tmp_path / "out.png", tmp_path / "ids.png"
    Image.fromarray(red_green_image()).save(src)
    names = tmp_path / "labels.txt"
    names.write_text("background\nreddish\ngreenish\n")
    proc = run_cli(src, "-o", out, "--model", class_id_savedmodel, "--labels", names,
                   "--labels-out", labels_out, "--legend", "--mode", "mask")
    assert proc.returncode == 0, proc.stderr
    # TensorFlow's start-up chatter (CUDA probing, CPU features) stays off the terminal:
    # stderr holds only the CLI's own summary line.
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rg.png: 200x120 segmented with red_green"), proc.stderr
    with Image.open(labels_out) as im:
        cm = np.asarray(im)
    assert cm.shape == (120, 200)
    assert np.all(cm[:, :100] == 1) and np.all(cm[:, 100:] == 2)
    legend = {line.split()[1]: float(line.split()[2].rstrip("%")) for line in proc.stdout.splitlines()}
    assert legend == {"reddish": 50.0, "greenish": 50.0}
    with Image.open(out) as im:
        assert im.size == (200, 120)


# -- (3) a user-supplied .tflite file with a labels file ---------------------------------------
def test_user_tflite_file_with_labels(shared_models, shared_images, tmp_path):
    model = shared_models / "deeplabv3_mnv2_dm05_pascal_quant.tflite"
    labels = shared_models / "pascal_voc_labels.txt"
    entry = resolve_model(str(model), labels)
    assert entry.format == TFLITE and entry.local_path == model.resolve()
    assert entry.labels[:4] == ("background", "aeroplane", "bicycle", "bird") and len(entry.labels) == 21

    out = tmp_path / "out.png"
    proc = run_cli(shared_images / "bird.bmp", "-o", out, "--model", model, "--labels", labels, "--legend")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.strip().splitlines()]
    names = [r[1] for r in rows]
    assert "bird" in names and "background" in names, proc.stdout
    assert all(not n.startswith("class") for n in names)
    bird = next(r for r in rows if r[1] == "bird")
    assert int(bird[0]) == 3 and float(bird[2].rstrip("%")) > 10.0
    assert out.is_file()


def test_user_tflite_file_without_labels_gets_generic_names(shared_models, shared_images):
    from segmentation import load_image

    seg = Segmenter.create(str(shared_models / "deeplabv3_mnv2_dm05_pascal_quant.tflite"))
    res = seg.segment(load_image(shared_images / "bird_segmentation.bmp"))
    assert res.labels[3] == "class 3"
    assert np.count_nonzero(res.class_map == 3) > 10_000


# -- (4) models that cannot be used ----------------------------------------------------------
def test_unknown_model_id():
    with pytest.raises(ModelError) as info:
        resolve_model("no-such-model")
    msg = str(info.value)
    assert "Unknown model 'no-such-model'" in msg and "autoseg-edgetpu-xs" in msg


def test_non_tflite_file(tmp_path):
    f = tmp_path / "weights.onnx"
    f.write_bytes(b"\x08\x01")
    with pytest.raises(ModelError, match=r"is not a \.tflite file"):
        resolve_model(str(f))


def test_folder_without_saved_model_pb(tmp_path):
    (tmp_path / "variables").mkdir()
    with pytest.raises(ModelError, match=r"not a SavedModel \(no saved_model.pb inside\)"):
        resolve_model(str(tmp_path))


def test_corrupt_tflite_file(tmp_path):
    f = tmp_path / "broken.tflite"
    f.write_bytes(b"TFL3" + b"\x00" * 64)
    with pytest.raises(ModelError, match="broken.tflite"):
        Segmenter.create(str(f))


def test_empty_labels_file(shared_models, tmp_path):
    empty = tmp_path / "labels.txt"
    empty.write_text("\n\n")
    with pytest.raises(ModelError, match="holds no names"):
        resolve_model("deeplabv3-pascal", empty)


def _bad_models(tmp_path: Path) -> dict[str, tuple[str, str]]:
    onnx = tmp_path / "weights.onnx"
    onnx.write_bytes(b"\x08\x01")
    folder = tmp_path / "not_a_savedmodel"
    folder.mkdir()
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x00" * 64)
    return {
        "unknown": ("no-such-model", "Unknown model"),
        "onnx": (str(onnx), "not a .tflite file"),
        "folder": (str(folder), "not a SavedModel"),
        "broken": (str(broken), "Cannot load TFLite model broken.tflite"),
    }


def test_cli_model_errors_exit_1_with_one_line(shared_images, tmp_path, capsys):
    out = tmp_path / "out.png"
    for name, (spec, expected) in _bad_models(tmp_path).items():
        rc = cli.main([str(shared_images / "bird.bmp"), "-o", str(out), "--model", spec])
        captured = capsys.readouterr()
        assert rc == (2 if name == "unknown" else 1), name  # an unknown name is a usage error
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, captured.err)
        assert expected in lines[0], (name, lines[0])
        assert not out.exists()


def test_cli_unknown_model_in_a_fresh_process(shared_images, tmp_path):
    proc = run_cli(shared_images / "bird.bmp", "-o", tmp_path / "out.png", "--model", "no-such-model")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Unknown model 'no-such-model'"), proc.stderr
    assert proc.stdout == ""
