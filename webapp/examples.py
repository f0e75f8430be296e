"""Example media for the app: public files shipped in ``examples/``, pinned by sha256.

Each example is a public file with a pinned sha256 and its licence, committed
in the project's ``examples/`` folder (attribution in ``examples/README.md``).
The app calls ``ensure_examples`` at start: a file there with the right hash is
used as it is; a missing or damaged one is copied from a local folder named in
``SEGMENTATION_EXAMPLES_SOURCE`` (several folders separated by ``os.pathsep``;
the tests point it at ``../shared/videos`` and ``../shared/images``), or
downloaded with ``weights.download`` (the same verified, atomic downloader the
model cache uses) where the shipped file is the published one unchanged. A file
whose hash does not match is never used and never left under its name. Without
any of these the app simply starts without the missing examples (one log line).

Each example also carries the settings its row in the app's example table
uses (model, output mode, speed), so the rows are data, not UI code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from segmentation import weights
from segmentation.files import atomic_path

from segmentation import config

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parent.parent  # the repository: app.py, webapp/, segmentation/
EXAMPLES_DIR = _ROOT / "examples"  # the shipped files
POSTERS_DIR = _ROOT / ".gradio" / "example-posters"  # their thumbnails, made at start (``poster``)
ENV_SOURCE = "SEGMENTATION_EXAMPLES_SOURCE"

_INTEL = "https://github.com/intel-iot-devkit/sample-videos/raw/master/"
_CORAL = "https://github.com/google-coral/test_data/raw/master/"


@dataclass(frozen=True)
class ExampleFile:
    """One example: where it comes from, its pinned hash, licence, and its row's settings."""

    name: str
    url: str
    sha256: str
    title: str
    author: str
    licence: str
    licence_url: str
    source_page: str
    model: str = "autoseg-edgetpu-xs"
    mode: str = "overlay"
    speed: str = "realtime"
    alpha: float = 0.5
    # sha256 of the file at ``url`` when the shipped file is a trimmed copy of it (see
    # examples/README.md); such a file cannot be downloaded, only shipped or copied.
    source_sha256: str | None = None
    # the thumbnail: the frame at this time (s) of a video (one where the subject is in view)
    poster_at: float = 0.0
    # what the example's legend must name with its model (tests/webapp/test_examples.py checks it)
    expect: tuple[str, ...] = ()

    def settings_line(self) -> str:
        """What choosing this example sets, in words, for the line under the examples."""
        text = f"model {self.model}, output {self.mode}"
        if self.mode in ("overlay", "side-by-side"):
            text += f", opacity {self.alpha:g}"
        if not self.name.endswith(PHOTO_SUFFIXES):
            text += f", speed {self.speed}"
        return text

    def short_settings(self) -> str:
        """The settings in a few words, for the example's row: "deeplab-cityscapes · overlay · realtime"."""
        parts = [self.model, self.mode] + ([] if self.name.endswith(PHOTO_SUFFIXES) else [self.speed])
        return " · ".join(parts)


PHOTO_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".webp")


def _intel_video(name: str, sha256: str, title: str, model: str, mode: str, speed: str = "realtime",
                 folder: str = "", source_sha256: str | None = None, poster_at: float = 0.0,
                 expect: tuple[str, ...] = ()) -> ExampleFile:
    return ExampleFile(name=name, url=_INTEL + folder + name, sha256=sha256, title=title,
                       author="Intel Corporation (intel-iot-devkit/sample-videos)", licence="CC BY 4.0",
                       licence_url="https://creativecommons.org/licenses/by/4.0/",
                       source_page="https://github.com/intel-iot-devkit/sample-videos",
                       model=model, mode=mode, speed=speed, source_sha256=source_sha256,
                       poster_at=poster_at, expect=expect)


# Each with the model that knows what is in it (its legend names it: tests/webapp/test_examples.py):
# ADE20K (Autoseg) for rooms and shops, Cityscapes for the overhead parking lot (road and car;
# ADE20K calls it all "wall", PASCAL "background"), PASCAL VOC for people, bottles and the bird
# (ADE20K has no bird: grass and person).
EXAMPLES: tuple[ExampleFile, ...] = (
    _intel_video("classroom.gif", "9efb6cab2f7392aa3bd15320313db691cfc97270a37cd2b48791f3b032b69da8",
                 "Classroom (video)", "autoseg-edgetpu-xs", "overlay", "accurate", folder="preview/",
                 expect=("person", "chair", "table")),
    _intel_video("car-detection.mp4", "d31e0ebf194cc16e50eea784e7c3b0b1bb7976a4fb9b3fec26cb92a6704cca34",
                 "Parking lot (video)", "deeplab-cityscapes", "overlay", poster_at=16.0,
                 expect=("road", "car")),
    _intel_video("store-aisle-detection.gif", "8f29af471b7df06c4eda38b72c22a86ee4779dfeff91c750b4f8087441ddb4d3",
                 "Store aisle (video)", "autoseg-edgetpu-xs", "side-by-side", "accurate", folder="preview/",
                 expect=("shelf", "floor", "person")),
    _intel_video("one-by-one-person-detection.mp4", "e00581c1cec7f48de58352db00e35a445f3880e12cc1aee88fce152d01f49ec2",
                 "People walking by (video)", "deeplabv3-pascal", "overlay",
                 source_sha256="a5964aa259099a482a8b360ffc2c57b5a30f84d5919236a4dad01f8e929ac07c", poster_at=30.0,
                 expect=("person",)),
    _intel_video("bottle-detection.mp4", "d52ba94aedf8a923c342fe9ea1d2bd85f712c4cc0f49a6de1bac43eebe3a48ff",
                 "Bottles on a table (video)", "deeplabv3-pascal", "mask", poster_at=10.0, expect=("bottle",)),
    ExampleFile(
        name="bird.bmp", url=_CORAL + "bird.bmp",
        sha256="3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994",
        title="Bird (photo)",
        author="Open Images Dataset V5 contributor, via google-coral/test_data",
        licence="CC BY 2.0", licence_url="https://creativecommons.org/licenses/by/2.0/",
        source_page=("https://storage.googleapis.com/openimages/web/visualizer/index.html"
                     "?set=train&type=detection&c=%2Fm%2F015p6&id=05cae1286a212d52"),
        model="deeplabv3-pascal", mode="overlay", speed="accurate", expect=("bird",),
    ),
)


