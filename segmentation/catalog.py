"""The model catalog: one declarative entry per model the product ships.

An entry says where the weights come from (URLs + pinned sha256, or a TF Hub
handle), what the model expects (input size, how RGB pixels become input
values) and what it returns (class ids or per-class scores), plus its label
names and palette. Anything that can be read from the model file itself
(tensor shapes, dtypes, quantization) is read from it at load time instead.

``resolve_model`` also turns a user-supplied ``.tflite`` path, SavedModel
folder or TF Hub handle into an ad-hoc entry, so every model goes through
the same runner and segmenter code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import labels as _labels
from .errors import ModelError

TFLITE = "tflite"
SAVED_MODEL = "savedmodel"
HUB = "hub"


@dataclass(frozen=True)
class ModelEntry:
    """Everything the engine needs to know about one model.

    ``input_mean``/``input_std`` define the real-valued input the network was
    trained on: ``real = (rgb - mean) / std``. Quantized inputs are derived from
    that and the model's own quantization; ``raw_uint8`` means "feed the uint8
    RGB pixels as they are" (Coral's convention for its uint8 models).
    ``score_upsample`` only matters for score outputs: the per-class scores are
    resized bilinearly by this factor before the argmax (1 = argmax at the
    model's output resolution), and the class map is then scaled to the image
    with nearest neighbour (argmax fusion).
    """

    id: str
    name: str
    format: str
    labels: tuple[str, ...]
    palette: str = "pascal"
    filename: str | None = None
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    handle: str | None = None
    input_size_wh: tuple[int, int] | None = None  # (width, height); None = read from the model
    input_mean: float = 127.5
    input_std: float = 127.5
    raw_uint8: bool = True  # uint8 models: feed pixels as they are (the TFLite/Coral convention)
    output: str = "class_ids"  # "class_ids", "scores", or "probability" (one channel: P(last label))
    score_upsample: int = 1
    derive: str | None = None  # id of the entry this one is derived from (see derive.py)
    cut_tensor: str | None = None  # for derived entries: tensor name the graph is cut at
    dataset: str = ""
    licence: str = ""
    description: str = ""
    local_path: Path | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


_CORAL = "https://github.com/google-coral/test_data/raw/master/"

AUTOSEG_XS_FILE = "autoseg_edgetpu_xs_fused_argmax.tflite"

CATALOG: dict[str, ModelEntry] = {}


def _add(entry: ModelEntry) -> None:
    CATALOG[entry.id] = entry


_add(ModelEntry(
    id="autoseg-edgetpu-xs",
    name="Autoseg-EdgeTPU XS (argmax fusion, fast)",
    format=TFLITE,
    labels=_labels.ADE20K_32,
    palette="ade20k",
    filename="autoseg_edgetpu_xs_scores64.tflite",
    derive="autoseg-edgetpu-xs-published",
    cut_tensor="scores",
    output="scores",
    score_upsample=2,
    input_size_wh=(512, 512),
    dataset="ADE20K (32 classes)",
    licence="Apache-2.0",
    description=(
        "The published Autoseg-EdgeTPU XS graph cut at its 64x64x32 class scores; "
        "scores upsampled 2x bilinear, argmax at 128x128, class map scaled to the "
        "frame with nearest neighbour. Derived once from the verified original."
    ),
))
_add(ModelEntry(
    id="autoseg-edgetpu-xs-published",
    name="Autoseg-EdgeTPU XS (published fused-argmax file)",
    format=TFLITE,
    labels=_labels.ADE20K_32,
    palette="ade20k",
    filename=AUTOSEG_XS_FILE,
    urls=(
        "https://tfhub.dev/google/lite-model/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1?lite-format=tflite",
        "https://storage.googleapis.com/tf_model_garden/models/edgetpu/checkpoint_and_tflite/"
        "vision/segmentation-edgetpu/tflite/fused_argmax/autoseg_edgetpu_xs.tflite",
    ),
    sha256="9b32c61b0d0bdf2fef8bc390aab44d62fef797f62a853e1466c46ef3a2a552b1",
    input_size_wh=(512, 512),
    dataset="ADE20K (32 classes)",
    licence="Apache-2.0",
    description="TF Hub google/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1, lite format, as published.",
))
_add(ModelEntry(
    id="deeplabv3-pascal",
    name="DeepLabV3 MobileNetV2 (PASCAL VOC)",
    format=TFLITE,
    labels=_labels.PASCAL_VOC,
    filename="deeplabv3_mnv2_pascal_quant.tflite",
    urls=(_CORAL + "deeplabv3_mnv2_pascal_quant.tflite",),
    sha256="350af47fd346ea6d74b58833a351f583ba860e9806ec5bd292ff8d8f1f249398",
    input_size_wh=(513, 513),
    dataset="PASCAL VOC 2012 (21 classes)",
    licence="Apache-2.0",
    description="Coral test-data DeepLabV3 with MobileNetV2 backbone, uint8 quantized.",
))
_add(ModelEntry(
    id="deeplabv3-pascal-dm05",
    name="DeepLabV3 MobileNetV2 x0.5 (PASCAL VOC)",
    format=TFLITE,
    labels=_labels.PASCAL_VOC,
    filename="deeplabv3_mnv2_dm05_pascal_quant.tflite",
    urls=(_CORAL + "deeplabv3_mnv2_dm05_pascal_quant.tflite",),
    sha256="0470d2a782aa54eeeb99d32e7b6b3fb7722905c7c4f5d26bd957ec861366d48b",
    input_size_wh=(513, 513),
    dataset="PASCAL VOC 2012 (21 classes)",
    licence="Apache-2.0",
    description="Depth multiplier 0.5: faster, less accurate.",
))
_add(ModelEntry(
    id="deeplab-cityscapes",
    name="DeepLab MobileNet-EdgeTPU (Cityscapes)",
    format=TFLITE,
    labels=_labels.CITYSCAPES,
    palette="cityscapes",
    filename="deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
    urls=(_CORAL + "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",),
    sha256="322fe29945cb1693f426952f2a330ab67ea5678545ddee6f2548e0cfd0ca03e5",
    input_size_wh=(513, 513),
    dataset="Cityscapes (19 classes, train ids)",
    licence="Apache-2.0",
    description="Coral test-data DeepLab with MobileNet-EdgeTPU backbone, uint8 quantized.",
))
_add(ModelEntry(
    id="autoseg-edgetpu-xs-savedmodel",
    name="Autoseg-EdgeTPU XS (TF Hub SavedModel)",
    format=HUB,
    labels=_labels.ADE20K_32,
    palette="ade20k",
    handle="https://tfhub.dev/google/edgetpu/vision/autoseg-edgetpu/fused_argmax/xs/1",
    input_size_wh=(512, 512),
    dataset="ADE20K (32 classes)",
    licence="Apache-2.0",
    description="The same network as a TF Hub SavedModel, run with TensorFlow (slower start).",
))

_MEDIAPIPE = ("https://storage.googleapis.com/mediapipe-assets/",
              "https://github.com/google-ai-edge/mediapipe/raw/v0.10.14/mediapipe/modules/selfie_segmentation/")


def _person_model(id: str, name: str, filename: str, sha256: str, input_size_wh: tuple[int, int],
                  description: str) -> ModelEntry:
    """A MediaPipe Selfie Segmentation entry: float32 RGB in [0, 1] -> person probability."""
    return ModelEntry(id=id, name=name, format=TFLITE, labels=_labels.PERSON, palette="person",
                      filename=filename, urls=tuple(base + filename for base in _MEDIAPIPE), sha256=sha256,
                      input_size_wh=input_size_wh, input_mean=0.0, input_std=255.0, output="probability",
                      dataset="people (MediaPipe, person vs background)", licence="Apache-2.0",
                      description=description)


_add(_person_model(
    "selfie-segmentation", "MediaPipe Selfie Segmentation (people, 256x256)", "selfie_segmentation.tflite",
    "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c", (256, 256),
    "MediaPipe Selfie Segmentation (general) from the mediapipe 0.10.14 wheel, "
    "mediapipe/modules/selfie_segmentation/."))
_add(_person_model(
    "selfie-segmentation-landscape", "MediaPipe Selfie Segmentation landscape (people, 256x144, fast)",
    "selfie_segmentation_landscape.tflite", "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    (256, 144), "The landscape variant (16:9 video calls): faster, and better on wide frames."))

PERSON_MODEL_IDS = ("selfie-segmentation", "selfie-segmentation-landscape")

DEFAULT_MODEL_ID = "autoseg-edgetpu-xs"

_HUB_RE = re.compile(r"^(https?://|gs://)|^[\w.-]+/[\w./-]+/\d+$")


def list_models() -> list[ModelEntry]:
    """Catalog entries in display order (default first)."""
    return list(CATALOG.values())


def resolve_model(spec: str | None = None, labels_file: str | Path | None = None) -> ModelEntry:
    """A catalog id, a ``.tflite`` path, a SavedModel folder or a TF Hub handle -> entry.

    ``labels_file`` overrides the label names (one per line, id order).
    """
    spec = spec or DEFAULT_MODEL_ID
    if spec in CATALOG:
        entry = CATALOG[spec]
    else:
        path = Path(os.path.expanduser(spec))
        if path.is_file():
            if path.suffix.lower() != ".tflite":
                raise ModelError(f"Model file {spec!r} is not a .tflite file; give a .tflite file, "
                                 "a SavedModel folder, a TF Hub handle or one of: " + ", ".join(CATALOG))
            entry = ModelEntry(id=path.stem, name=path.name, format=TFLITE, labels=(),
                               local_path=path.resolve())
        elif path.is_dir():
            if not (path / "saved_model.pb").exists():
                raise ModelError(f"Folder {spec!r} is not a SavedModel (no saved_model.pb inside).")
            entry = ModelEntry(id=path.name, name=path.name, format=SAVED_MODEL, labels=(),
                               local_path=path.resolve())
        elif _HUB_RE.match(spec) and not spec.endswith(".tflite"):
            entry = ModelEntry(id=spec, name=spec, format=HUB, labels=(), handle=spec)
        else:
            raise ModelError(f"Unknown model {spec!r}: not a catalog id ({', '.join(CATALOG)}), "
                             "nor an existing .tflite file or SavedModel folder, nor a TF Hub handle.")
    if labels_file is not None:
        names = _labels.read_labels_file(labels_file)
        if not names:
            raise ModelError(f"Labels file {str(labels_file)!r} holds no names.")
        entry = replace(entry, labels=names)
    return entry
