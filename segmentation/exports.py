"""Label exports: class maps written as files, one frame at a time, and the class-share timeline.

Every writer has the same interface -- ``add(class_map, time_s)`` per frame,
``close()`` to finish, ``abort()`` to give up -- streams (no frame is held
uncompressed) and writes atomically: the file appears under its name only
when ``close`` succeeds. Class maps of any size are scaled (nearest
neighbour) to the writer's size, the video's or photo's. The format follows
the suffix (:func:`labels_writer`):

* ``.npz`` (videos): ``labels``, uint8 ``[frames, height, width]``.
* ``.png`` (photos): the class ids as one 8-bit greyscale PNG.
* ``.zip``: ``000000.png``, ``000001.png``, ... (8-bit class ids, one per
  frame) and ``labels.json``: the classes (id, name, RGB colour), the model
  id, the size, fps and each frame's index, file and time in seconds.
* ``.json``: COCO style -- ``images`` (id, frame, time, width, height),
  ``categories`` (id = class id, name, colour) and per frame and class
  present an ``annotations`` entry with the mask as compressed RLE
  (``{"size": [h, w], "counts": "..."}``, column-major, what
  ``pycocotools.mask.decode`` reads), its ``area`` and ``bbox`` [x, y, w, h].
  The RLE is computed here with numpy, for every class of a frame in one pass.

``Timeline`` records each frame's class shares compactly (ids and pixel
counts of the classes present) and writes them as CSV.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .classmaps import upscale_nearest
from .errors import InputError
from .files import AtomicFile, atomic_path

LABEL_SUFFIXES = {"video": (".npz", ".zip", ".json"), "image": (".png", ".zip", ".json")}


@dataclass(frozen=True)
class ExportInfo:
    """What an export says about its class ids: names, colours (palette), model id, frame rate."""

    labels: tuple[str, ...] = ()
    palette: np.ndarray | None = field(default=None, repr=False, compare=False)
    model_id: str = ""
    fps: float | None = None

    def classes(self) -> list[dict]:
        """One entry per class: id, name and RGB colour."""
        out = []
        for i, name in enumerate(self.labels):
            color = [int(v) for v in self.palette[i]] if self.palette is not None and i < len(self.palette) else None
            out.append({"id": i, "name": name, "color": color})
        return out


def check_labels_path(path: str | Path, kind: str) -> str:
    """The export format (suffix) of ``path`` for a ``kind`` ("video"/"image") input; else InputError."""
    suffix = Path(path).suffix.lower()
    allowed = LABEL_SUFFIXES[kind]
    if suffix not in allowed:
        what = "a video" if kind == "video" else "an image"
        raise InputError(f"--labels-out for {what} must be a {', '.join(allowed[:-1])} or {allowed[-1]} file, "
                         f"not {Path(path).name!r}.")
    return suffix


def labels_writer(path: str | Path, width: int, height: int, info: ExportInfo = ExportInfo(),
                  kind: str = "video") -> "LabelsWriter":
    """The writer for ``path``'s suffix (see the module docstring); an unknown one is an InputError."""
    if Path(path).suffix == PART_SUFFIX:  # a chunk's part (segmentation.chunks), never a user's file
        return LabelsPartWriter(path, width, height, info)
    return WRITERS[check_labels_path(path, kind)](path, width, height, info)