def source_dirs(value: str | None = None) -> list[Path]:
    """Local folders to copy examples from: ``value`` or ``$SEGMENTATION_EXAMPLES_SOURCE``."""
    raw = config.read(ENV_SOURCE) if value is None else value
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def _copy_verified(src: Path, dest: Path, sha256: str) -> Path:
    """Copy ``src`` onto ``dest`` atomically if (and only if) its sha256 matches."""
    if weights.sha256_file(src) != sha256:
        raise ValueError(f"{src}: sha256 mismatch, expected {sha256}")
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        if weights.sha256_file(tmp) != sha256:  # the source changed under us
            raise ValueError(f"{src}: changed while copying")
    return dest


def fetch_example(example: ExampleFile, dest_dir: Path = EXAMPLES_DIR, sources: Iterable[Path] = (),
                  download: bool = True, timeout: float = 20.0) -> Path:
    """The verified local copy of one example: already in ``dest_dir`` (by default the shipped
    ``examples/`` folder), copied from a source folder, or downloaded.

    Raises ``OSError`` (with every attempt listed) when none of these works.
    """
    dest = Path(dest_dir) / example.name
    if dest.is_file() and weights.sha256_file(dest) == example.sha256:
        return dest
    errors: list[str] = []
    for folder in sources:
        candidate = Path(folder) / example.name
        if not candidate.is_file():
            continue
        try:
            return _copy_verified(candidate, dest, example.sha256)
        except (OSError, ValueError) as exc:
            errors.append(str(exc))
    if download and example.source_sha256:
        errors.append(f"{example.url} is the untrimmed original (sha256 {example.source_sha256}), "
                      "not the shipped file")
    elif download:
        try:
            return weights.download(example.url, dest, example.sha256, timeout=timeout)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            errors.append(f"{example.url}: {exc}")
    else:
        errors.append("downloads disabled")
    raise OSError(f"{example.name}: " + "; ".join(errors))


def ensure_examples(dest_dir: Path = EXAMPLES_DIR, sources: Iterable[Path] | None = None,
                    download: bool | None = None, timeout: float = 20.0,
                    examples: Iterable[ExampleFile] = EXAMPLES) -> list[tuple[ExampleFile, Path]]:
    """Every example that could be made available, with its verified local path.

    ``download`` defaults to True unless ``SEGMENTATION_EXAMPLES_DOWNLOAD=0``.
    Missing examples are logged in one line; this never raises for a network problem.
    """
    sources = source_dirs() if sources is None else list(sources)
    if download is None:
        download = config.read("SEGMENTATION_EXAMPLES_DOWNLOAD")
    got: list[tuple[ExampleFile, Path]] = []
    missing: list[str] = []
    for ex in examples:
        try:
            got.append((ex, fetch_example(ex, dest_dir, sources, download, timeout)))
        except OSError as exc:
            missing.append(str(exc))
    if missing:
        log.warning("Examples: %d of %d unavailable (offline? set %s to a folder holding them): %s",
                    len(missing), len(missing) + len(got), ENV_SOURCE, " | ".join(missing))
    return got


def results_cache_dir(base: str | Path = ".gradio/cached_examples") -> Path:
    """A folder for the app's cached example results, named after the code that makes them.

    Gradio serves cached example results until its cache folder is deleted;
    naming the folder after a hash of ``app.py``, this package and the library means a
    changed app or engine computes fresh results instead of serving stale ones.
    """
    h = hashlib.sha256()
    code = [_ROOT / "app.py", *sorted((_ROOT / "webapp").glob("*.py")),
            *sorted((_ROOT / "segmentation").glob("*.py"))]
    for f in code:
        if f.is_file():
            h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes())
    return Path(base) / h.hexdigest()[:12]


def poster(example: ExampleFile, path: Path, dest_dir: Path, width: int = 320) -> Path:
    """The example's thumbnail, a JPEG ``width`` px wide in ``dest_dir``: the photo itself, or the
    video's frame at ``example.poster_at`` (its last frame when it is shorter); made once."""
    import av
    import numpy as np
    from PIL import Image

    dest = Path(dest_dir) / f"{Path(example.name).stem}-{example.sha256[:8]}.jpg"
    if dest.is_file():
        return dest
    if example.name.endswith(PHOTO_SUFFIXES):
        with Image.open(path) as im:
            picture = im.convert("RGB")
    else:
        frame: np.ndarray | None = None
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for f in container.decode(stream):
                frame = f.to_ndarray(format="rgb24")
                if f.time is not None and f.time >= example.poster_at:
                    break
        if frame is None:
            raise OSError(f"{example.name}: no frame to make a thumbnail from")
        picture = Image.fromarray(frame)
    picture.thumbnail((width, width))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        picture.save(tmp, format="JPEG", quality=85)
    return dest
