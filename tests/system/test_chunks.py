"""One video cut into chunks (issue #18): the stitched result equals a single pass.

Small real clips (frames of bottle-detection at 128x72, H.264 with a keyframe
every 30 frames, AAC audio; one at a variable frame rate with B-frames), the
real default model. Accurate: frame count, every timestamp and the audio
packets equal a single pass's, class maps on >= 99.9% of the pixels of every
frame. Realtime: the labels .npz byte for byte, two runs and --workers 1
against --workers 2 (CLI). On a local Ray: the same output, and a chunk whose
worker is killed mid-chunk is run again.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import media
from media import decoded_frames, die_once_while_writing, run_cli, tone

from segmentation.chunks import plan_chunks, run_chunk, segment_video_chunks, source_index
from segmentation.pipeline import VideoOptions, segment_video
from segmentation.temporal import TemporalOptions
from segmentation.video import read_frames

SIZE = (128, 72)


def make_real_clip(dst: Path, src: Path, n: int, vfr: bool = False, bframes: int = 0, gop: int = 30) -> Path:
    """``n`` frames of ``src`` at SIZE, 90 kHz clock (variable: gaps of 1..4 frames at 30 fps), AAC tone."""
    frames = [cv2.resize(f.rgb, SIZE, interpolation=cv2.INTER_AREA) for f in read_frames(src, n)]
    rng = np.random.default_rng(0)
    gaps = rng.choice([1500, 3000, 4500, 6000], n) if vfr else np.full(n, 3000)
    pts = np.concatenate(([0], np.cumsum(gaps[:-1]))).tolist()
    tb = Fraction(1, 90000)
    with av.open(str(dst), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        s.time_base = s.codec_context.time_base = tb
        s.options = {"preset": "ultrafast", "g": str(gop), "bframes": str(bframes)}
        a = c.add_stream("aac", rate=48000, layout="stereo")
        end, sent = (pts[-1] + 3000) / 90000, 0
        for i, (rgb, p) in enumerate(zip(frames, pts)):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = p, tb
            c.mux(s.encode(f))
            t = p / 90000 if i + 1 < n else end
            while sent < round(t * 48000):
                k = min(1024, round(end * 48000) - sent)
                c.mux(a.encode(tone(sent, k, 48000, "stereo")))
                sent += k
        c.mux(s.encode(None))
        c.mux(a.encode(None))
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory, shared_videos):
    d = tmp_path_factory.mktemp("chunks")
    src = shared_videos / "bottle-detection.mp4"
    return {"cfr": make_real_clip(d / "cfr.mp4", src, 240),
            "vfr": make_real_clip(d / "vfr.mp4", src, 240, vfr=True, bframes=2),
            "long": make_real_clip(d / "long.mp4", src, 700, gop=50)}


def video_packets(path: Path) -> list[int]:
    """Every video packet's pts, on the container's clock, in presentation order."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sorted(int(p.pts * v.time_base * 90000) for p in c.demux(v) if p.pts is not None)


def audio_packets(path: Path) -> list[tuple]:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return [(p.pts, p.duration, bytes(p)) for p in c.demux(a) if p.size]


def agreement(a: Path, b: Path) -> np.ndarray:
    la, lb = np.load(a)["labels"], np.load(b)["labels"]
    assert la.shape == lb.shape
    return (la == lb).reshape(len(la), -1).mean(axis=1)


def test_plan_starts_after_source_keyframes(clips):
    index = source_index(clips["cfr"])
    assert len(index.pts) == 240 and list(index.keyframes) == list(range(0, 240, 30))
    spans = plan_chunks(clips["cfr"], VideoOptions(), 3, min_frames=40)
    # each chunk segments (240 + 2 x 90) / 3 = 140 frames, its warm-up included
    assert [(s.start, s.stop) for s in spans] == [(0, 140), (140, 190), (190, 240)]
    for s in spans[1:]:  # 90 frames of warm-up, reached from the source keyframe before it
        assert s.first - s.seek_index < 30 and s.start - s.first == 90 and s.seek_index % 30 == 0
    rt = plan_chunks(clips["long"], VideoOptions(speed="realtime"), 2)
    assert [(s.start, s.stop, s.first) for s in rt] == [(0, 300, 0), (300, 700, 300)]  # at a restart, no warm-up


@pytest.mark.parametrize("name", ["cfr", "vfr"])
def test_accurate_chunks_equal_a_single_pass(default_segmenter, clips, tmp_path, name):
    src = clips[name]
    one = segment_video(default_segmenter, src, tmp_path / "one.mp4", labels_out=tmp_path / "one.npz")
    many = segment_video_chunks(default_segmenter, src, tmp_path / "many.mp4", workers=2, chunks=3,
                                min_frames=40, labels_out=tmp_path / "many.npz")
    assert many.frames == one.frames == 240
    assert video_packets(tmp_path / "many.mp4") == video_packets(tmp_path / "one.mp4")
    decoded = [round(float(f.time), 6) for f in decoded_frames(tmp_path / "many.mp4")]  # plays through the seams
    assert decoded == [round(float(f.time), 6) for f in decoded_frames(tmp_path / "one.mp4")]
    assert audio_packets(tmp_path / "many.mp4") == audio_packets(tmp_path / "one.mp4")
    assert list(many.timeline.times) == list(one.timeline.times)
    assert list(many.timeline.frames) == list(one.timeline.frames) == list(range(240))
    agree = agreement(tmp_path / "one.npz", tmp_path / "many.npz")
    assert agree.min() >= 0.999, (agree.min(), np.flatnonzero(agree < 0.999))
    # chunks start at 90 and 160: every frame before the first start is the single pass's own
    assert np.all(agree[:90] == 1.0)
    assert not list(tmp_path.glob(".*"))  # the chunks' folder is gone