class LabelsWriter:
    """Base of the export writers: scaling, frame count and times, the atomic file."""

    def __init__(self, path: str | Path, width: int, height: int, info: ExportInfo = ExportInfo()):
        self.path, self.width, self.height, self.info = Path(path), int(width), int(height), info
        self.times = array("d")
        self._file = AtomicFile(self.path)
        self._done = False
        try:
            self._open()
        except BaseException:
            self._file.discard()
            raise

    @property
    def frames(self) -> int:
        return len(self.times)

    def add(self, class_map: np.ndarray, time_s: float = 0.0) -> None:
        """Add the next frame's class map (any size) shown at ``time_s`` seconds."""
        if self._done:
            raise ValueError("The labels writer is closed.")
        cm = np.ascontiguousarray(upscale_nearest(class_map, (self.width, self.height)), dtype=np.uint8)
        self._add(cm, self.frames, float(time_s))
        self.times.append(float(time_s))

    def close(self) -> None:
        """Finish the file and move it onto its name."""
        if self._done:
            return
        try:
            self._finish(self._file.tmp)
            self._file.commit()
            self._done = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Give up: nothing is left at the path (nor beside it)."""
        self._done = True
        try:
            self._release()
        finally:
            self._file.discard()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- per format -----------------------------------------------------------------
    def _open(self) -> None:
        """Open what the format streams into (at ``self._file.tmp``)."""

    def _add(self, cm: np.ndarray, index: int, time_s: float) -> None:
        raise NotImplementedError

    def _finish(self, tmp: Path) -> None:
        """Write the rest and close what ``_open`` opened."""

    def _release(self) -> None:
        """Close what ``_open`` opened, after a failure."""


class LabelsNpzWriter(LabelsWriter):
    """``labels`` (uint8 [frames, h, w]) in a compressed .npz, without holding it all.

    Frames are kept zlib-compressed in memory (class maps compress ~100x) and
    streamed into the zip entry on close, once the frame count is known.
    """

    def _open(self) -> None:
        self._chunks: list[bytes] = []

    def _add(self, cm: np.ndarray, index: int, time_s: float) -> None:
        self._chunks.append(zlib.compress(cm.tobytes(), 1))

    def add_compressed(self, blob: bytes, time_s: float = 0.0) -> None:
        """Add a frame already compressed as this writer keeps it (``zlib`` of its ``height x width``
        uint8 class ids), as a chunk's :class:`LabelsPartWriter` wrote it: no work per frame."""
        if self._done:
            raise ValueError("The labels writer is closed.")
        self._chunks.append(blob)
        self.times.append(float(time_s))

    def _finish(self, tmp: Path) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": (len(self._chunks), self.height, self.width)})
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
            with z.open("labels.npy", "w", force_zip64=True) as f:
                f.write(header.getvalue())
                for c in self._chunks:
                    f.write(zlib.decompress(c))


class LabelsPartWriter(LabelsNpzWriter):
    """A chunk's class maps (``segmentation.chunks``), kept as the .npz writer keeps them: per frame
    the ``zlib`` bytes, written as they are (``PART_MAGIC``, height, width, count, the sizes, the
    bytes), so that joining chunks into an .npz costs no work per frame (:func:`read_part`)."""

    def _finish(self, tmp: Path) -> None:
        sizes = np.array([len(c) for c in self._chunks], dtype="<u8")
        with open(tmp, "wb") as f:
            f.write(PART_MAGIC + np.array([self.height, self.width, len(sizes)], dtype="<u8").tobytes())
            f.write(sizes.tobytes())
            for c in self._chunks:
                f.write(c)


PART_MAGIC = b"SEGPART1"
PART_SUFFIX = ".labelpart"


def read_part(path: str | Path):
    """(height, width, iterator of zlib bytes per frame) of a :class:`LabelsPartWriter` file."""
    f = open(path, "rb")
    if f.read(len(PART_MAGIC)) != PART_MAGIC:
        f.close()
        raise ValueError(f"{Path(path).name} is not a labels part.")
    h, w, n = (int(v) for v in np.frombuffer(f.read(24), dtype="<u8"))
    sizes = np.frombuffer(f.read(8 * n), dtype="<u8")

    def frames():
        with f:
            for size in sizes:
                yield f.read(int(size))

    return h, w, frames()


class LabelsPngWriter(LabelsWriter):
    """One photo's class ids as a single-channel 8-bit PNG."""

    def _add(self, cm: np.ndarray, index: int, time_s: float) -> None:
        if index:
            raise ValueError("A .png label file holds one frame; use .npz, .zip or .json for a video.")
        self._cm = cm

    def _finish(self, tmp: Path) -> None:
        from PIL import Image

        if not self.frames:
            raise ValueError("No frame was added.")
        Image.fromarray(self._cm, mode="L").save(tmp, format="PNG")


