"""Model runners: LiteRT for TFLite files, TensorFlow for SavedModels / TF Hub.

Both take one RGB uint8 image already resized to the model's input size and
return the model's raw answer for it: a 2-D class-id map, or a 3-D
(height, width, classes) score array. Turning that into a class map of the
image's size is the segmenter's job, the same for every runner.

TensorFlow is imported lazily, only by ``TFRunner``: segmenting with a TFLite
model never imports it (it costs seconds of start-up and hundreds of MB).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .catalog import HUB, SAVED_MODEL, TFLITE, ModelEntry
from .errors import ModelError


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level stderr (fd 2) while any thread is inside; Python-level errors still raise.

    fd 2 belongs to the whole process: two models loading at once must not
    save each other's /dev/null as "the real stderr". The first thread in
    saves it, the last one out restores it.
    """
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                _quiet_saved = os.dup(2)
                with open(os.devnull, "wb") as devnull:
                    os.dup2(devnull.fileno(), 2)
            except OSError:
                _quiet_saved = None
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)
                _quiet_saved = None


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


class Runner(Protocol):
    """One loaded model: its input's ``size_wh``, output kind and classes, fixed at load."""

    input_size_wh: tuple[int, int]
    output_kind: str  # "class_ids" or "scores"
    num_classes: int | None  # score outputs: their channels; class-id outputs: None (not knowable)
    score_scale: float  # real logit units per score unit (quantized outputs); 1.0 otherwise

    def __call__(self, rgb: np.ndarray) -> np.ndarray: ...


def _quant_lut(dtype: np.dtype, scale: float, zero_point: int, mean: float, std: float) -> np.ndarray:
    """256-entry table mapping an RGB byte to the model's quantized input value."""
    info = np.iinfo(dtype)
    real = (np.arange(256, dtype=np.float64) - mean) / std
    q = np.floor(real / scale + zero_point + 0.5)
    return np.clip(q, info.min, info.max).astype(dtype)


