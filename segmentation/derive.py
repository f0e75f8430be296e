"""Derived models: the published Autoseg graph cut at its class scores.

The published "fused argmax" Autoseg-EdgeTPU file ends in a tail built for the
Edge TPU: a bilinear resize of the 64x64x32 class scores to 256x256, an argmax
spelled out with reduce-max/sub/mul ops, and a nearest resize to 512x512. On a
CPU that tail costs about a third of the time. ``cut_at_scores`` rewrites the
flatbuffer so the graph ends at the scores tensor (the input of the first
bilinear resize with one channel per class); the segmenter then does the
argmax at low resolution and scales the class map up with nearest neighbour.

The cut is made from the sha256-verified original with LiteRT's own
flatbuffer tools (no TensorFlow needed) and checked against the hash pinned in
``DERIVED_SHA256``. The result is byte-reproducible, so the project ships it in
``weights/`` (verified like any model file); only where no verified copy is
found is it derived again, written atomically into the writable cache.
"""

from __future__ import annotations

from pathlib import Path

from . import weights
from .catalog import CATALOG, ModelEntry
from .errors import ModelError, WeightsError
from .files import atomic_path

# sha256 of each derived file, as produced by cut_at_scores from the verified original.
DERIVED_SHA256 = {
    "autoseg_edgetpu_xs_scores64.tflite": "acb9d9e8a37dab61266644ee9900b65b4e062421738be31a42a1870b4689eb11",
}


def cut_at_scores(src: Path, dst: Path, num_classes: int) -> str:
    """Write ``src`` cut at its class-score tensor to ``dst``; return the cut tensor's name."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model(str(src))
    sg = model.subgraphs[0]
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    cut_op = None
    for i, op in enumerate(sg.operators):
        code = fbu.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
        if builtin.get(code) == "RESIZE_BILINEAR":
            t = sg.tensors[op.inputs[0]]
            if list(t.shape)[-1] == num_classes:
                cut_op = i
                break
    if cut_op is None:
        raise ModelError(f"{src.name}: no bilinear resize of {num_classes}-class scores to cut at.")
    scores = sg.operators[cut_op].inputs[0]
    sg.operators = sg.operators[:cut_op]
    sg.outputs = [scores]
    for sig in model.signatureDefs or []:
        for out in sig.outputs:
            out.tensorIndex = scores
        del sig.outputs[1:]
    name = sg.tensors[scores].name
    name = name.decode() if isinstance(name, bytes) else name
    with atomic_path(dst) as tmp:
        fbu.write_model(model, str(tmp))
    return name


def ensure_derived(entry: ModelEntry) -> Path:
    """The derived file for ``entry``, made from its verified source on first use."""
    if entry.derive is None or entry.filename is None:
        raise ModelError(f"Model {entry.id!r} is not a derived model.")
    pinned = DERIVED_SHA256.get(entry.filename)
    cached = weights.find_cached(entry.filename, pinned)
    if cached is not None:
        return cached
    source = weights.fetch(CATALOG[entry.derive])  # verified by its pinned sha256
    dst = weights.writable_dir() / entry.filename
    cut_at_scores(source, dst, entry.num_classes)
    got = weights.sha256_file(dst)
    if pinned is not None and got != pinned:
        dst.unlink(missing_ok=True)
        raise WeightsError(f"Derived model {entry.filename} has sha256 {got}, expected {pinned}: "
                           "the LiteRT flatbuffer tools changed; derivation refused.")
    return dst
