"""``LabelOutputs``: a video's class maps written to several label files in one pass.

The app asks for a ``.zip`` and a COCO ``.json`` of the same frames; each ``exports`` writer is
fed the same class map and time as the frame is written, so the video is segmented once and no
file is read back. All of them are kept, or none.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from .exports import ExportInfo, LabelsWriter, labels_writer

LabelPaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], None]


def label_paths(labels_out: LabelPaths) -> list[Path]:
    """``labels_out`` as a list of paths: None -> [], one path -> [it], several -> them."""
    if labels_out is None:
        return []
    if isinstance(labels_out, (str, os.PathLike)):
        return [Path(labels_out)]
    return [Path(p) for p in labels_out]


class LabelOutputs:
    """One ``exports`` writer per path (format by suffix), all at ``width`` x ``height``."""

    def __init__(self, paths: Sequence[Path], width: int, height: int, info: ExportInfo):
        self.writers: list[LabelsWriter] = []
        self.finished: list[Path] = []  # files closed onto their names
        try:
            for p in paths:
                self.writers.append(labels_writer(p, width, height, info))
        except BaseException:
            self.discard()
            raise

    def add(self, class_map: np.ndarray, time_s: float) -> None:
        """The next frame's class map, shown at ``time_s`` seconds, into every file."""
        for w in self.writers:
            w.add(class_map, time_s)

    def close(self) -> None:
        """Finish every file (moved onto its name); if one fails, none is left."""
        try:
            for w in self.writers:
                w.close()
                self.finished.append(w.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Take everything back: writers still open are aborted, finished files removed."""
        for w in self.writers:
            if w.path not in self.finished:
                w.abort()
        for p in self.finished:
            p.unlink(missing_ok=True)
        self.finished.clear()
