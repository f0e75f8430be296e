"""The batch on Ray (issue #11): the same jobs as one Ray task each, on a local Ray started here.

The outputs equal the local batch's (class maps compared through the labels
.npz), a rerun skips everything without submitting a task, and a task whose
worker process dies mid-way (``os._exit`` once, noticed through a marker
file) is retried by Ray and still leaves a whole output. The refusals (a
relative OUT_DIR, a missing input) come before Ray is even imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
import media
from media import corner_image, decoded_frames, die_once_while_writing, make_clip, run_cli

from segmentation.batch import REPORT_NAME, BatchOptions, Status, process_one, run_batch

ray = pytest.importorskip("ray")
CLIPS = {"a.mp4": 6, "sub/b.mp4": 4, "sub/long.mp4": 40}
OPTS = BatchOptions(labels_format="npz")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raybatch") / "in"
    (d / "sub").mkdir(parents=True)
    for name, n in CLIPS.items():
        make_clip(d / name, frames=n)
    corner_image(64, 48).save(d / "photo.png")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(600))
    return d


@pytest.fixture(scope="module")
def local_ray(shared_models):
    # The test module's own functions (the crashing task) travel to the workers by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(media)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"SEGMENTATION_WEIGHTS": str(shared_models.resolve())}})
    yield ray
    ray.shutdown()


def labels_of(out: Path) -> dict[str, np.ndarray]:
    """Every class map written: videos' .npz arrays, photos' 8-bit PNGs."""
    maps = {str(p.relative_to(out)): np.load(p)["labels"] for p in sorted(out.rglob("*.labels.npz"))}
    for p in sorted(out.rglob("*.labels.png")):
        with Image.open(p) as im:
            maps[str(p.relative_to(out))] = np.asarray(im)
    return maps


def statuses(report) -> dict[str, str]:
    return {Path(o.input).name: str(o.status) for o in report.outcomes}


def test_ray_batch_equals_local_and_resumes(tree, tmp_path, local_ray):
    local = run_batch([tree], tmp_path / "local", OPTS, workers=0)
    on_ray = run_batch([tree], tmp_path / "ray", OPTS, ray="local")  # Ray is already up: used as it is
    assert statuses(on_ray) == statuses(local) == {
        "a.mp4": "done", "b.mp4": "done", "long.mp4": "done", "photo.png": "done", "broken.mp4": "failed"}
    assert on_ray.runner.startswith("ray, 1 node, 1 thread per task")
    assert len({o.worker for o in on_ray.outcomes if o.status == Status.DONE}) >= 1
    a, b = labels_of(tmp_path / "local"), labels_of(tmp_path / "ray")
    assert sorted(a) == sorted(b) == ["a.labels.npz", "photo.labels.png", "sub/b.labels.npz", "sub/long.labels.npz"]
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert on_ray.frames == local.frames == 6 + 4 + 40 + 1
    rep = json.loads((tmp_path / "ray" / REPORT_NAME).read_text())
    assert rep["summary"]["done"] == 4 and rep["summary"]["failed"] == 1

    again = run_batch([tree], tmp_path / "ray", OPTS, ray="local")
    assert statuses(again) == {"a.mp4": "skipped", "b.mp4": "skipped", "long.mp4": "skipped",
                               "photo.png": "skipped", "broken.mp4": "failed"}
    # ... and the outputs made on Ray are current for a local run too (one manifest format).
    assert run_batch([tree], tmp_path / "ray", OPTS, workers=0).count(Status.SKIPPED) == 4


def die_once_mid_output(job):
    """Runs process_one, but on long.mp4's first attempt kills its own worker process as soon as
    the output's temporary file exists (the video is being written). A marker file remembers it."""
    if job.input.endswith("long.mp4"):
        die_once_while_writing(Path(job.output), Path(job.output).parent / "killed-once.marker")
    return process_one(job)


def test_killed_task_is_retried_and_output_whole(tree, tmp_path, local_ray):
    out = tmp_path / "out"
    rep = run_batch([tree / "sub"], out, OPTS, ray="local", task=die_once_mid_output, ray_max_retries=2)
    assert (out / "killed-once.marker").exists()  # the first attempt did die
    assert statuses(rep) == {"b.mp4": "done", "long.mp4": "done"}
    long = next(o for o in rep.outcomes if o.input.endswith("long.mp4"))
    assert long.worker.split(":")[1] != (out / "killed-once.marker").read_text()  # another process finished it
    assert len(decoded_frames(out / "long.mp4")) == 40
    assert np.load(out / "long.labels.npz")["labels"].shape == (40, 48, 64)
    assert json.loads((out / "long.mp4.json").read_text())["frames"] == 40
    assert not list(out.glob(".*.part"))  # the killed attempt's temporary file was cleared


@pytest.mark.parametrize("case", ["relative", "missing"])
def test_ray_refuses_before_submitting(tree, tmp_path, case):
    """Checked before Ray is imported or reached: the address is a closed port."""
    if case == "relative":
        r = run_cli(str(tree), "-o", "relative/out/", "--ray", "127.0.0.1:1", timeout=60)
        assert "absolute path" in r.stderr
    else:
        r = run_cli(str(tree / "a.mp4"), str(tree / "nope.mp4"), "-o", f"{tmp_path}/out/", "--ray", "127.0.0.1:1",
                    timeout=60)
        assert "nope.mp4" in r.stderr and "before anything is submitted" in r.stderr
        assert not (tmp_path / "out").exists()
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