class LiteRTRunner:
    """A TFLite model run by the LiteRT interpreter (XNNPACK on CPU)."""

    def __init__(self, path: Path, entry: ModelEntry, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.threads = threads or default_threads()
        try:
            with _quiet_stderr():  # LiteRT prints an INFO line about XNNPACK on every load
                self._interp = Interpreter(model_path=str(self.path), num_threads=self.threads)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"Cannot load TFLite model {self.path.name}: {exc}") from exc
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1:
            raise ModelError(f"{self.path.name}: expected one image input, found {len(inputs)} inputs.")
        self._in = inputs[0]
        self._out = outputs[0]
        shape = self._in["shape"]
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelError(f"{self.path.name}: input shape {list(shape)} is not [1, H, W, 3].")
        self.input_size_wh = (int(shape[2]), int(shape[1]))
        self.input_dtype = np.dtype(self._in["dtype"])
        out_shape = [int(s) for s in self._out["shape"]]
        # [1,H,W] or [1,H,W,1] -> class ids; [1,H,W,C>1] -> scores; a "probability" entry's
        # [1,H,W,1] -> two-class scores (logits of background and the one class)
        self._probability = entry.output == "probability"
        if self._probability and (len(out_shape) != 4 or out_shape[-1] != 1):
            raise ModelError(f"{self.path.name}: output shape {out_shape} is not [1, H, W, 1] (a probability).")
        self.output_kind = ("scores" if self._probability or (len(out_shape) == 4 and out_shape[-1] > 1)
                            else "class_ids")
        self.num_classes = 2 if self._probability else out_shape[-1] if self.output_kind == "scores" else None
        scale = self._out.get("quantization", (0.0, 0))[0]
        # Real units per score unit: quantized logits (Autoseg's int8 scores) are scaled by this.
        self.score_scale = float(scale) if scale and np.dtype(self._out["dtype"]).kind in "iu" else 1.0
        self._lut = None
        scale, zp = self._in.get("quantization", (0.0, 0))
        if self.input_dtype == np.uint8 and entry.raw_uint8:
            self._lut = None
        elif self.input_dtype in (np.int8, np.uint8):
            if not scale:  # unquantized integer input: assume raw bytes (shifted for int8)
                scale, zp = (1.0, -128) if self.input_dtype == np.int8 else (1.0, 0)
                self._lut = _quant_lut(self.input_dtype, scale, zp, 0.0, 1.0)
            else:
                self._lut = _quant_lut(self.input_dtype, scale, zp, entry.input_mean, entry.input_std)
        elif self.input_dtype != np.float32:
            raise ModelError(f"{self.path.name}: unsupported input dtype {self.input_dtype}.")
        self._mean, self._std = entry.input_mean, entry.input_std
        self._lock = threading.Lock()

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) at input size -> the input tensor [1, H, W, 3]."""
        if self.input_dtype == np.float32:
            x = (rgb.astype(np.float32) - self._mean) / self._std
        elif self._lut is not None:
            x = cv2.LUT(rgb, self._lut)  # 5x faster than numpy fancy indexing
        else:
            x = rgb
        return np.ascontiguousarray(x[None])

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = self.prepare(rgb)
        with self._lock:
            self._interp.set_tensor(self._in["index"], x)
            self._interp.invoke()
            out = self._interp.get_tensor(self._out["index"])
        out = out[0]
        if self._probability:
            return probability_scores(out[..., 0])
        if self.output_kind == "class_ids" and out.ndim == 3:
            out = out[..., 0]
        return out


def probability_scores(p: np.ndarray) -> np.ndarray:
    """A probability map (H, W) -> two-class scores (H, W, 2): 0 and the logit, so argmax = p > 0.5."""
    p = np.clip(p.astype(np.float32), 1e-4, 1 - 1e-4)
    out = np.zeros((*p.shape, 2), np.float32)
    out[..., 1] = np.log(p / (1 - p))
    return out


class TFRunner:
    """A SavedModel (local folder) or TF Hub handle run by TensorFlow."""

    def __init__(self, entry: ModelEntry, cache_dir: Path | None = None):
        # TensorFlow logs CUDA/CPU-feature notices straight to fd 2 while importing
        # and loading; errors still raise, and the CLI keeps its one-line messages.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _quiet_stderr():
            import tensorflow as tf  # noqa: F401  (lazy: only SavedModel/Hub models pay for it)
            import tensorflow_hub as hub

        self._tf = tf
        handle = str(entry.local_path) if entry.local_path is not None else entry.handle
        if cache_dir is not None and not os.environ.get("TFHUB_CACHE_DIR"):
            os.environ["TFHUB_CACHE_DIR"] = str(cache_dir / "tfhub")
        try:
            with _quiet_stderr():
                obj = hub.load(handle)
        except Exception as exc:  # tf/hub raise many unrelated types for "cannot load"
            raise ModelError(
                f"Cannot load SavedModel / TF Hub model {handle!r}: {type(exc).__name__}: {exc}. "
                "Without network access, download it elsewhere and give the SavedModel folder instead."
            ) from exc
        sigs = getattr(obj, "signatures", {}) or {}
        self._fn = sigs.get("serving_default") or next(iter(sigs.values()), None)
        if self._fn is not None:
            spec = list(self._fn.structured_input_signature[1].values())[0]
            self._in_name = list(self._fn.structured_input_signature[1].keys())[0]
        elif callable(obj):
            self._fn = obj
            self._in_name = None
            spec = None
        else:
            raise ModelError(f"SavedModel {handle!r} has no serving signature and is not callable.")
        shape = list(spec.shape) if spec is not None else [1, None, None, 3]
        size = entry.input_size_wh
        if size is None:
            if shape[1] is None or shape[2] is None:
                raise ModelError(f"SavedModel {handle!r} has a variable input size; give an entry with input_size_wh.")
            size = (int(shape[2]), int(shape[1]))
        self.input_size_wh = size
        self.input_dtype = np.dtype(spec.dtype.as_numpy_dtype) if spec is not None else np.dtype(np.float32)
        self._mean, self._std = entry.input_mean, entry.input_std
        self._lock = threading.Lock()
        # A SavedModel's signature rarely states its output shape: one run on a blank image tells
        # whether it answers with class ids or scores, and how many classes.
        probe = self._run(np.zeros((size[1], size[0], 3), dtype=np.uint8))
        self.output_kind = "scores" if probe.ndim == 3 and probe.shape[-1] > 1 else "class_ids"
        self.num_classes = int(probe.shape[-1]) if self.output_kind == "scores" else None
        self.score_scale = 1.0

    def _run(self, rgb: np.ndarray) -> np.ndarray:
        tf = self._tf
        if self.input_dtype == np.uint8:
            x = rgb[None]
        else:
            x = ((rgb.astype(np.float32) - self._mean) / self._std)[None].astype(self.input_dtype)
        with self._lock:
            out = self._fn(**{self._in_name: tf.constant(x)}) if self._in_name else self._fn(tf.constant(x))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return np.asarray(out)[0]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        out = self._run(rgb)
        return out[..., 0] if out.ndim == 3 and self.output_kind == "class_ids" else out


def make_runner(entry: ModelEntry, threads: int | None = None) -> Runner:
    """Load the right runner for an entry, fetching (or deriving) weights as needed."""
    from . import weights

    if entry.format == TFLITE:
        if entry.derive:
            from .derive import ensure_derived

            path = ensure_derived(entry)
        else:
            path = weights.fetch(entry)
        return LiteRTRunner(path, entry, threads)
    if entry.format in (SAVED_MODEL, HUB):
        return TFRunner(entry, cache_dir=weights.writable_dir())
    raise ModelError(f"Unknown model format {entry.format!r} for {entry.id!r}.")
