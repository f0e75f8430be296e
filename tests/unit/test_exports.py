"""Label exports (.npz, .png, .zip of PNGs + labels.json, COCO .json with RLE) and the class-share timeline.

Each format is decoded back and compared pixel for pixel with the .npz class
maps of the same run settings (the model is deterministic): the first 8
frames of bottle-detection.mp4 through the CLI, and bird.bmp. COCO masks are
decoded with pycocotools itself; our numpy RLE is also checked against
``pycocotools.mask.encode`` on random maps.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from media import no_leftovers, read_coco, read_zip, run_cli
from PIL import Image

from segmentation.errors import InputError
from segmentation.exports import ExportInfo, Timeline, labels_writer, rle_encode, rle_string
from segmentation.labels import ADE20K_32, PASCAL_VOC, palette

mask_api = pytest.importorskip("pycocotools.mask")

FRAMES = 8


# -- RLE ------------------------------------------------------------------------------------------
def test_rle_matches_pycocotools():
    rng = np.random.default_rng(0)
    cases = [rng.integers(0, 4, (7, 9)).astype(np.uint8), np.full((5, 6), 9, np.uint8), np.zeros((1, 1), np.uint8)]
    block = np.zeros((40, 50), np.uint8)
    block[10:30, 5:45] = 3
    block[:, -1] = 4  # a class only in the last column: no trailing 0-run
    cases.append(block)
    big = np.zeros((2160, 3840), np.uint8)
    big[-1, -1] = 1  # runs longer than 2**20: six 5-bit groups
    cases.append(big)
    for cm in cases:
        enc = rle_encode(cm)
        assert sorted(enc) == np.unique(cm).tolist()
        for cid, (counts, area, bbox) in enc.items():
            binary = np.asfortranarray((cm == cid).astype(np.uint8))
            ref = mask_api.encode(binary)
            assert rle_string(counts) == ref["counts"].decode()
            assert area == int(mask_api.area(ref)) and np.allclose(bbox, mask_api.toBbox(ref))
            assert counts.sum() == cm.size
            # the uncompressed counts decode too
            unc = mask_api.frPyObjects({"size": list(cm.shape), "counts": counts.tolist()}, *cm.shape)
            assert np.array_equal(mask_api.decode(unc), binary)


def test_timeline_compact_and_exact(tmp_path):
    t = Timeline()
    a = np.zeros(256, np.int64)
    a[[0, 5]] = [30, 10]
    b = np.zeros(256, np.int64)
    b[[5, 200]] = [1, 3]
    t.add(0, 0.0, a)
    t.add(1, 0.04, b)
    assert len(t) == 2 and t.class_ids == [0, 5, 200]
    assert np.allclose(t.shares(), [[0.75, 0.25, 0.0], [0.0, 0.25, 0.75]])
    labels = ["zero"] + [f"c{i}" for i in range(1, 6)]
    rows = list(csv.reader(t.to_csv(tmp_path / "t.csv", labels).open()))
    assert rows[0] == ["time", "frame", "zero", "c5", "class 200"]
    assert [float(v) for v in rows[2]] == pytest.approx([0.04, 1, 0.0, 0.25, 0.75])
    assert len(t._ids) == 4 and t._ids.itemsize == 1 and t._counts.itemsize == 4  # only classes present


# -- writers on synthetic maps ----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npz", ".zip", ".json"])
def test_writers_scale_and_round_trip(tmp_path, suffix):
    maps = [np.kron(np.array([[i % 3, 1], [2, 20]], np.uint8), np.ones((3, 4), np.uint8)) for i in range(5)]
    info = ExportInfo(ADE20K_32, palette("ade20k"), "model-x", 25.0)
    path = tmp_path / f"l{suffix}"
    with labels_writer(path, 16, 12, info) as w:  # maps are 6x8: scaled to 12x16 with nearest neighbour
        for i, m in enumerate(maps):
            w.add(m, i / 25)
    want = np.stack([np.kron(m, np.ones((2, 2), np.uint8)) for m in maps])
    if suffix == ".npz":
        got = np.load(path)["labels"]
    elif suffix == ".zip":
        got, meta = read_zip(path)
        assert meta["model"] == "model-x" and meta["fps"] == 25.0 and (meta["width"], meta["height"]) == (16, 12)
        assert [f["time"] for f in meta["frames"]] == pytest.approx([i / 25 for i in range(5)])
        assert meta["classes"][20] == {"id": 20, "name": "chair", "color": [int(v) for v in palette("ade20k")[20]]}
    else:
        got, doc = read_coco(path)
        assert [im["time"] for im in doc["images"]] == pytest.approx([i / 25 for i in range(5)])
        assert doc["categories"][13]["name"] == "person" and len(doc["categories"]) == 32
    assert np.array_equal(got, want)


@pytest.mark.parametrize("suffix", [".npz", ".zip", ".json", ".png"])
def test_writer_abort_leaves_nothing(tmp_path, suffix):
    path = tmp_path / f"l{suffix}"
    w = labels_writer(path, 4, 4, kind="image" if suffix == ".png" else "video")
    w.add(np.zeros((4, 4), np.uint8))
    w.abort()
    no_leftovers(tmp_path, path)


def test_writer_refusals(tmp_path):
    with pytest.raises(InputError, match=r"\.npz, \.zip or \.json"):
        labels_writer(tmp_path / "l.png", 4, 4)  # a PNG holds one picture: not for a video
    with pytest.raises(InputError, match=r"\.png, \.zip or \.json"):
        labels_writer(tmp_path / "l.npz", 4, 4, kind="image")
    w = labels_writer(tmp_path / "one.png", 4, 4, kind="image")
    w.add(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="one frame"):
        w.add(np.zeros((4, 4), np.uint8))
    w.abort()
    assert not list(tmp_path.iterdir())


# -- real video through the CLI ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bottle_runs(shared_videos, shared_models, tmp_path_factory):
    """8 frames of bottle-detection with each --labels-out format (and the timeline with the .npz run)."""
    d = tmp_path_factory.mktemp("bottle")
    src = shared_videos / "bottle-detection.mp4"
    for suffix in (".npz", ".zip", ".json"):
        extra = ["--timeline-out", str(d / "timeline.csv")] if suffix == ".npz" else []
        r = run_cli(str(src), "-o", str(d / f"out{suffix}.mp4"), "--max-frames", str(FRAMES),
                    "--labels-out", str(d / f"labels{suffix}"), *extra)
        assert r.returncode == 0, r.stderr
    return d


def test_video_zip_matches_npz(bottle_runs):
    ref = np.load(bottle_runs / "labels.npz")["labels"]
    assert ref.shape == (FRAMES, 360, 640)
    got, meta = read_zip(bottle_runs / "labels.zip")
    assert np.array_equal(got, ref)
    assert meta["model"] == "autoseg-edgetpu-xs" and meta["fps"] == pytest.approx(179 / 6)
    assert [f["time"] for f in meta["frames"]] == pytest.approx([i * 6 / 179 for i in range(FRAMES)], abs=1e-3)
    assert [c["name"] for c in meta["classes"]] == list(ADE20K_32)


def test_video_coco_matches_npz(bottle_runs):
    ref = np.load(bottle_runs / "labels.npz")["labels"]
    got, doc = read_coco(bottle_runs / "labels.json")
    assert np.array_equal(got, ref)
    assert [im["frame"] for im in doc["images"]] == list(range(FRAMES))
    assert {(im["width"], im["height"]) for im in doc["images"]} == {(640, 360)}
    assert doc["info"]["model"] == "autoseg-edgetpu-xs"
    cats = {c["id"]: c for c in doc["categories"]}
    assert all(cats[a["category_id"]]["name"] == ADE20K_32[a["category_id"]] for a in doc["annotations"])


def test_video_timeline_csv(bottle_runs):
    ref = np.load(bottle_runs / "labels.npz")["labels"]
    with open(bottle_runs / "timeline.csv", newline="") as f:
        rows = list(csv.reader(f))
    present = sorted(np.unique(ref).tolist())
    assert rows[0] == ["time", "frame", *[ADE20K_32[c] for c in present]]
    assert len(rows) == FRAMES + 1
    for i, row in enumerate(rows[1:]):
        assert float(row[0]) == pytest.approx(i * 6 / 179, abs=1e-3) and int(row[1]) == i
        shares = np.array([float(v) for v in row[2:]])
        want = np.array([(ref[i] == c).mean() for c in present])
        assert np.allclose(shares, want, atol=1e-6) and shares.sum() == pytest.approx(1.0, abs=1e-5)


def test_video_result_timeline(default_segmenter, shared_videos, tmp_path):
    from segmentation.pipeline import VideoOptions, segment_video

    res = segment_video(default_segmenter, shared_videos / "car-detection.mp4", tmp_path / "o.mp4",
                        VideoOptions(max_frames=5), labels_out=tmp_path / "l.npz")
    labels = np.load(tmp_path / "l.npz")["labels"]
    t = res.timeline
    assert len(t) == 5 and list(t.frames) == list(range(5))
    assert list(t.times) == pytest.approx([i / 12.5 for i in range(5)])
    want = np.array([[(m == c).mean() for c in t.class_ids] for m in labels])
    assert np.allclose(t.shares(), want, atol=1e-6)
    assert {it.id for it in res.legend} == set(t.class_ids)


# -- a photo ---------------------------------------------------------------------------------------------
def test_photo_formats_match(shared_images, shared_models, tmp_path):
    src = shared_images / "bird.bmp"
    for suffix in (".png", ".zip", ".json"):
        r = run_cli(str(src), "-o", str(tmp_path / f"out{suffix}.png"), "--model", "deeplabv3-pascal",
                    "--labels-out", str(tmp_path / f"ids{suffix}"))
        assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "ids.png") as im:
        ref = np.array(im)
    assert ref.shape == (343, 512) and set(np.unique(ref)) == {0, PASCAL_VOC.index("bird")}
    z, meta = read_zip(tmp_path / "ids.zip")
    assert np.array_equal(z[0], ref) and len(z) == 1 and meta["fps"] is None
    c, doc = read_coco(tmp_path / "ids.json")
    assert np.array_equal(c[0], ref) and len(doc["images"]) == 1
    assert [cat["name"] for cat in doc["categories"]] == list(PASCAL_VOC)


@pytest.mark.parametrize("case", ["photo npz", "video png", "txt", "timeline txt"])
def test_cli_bad_export_paths(shared_images, shared_videos, shared_models, tmp_path, case):
    photo, clip = shared_images / "bird.bmp", shared_videos / "bottle-detection.mp4"
    out = tmp_path / ("out.png" if case == "photo npz" else "out.mp4")
    labels = tmp_path / {"photo npz": "l.npz", "video png": "l.png", "txt": "l.txt", "timeline txt": "l.npz"}[case]
    args = [str(photo if case == "photo npz" else clip), "-o", str(out), "--labels-out", str(labels),
            "--max-frames", "2"]
    if case == "timeline txt":
        args += ["--timeline-out", str(tmp_path / "t.txt")]
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())