def test_realtime_is_reproducible_across_runs_and_workers(clips, tmp_path, shared_models):
    """--labels-out .npz byte for byte: two runs in one process, and --workers 2 (two chunks)."""
    src = clips["long"]
    runs = {}
    for tag, extra in (("a", ["--workers", "1"]), ("b", []), ("w2", ["--workers", "2"])):
        r = run_cli(str(src), "-o", str(tmp_path / f"{tag}.mp4"), "--speed", "realtime",
                    "--labels-out", str(tmp_path / f"{tag}.npz"), *extra)
        assert r.returncode == 0, r.stderr
        runs[tag] = (tmp_path / f"{tag}.npz").read_bytes()
    assert runs["a"] == runs["b"] == runs["w2"]
    assert video_packets(tmp_path / "w2.mp4") == video_packets(tmp_path / "a.mp4") == video_packets(src)
    assert audio_packets(tmp_path / "w2.mp4") == audio_packets(tmp_path / "a.mp4")


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_realtime_chunks_at_restarts_are_exact(default_segmenter, clips, tmp_path, suffix):
    """Byte for byte, in the .npz (the chunks' compressed frames taken as they are) and in COCO .json
    (each frame decoded and encoded again)."""
    opts = VideoOptions(speed="realtime", fusion=TemporalOptions(restart_interval=60))
    one, many = tmp_path / f"one{suffix}", tmp_path / f"many{suffix}"
    segment_video(default_segmenter, clips["vfr"], tmp_path / "one.mp4", opts, labels_out=one)
    seen = []
    segment_video_chunks(default_segmenter, clips["vfr"], tmp_path / "many.mp4", opts, workers=2, chunks=4,
                         min_frames=30, labels_out=many, progress=lambda done, total: seen.append((done, total)))
    assert one.read_bytes() == many.read_bytes()
    assert seen[-1] == (240, 240) and all(t == 240 for _, t in seen)  # one count over all chunks
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert video_packets(tmp_path / "many.mp4") == video_packets(tmp_path / "one.mp4")


# -- on Ray ---------------------------------------------------------------------------------------
def die_once_mid_chunk(job):
    """run_chunk, but the first attempt at chunk 1 kills its own worker process as soon as the chunk's
    video is being written (a marker file beside the chunks' folder remembers it)."""
    out = Path(job.output)
    if job.number == 1:
        die_once_while_writing(out, out.parent.parent / "killed-once.marker")
    return run_chunk(job)


def test_ray_chunks_equal_local_and_survive_a_killed_worker(default_segmenter, clips, tmp_path, shared_models):
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(media)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"SEGMENTATION_WEIGHTS": str(shared_models.resolve())}})
    try:
        kw = dict(chunks=3, min_frames=40)
        local = segment_video_chunks(default_segmenter, clips["vfr"], tmp_path / "local.mp4", workers=2,
                                     labels_out=tmp_path / "local.npz", **kw)
        on_ray = segment_video_chunks(default_segmenter, clips["vfr"], tmp_path / "ray.mp4", ray="local",
                                      labels_out=tmp_path / "ray.npz", **kw)
        assert (tmp_path / "ray.npz").read_bytes() == (tmp_path / "local.npz").read_bytes()
        assert video_packets(tmp_path / "ray.mp4") == video_packets(tmp_path / "local.mp4")
        assert on_ray.frames == local.frames == 240

        killed = segment_video_chunks(default_segmenter, clips["vfr"], tmp_path / "killed.mp4", ray="local",
                                      labels_out=tmp_path / "killed.npz", task=die_once_mid_chunk,
                                      ray_max_retries=2, **kw)
        assert (tmp_path / "killed-once.marker").exists()  # the first attempt did die
        assert killed.frames == 240
        assert (tmp_path / "killed.npz").read_bytes() == (tmp_path / "local.npz").read_bytes()
        assert video_packets(tmp_path / "killed.mp4") == video_packets(tmp_path / "local.mp4")
    finally:
        ray.shutdown()


def test_batch_cuts_its_long_input_into_chunks(default_segmenter, clips, tmp_path):
    """One long video and small ones, 2 workers: the long one runs as 2 chunks beside the others, its
    outputs equal a single pass's, its manifest makes a rerun skip it."""
    from media import make_clip

    from segmentation.batch import BatchOptions, Status, run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "long.mp4").write_bytes(clips["long"].read_bytes())
    for i in range(3):
        make_clip(folder / f"small{i}.mp4", frames=12)
    opts = BatchOptions(video=VideoOptions(speed="realtime"), labels_format="npz")
    rep = run_batch([folder], tmp_path / "out", opts, workers=2)
    assert rep.ok and rep.count(Status.DONE) == 4 and rep.frames == 700 + 36
    long = next(o for o in rep.outcomes if o.input.endswith("long.mp4"))
    assert long.worker.startswith("2 chunks on ") and long.frames == 700
    segment_video(default_segmenter, folder / "long.mp4", tmp_path / "one.mp4", VideoOptions(speed="realtime"),
                  labels_out=tmp_path / "one.npz")
    assert (tmp_path / "out" / "long.labels.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()
    assert video_packets(tmp_path / "out" / "long.mp4") == video_packets(tmp_path / "one.mp4")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []
    again = run_batch([folder], tmp_path / "out", opts, workers=2)
    assert again.count(Status.SKIPPED) == 4