def _png(cm: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cm, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("PNG encoding failed.")
    return data.tobytes()


class LabelsZipWriter(LabelsWriter):
    """A zip of 8-bit class-id PNGs (``000000.png`` ...) and ``labels.json``, written as frames come."""

    def _open(self) -> None:
        self._zip = zipfile.ZipFile(self._file.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def _add(self, cm: np.ndarray, index: int, time_s: float) -> None:
        self._zip.writestr(f"{index:06d}.png", _png(cm))  # PNG is compressed already: stored

    def _finish(self, tmp: Path) -> None:
        meta = {
            "model": self.info.model_id, "width": self.width, "height": self.height, "fps": self.info.fps,
            "classes": self.info.classes(),
            "frames": [{"index": i, "file": f"{i:06d}.png", "time": round(t, 6)} for i, t in enumerate(self.times)],
        }
        self._zip.writestr("labels.json", json.dumps(meta, indent=1), compress_type=zipfile.ZIP_DEFLATED)
        self._zip.close()

    def _release(self) -> None:
        self._zip.close()


class CocoJsonWriter(LabelsWriter):
    """COCO-style JSON: annotations (RLE mask, area, bbox per frame and class) streamed to the file,
    ``images`` and ``categories`` written at the end."""

    def _open(self) -> None:
        self._f = open(self._file.tmp, "w", encoding="utf-8")
        info = {"description": "semantic segmentation class maps", "model": self.info.model_id,
                "fps": self.info.fps, "width": self.width, "height": self.height}
        self._f.write('{"info": %s,\n"annotations": [' % json.dumps(info))
        self._next_id = 1  # annotation ids, as image ids, count from 1 (COCO's tools treat 0 as unset)

    def _add(self, cm: np.ndarray, index: int, time_s: float) -> None:
        parts = []
        for cid, (counts, area, bbox) in rle_encode(cm).items():
            ann = {"id": self._next_id, "image_id": index + 1, "category_id": cid,
                   "segmentation": {"size": [self.height, self.width], "counts": rle_string(counts)},
                   "area": area, "bbox": bbox, "iscrowd": 0}
            parts.append(json.dumps(ann, separators=(",", ":")))
            self._next_id += 1
        if parts:
            first = self._next_id - len(parts) == 1
            self._f.write(("\n" if first else ",\n") + ",\n".join(parts))

    def _finish(self, tmp: Path) -> None:
        images = [{"id": i + 1, "frame": i, "time": round(t, 6), "width": self.width, "height": self.height}
                  for i, t in enumerate(self.times)]
        self._f.write('\n],\n"images": %s,\n"categories": %s}\n' % (json.dumps(images), json.dumps(self.info.classes())))
        self._f.close()

    def _release(self) -> None:
        self._f.close()


WRITERS: dict[str, type[LabelsWriter]] = {
    ".npz": LabelsNpzWriter, ".png": LabelsPngWriter, ".zip": LabelsZipWriter, ".json": CocoJsonWriter}


def save_labels(class_map: np.ndarray, path: str | Path, info: ExportInfo = ExportInfo()) -> None:
    """One photo's class map at its own size as .png, .zip or .json (atomically)."""
    h, w = class_map.shape[:2]
    with labels_writer(path, w, h, info, kind="image") as writer:
        writer.add(class_map, 0.0)


# -- run-length encoding (COCO) -----------------------------------------------------------
def rle_encode(class_map: np.ndarray) -> dict[int, tuple[np.ndarray, int, list[int]]]:
    """Every class of a class map as COCO's uncompressed RLE, in one pass.

    Returns ``{class id: (counts, area, bbox)}``: ``counts`` alternate runs of
    0 and 1 over the pixels in column-major (Fortran) order, starting with
    0s (so a mask starting with a 1 has a leading 0) and ending with the last
    run, as ``pycocotools.mask.encode``; ``bbox`` is [x, y, w, h] as its ``toBbox``.
    """
    h, w = class_map.shape[:2]
    flat = np.ascontiguousarray(class_map.T).ravel()
    n = flat.size
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    ends = np.append(starts[1:], n)
    values = flat[starts]
    order = np.argsort(values, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(values[order])) + 1)
    out = {}
    for idx in groups:
        s, e = starts[idx], ends[idx]
        k = len(idx)
        counts = np.empty(2 * k + 1, dtype=np.int64)
        counts[0:2 * k:2] = s - np.concatenate(([0], e[:-1]))
        counts[1:2 * k:2] = e - s
        counts[-1] = n - e[-1]
        if counts[-1] == 0:
            counts = counts[:-1]
        x0, x1 = s // h, (e - 1) // h
        multi = x1 > x0  # a run over several columns covers rows 0 and h-1
        y0 = int(np.where(multi, 0, s % h).min())
        y1 = int(np.where(multi, h - 1, (e - 1) % h).max())
        xa, xb = int(x0.min()), int(x1.max())
        out[int(values[idx[0]])] = (counts, int((e - s).sum()), [xa, y0, xb - xa + 1, y1 - y0 + 1])
    return out


_RLE_CHUNKS = 7  # 5 bits each: enough for any count below 2**34


def rle_string(counts: np.ndarray) -> str:
    """COCO's compressed RLE string of uncompressed ``counts`` (``rleToString`` in maskApi.c, vectorised).

    Each count from the 4th on is stored as the difference to the one two
    before; each value is written in 5-bit groups, low first, with a
    continuation bit (0x20), offset by 48 into printable ASCII.
    """
    c = np.asarray(counts, dtype=np.int64)
    x = c.copy()
    x[3:] -= c[1:-2]
    shifts = 5 * np.arange(_RLE_CHUNKS, dtype=np.int64)
    chunks = (x[:, None] >> shifts) & 0x1F
    used = np.ones(len(x), dtype=np.int64)  # groups needed: x fits 5*used bits, two's complement
    for k in range(1, _RLE_CHUNKS):
        lim = 1 << (5 * k - 1)
        used += (x < -lim) | (x >= lim)
    k = np.arange(_RLE_CHUNKS)
    chunks |= np.where(k < used[:, None] - 1, 0x20, 0)
    return (chunks[k < used[:, None]] + 48).astype(np.uint8).tobytes().decode("ascii")


# -- timeline ----------------------------------------------------------------------------------
class Timeline:
    """Per-frame class shares (time, frame index, share of each class), held compactly.

    A frame costs ~5 bytes per class present (id + uint32 pixel count) plus
    its time and index; ``shares()`` expands them to a dense array on demand.
    """

    def __init__(self):
        self.times = array("d")
        self.frames = array("q")
        self._ids = array("B")
        self._counts = array("I")
        self._ends = array("q")  # end of each frame's entries in _ids/_counts

    def __len__(self) -> int:
        return len(self.times)

    def add(self, frame: int, time_s: float, histogram: np.ndarray) -> None:
        """Record a frame from its 256-bin class histogram (``draw.class_histogram``)."""
        ids = np.flatnonzero(histogram)
        self._ids.frombytes(ids.astype(np.uint8).tobytes())
        self._counts.frombytes(np.asarray(histogram)[ids].astype(np.uint32).tobytes())
        self._ends.append(len(self._ids))
        self.times.append(float(time_s))
        self.frames.append(int(frame))

    def extend(self, other: "Timeline") -> None:
        """Append ``other``'s frames (the next chunk of the same video) after these."""
        base = len(self._ids)
        self._ids.extend(other._ids)
        self._counts.extend(other._counts)
        self._ends.extend(array("q", (e + base for e in other._ends)))
        self.times.extend(other.times)
        self.frames.extend(other.frames)

    @property
    def class_ids(self) -> list[int]:
        """Classes present in any frame, by id."""
        return sorted(set(self._ids))

    def shares(self, class_ids: Sequence[int] | None = None) -> np.ndarray:
        """float32 [frames, len(class_ids)] (default: ``class_ids``): each class's share of each frame, 0..1."""
        cols = self.class_ids if class_ids is None else list(class_ids)
        col = np.full(256, -1, dtype=np.int64)
        col[cols] = np.arange(len(cols))
        ids = np.frombuffer(self._ids, dtype=np.uint8) if len(self._ids) else np.zeros(0, np.uint8)
        counts = np.frombuffer(self._counts, dtype=np.uint32).astype(np.float64) if len(self._counts) else np.zeros(0)
        ends = np.asarray(self._ends, dtype=np.int64)
        row = np.repeat(np.arange(len(ends)), np.diff(np.concatenate(([0], ends))))
        totals = np.bincount(row, weights=counts, minlength=len(ends))
        out = np.zeros((len(ends), len(cols)), dtype=np.float32)
        keep = col[ids] >= 0
        out[row[keep], col[ids][keep]] = counts[keep] / np.maximum(totals[row[keep]], 1)
        return out

    def to_csv(self, path: str | Path, labels: Sequence[str]) -> Path:
        """CSV (atomically): ``time``, ``frame`` and one column per class present, named by class."""
        cols = self.class_ids
        names = [labels[c] if c < len(labels) else f"class {c}" for c in cols]
        shares = self.shares(cols)
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(["time", "frame", *names])
                for t, i, row in zip(self.times, self.frames, shares):
                    out.writerow([f"{t:.6f}", i, *(f"{v:.6f}" for v in row)])
        return Path(path)
