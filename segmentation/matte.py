"""The person matte: a soft alpha for "person" from the best evidence at hand.

The background effects keep people far better with a matte made for people
than with one semantic class. Each source gives a person *logit* on a fixed
grid (``GRID_WH``), and the matte is their weighted sum plus a bias, so a
source that is sure outvotes one that is not:

* ``selfie``: MediaPipe Selfie Segmentation, the square (256x256) and the
  landscape (256x144) model (~5 + 3 ms): fine edges on hair, shoulders and
  hands; blind to small, distant people.
* ``pascal``: DeepLabV3 PASCAL's ``person`` (~35 ms): finds small and distant
  people, coarse edges.
* ``model``: the chosen semantic model's own person score (free: the model
  runs anyway), e.g. Autoseg's ``person`` logit against the other 31 classes.
* ``auto`` (default): for a photo all three; for a video the landscape selfie
  model and the model's own score (PASCAL on every frame would halve the frame
  rate).

Weights and bias were chosen on ``../shared/people`` with the two halves of the
set held out in turn (``benchmarks/people.py``); under ``auto`` the selfie
models' "no person" is floored (they miss small, distant people, whom the
semantic models see); the edge comes from the
probabilities (the sigmoid of the summed logits, upsampled bilinearly), not
from blurring a hard mask. Over time the logits are fused along the optical
flow like the class scores (``temporal``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Sequence

import cv2
import numpy as np

from .errors import InputError, parse_choice

GRID_WH = (256, 256)  # (width, height) of the logit grid: the selfie model's own resolution
PERSON = "person"
SELFIE_ID = "selfie-segmentation"
LANDSCAPE_ID = "selfie-segmentation-landscape"
PASCAL_ID = "deeplabv3-pascal"
_CLASS_ID_LOGIT = 4.0  # a class-id model's person share f in 0..1 counts as the logit (2f - 1) * 4


class MatteSource(StrEnum):
    """Where the person matte's evidence comes from (see the module docstring)."""

    AUTO = "auto"
    SELFIE = "selfie"
    PASCAL = "pascal"
    MODEL = "model"


def check_matte(value: object) -> MatteSource:
    """A MatteSource from its name; anything else raises InputError with the choices."""
    return parse_choice(MatteSource, value, "person matte source")


@dataclass(frozen=True)
class MatteWeights:
    """Weight of each source's logit, and the bias added to their sum (positive: lean to person)."""

    selfie: float = 0.5
    landscape: float = 1.0
    model: float = 2.0
    pascal: float = 1.5
    bias: float = 2.0
    # The selfie models are blind to small, distant people: their "no person" counts no lower than
    # this logit, so it cannot veto a group of walkers that the other models see.
    selfie_floor: float = -4.0


STILL_WEIGHTS = MatteWeights()  # photos: every source
# Video frames: the landscape model and the job's own scores (PASCAL or both selfie models on
# every frame would cost more than the effect jobs took before the matte), the two alike: at
# twice the weight Autoseg's "not a person" cut the grey cardigan out of the person video.
VIDEO_WEIGHTS = MatteWeights(selfie=0.0, model=1.0, pascal=0.0, bias=1.0)


def person_ids(labels: Sequence[str]) -> tuple[int, ...]:
    """The ids of the ``person`` class in ``labels`` (empty when the model has none)."""
    return tuple(i for i, name in enumerate(labels) if name.strip().lower() == PERSON)


_models: dict[tuple[str, int | None], object] = {}
_models_lock = threading.Lock()


def person_model(model_id: str, threads: int | None = None):
    """A catalog segmenter for the matte (selfie, landscape, PASCAL), loaded once per process."""
    from .segmenter import Segmenter, SegmenterOptions

    with _models_lock:
        key = (model_id, threads)
        if key not in _models:
            _models[key] = Segmenter(SegmenterOptions(model=model_id, threads=threads))
        return _models[key]


class PersonMatte:
    """Person logits for each frame from the chosen sources; ``alpha`` turns them into a matte.

    ``segmenter`` is the job's semantic model (the ``model`` source);
    ``still`` picks the photo weights (with PASCAL under ``auto``);
    ``load`` gives the other models by catalog id (default: :func:`person_model`).
    """

    def __init__(self, segmenter, source: MatteSource | str = MatteSource.AUTO, *, still: bool = False,
                 load: Callable[[str], object] | None = None):
        self.source = check_matte(source)
        self.segmenter = segmenter
        self.still = still
        self.weights = STILL_WEIGHTS if still else VIDEO_WEIGHTS
        self._ids = person_ids(segmenter.labels)
        if self.source is MatteSource.MODEL and not self._ids:
            raise InputError(f"The model {segmenter.entry.id} has no {PERSON!r} class to make a person matte "
                             "from: choose --matte auto, selfie or pascal.")
        # Video: one thread for the small person model, which runs beside a pipeline that already
        # keeps both cores busy (a second thread pool only adds spinning); photos: the model's own.
        threads = 1 if not still else getattr(segmenter.runner, "threads", None)
        load = load or (lambda mid: person_model(mid, threads))
        own = segmenter.entry.id
        self._sources: list[tuple[float, object, float]] = []  # (weight, segmenter, floor) of the extra models
        wanted = {MatteSource.SELFIE: ((SELFIE_ID, 1.0), (LANDSCAPE_ID, 1.0)),
                  MatteSource.PASCAL: ((PASCAL_ID, 1.0),),
                  MatteSource.MODEL: (),
                  MatteSource.AUTO: ((SELFIE_ID, self.weights.selfie), (LANDSCAPE_ID, self.weights.landscape),
                                     (PASCAL_ID, self.weights.pascal))}[self.source]
        auto = self.source is MatteSource.AUTO
        for mid, weight in wanted:
            if weight > 0 and mid != own:
                floor = self.weights.selfie_floor if auto and mid in (SELFIE_ID, LANDSCAPE_ID) else -np.inf
                self._sources.append((weight, load(mid), floor))
        self._own_weight = {MatteSource.MODEL: 1.0, MatteSource.AUTO: self.weights.model}.get(self.source, 0.0)
        if own in (SELFIE_ID, LANDSCAPE_ID, PASCAL_ID) and self.source is not MatteSource.MODEL:
            self._own_weight = max(self._own_weight, 1.0)  # the job's model is one of the sources
        if not self._ids:
            self._own_weight = 0.0
        self._bias = self.weights.bias if self.source is MatteSource.AUTO else 0.0
        total = self._own_weight + sum(w for w, _, _ in self._sources)
        self._norm = 1.0 if self.source is not MatteSource.AUTO else 2.0 / max(total, 1e-6)

    @property
    def uses_model_scores(self) -> bool:
        """Whether :meth:`logits` wants the job's own scores (else they may be None)."""
        return self._own_weight > 0

    def logits(self, rgb: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Person logit (float32, ``GRID_WH``) of an RGB frame; ``scores``: the job's model's
        :meth:`Segmenter.scores` of the same frame (needed when :attr:`uses_model_scores`)."""
        total = np.full((GRID_WH[1], GRID_WH[0]), self._bias, np.float32)
        if self._own_weight:
            if scores is None:
                scores = self.segmenter.scores(rgb)
            total += self._own_weight * model_logit(self.segmenter, scores, self._ids)
        for weight, seg, floor in self._sources:
            total += weight * np.maximum(model_logit(seg, seg.scores(rgb), person_ids(seg.labels)), floor)
        return total * np.float32(self._norm)


def model_logit(segmenter, scores: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """One model's person logit on ``GRID_WH`` from its :meth:`Segmenter.scores`.

    Score models: the person logit against the log-sum-exp of the other
    classes, in real units (quantized scores are scaled back). Class-id
    models (scores = soft one-hot shares): the person share f as
    ``(2f - 1) * 4``, smoothed by a cell so its blocks do not show.
    """
    ids = list(ids)
    if segmenter.has_scores:
        s = scores.astype(np.float32, copy=False) * np.float32(segmenter.runner.score_scale)
        e = np.exp(s - s.max(axis=-1, keepdims=True))  # shifted: no overflow, the ratio is the same
        mine = e[..., ids].sum(axis=-1)
        logit = np.log(np.maximum(mine, 1e-30)) - np.log(np.maximum(e.sum(axis=-1) - mine, 1e-30))
        out = cv2.resize(logit, GRID_WH, interpolation=cv2.INTER_LINEAR)
    else:
        share = scores[..., ids].sum(axis=-1).astype(np.float32)
        out = cv2.resize(share, GRID_WH, interpolation=cv2.INTER_LINEAR)
        out = cv2.GaussianBlur(out, (0, 0), 1.5)
        out = (out * 2 - 1) * np.float32(_CLASS_ID_LOGIT)
    return np.clip(out, -20, 20)


def alpha(logits: np.ndarray) -> np.ndarray:
    """Person logits -> alpha (uint8, 255 = person) on the same grid: the sigmoid, rounded."""
    return (255.0 / (1.0 + np.exp(-logits)) + 0.5).astype(np.uint8)
