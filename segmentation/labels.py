"""Class names and fixed colour palettes for the catalog's label sets.

Colours are fixed per class id, so a class keeps its colour in every frame and
every run: the DeepLab/PASCAL colormap for VOC, the Cityscapes benchmark
colours for Cityscapes, and the ADE20K palette used by the ADE20K benchmark
tools for ADE20K-32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ADE20K_32 = (
    "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed",
    "windowpane", "grass", "cabinet", "sidewalk", "person", "earth", "door", "table",
    "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa",
    "shelf", "house", "sea", "mirror", "rug", "field", "armchair",
)

PASCAL_VOC = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
    "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# The person models (MediaPipe Selfie Segmentation): background, person.
PERSON = ("background", "person")

# Cityscapes *train ids* 0..18, the order the DeepLab Cityscapes model outputs
# (no background class: Coral's labels file puts one first, which is off by one).
CITYSCAPES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)

# The Cityscapes benchmark colours of the 19 train ids (cityscapesScripts labels.py).
_CITYSCAPES_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

# ADE20K SceneParsing palette (classes 1..31 of objectInfo150); "other" is black.
_ADE20K_32_COLORS = (
    (0, 0, 0), (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50),
    (4, 200, 3), (120, 120, 80), (140, 140, 140), (204, 5, 255), (230, 230, 230),
    (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70),
    (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7),
    (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92),
    (112, 9, 255), (8, 255, 214),
)


def pascal_colormap(n: int = 256) -> np.ndarray:
    """The DeepLab/PASCAL VOC colormap: ``n`` RGB colours, bit-interleaved ids."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    ids = np.arange(n)
    for shift in range(7, -1, -1):
        for channel in range(3):
            cmap[:, channel] |= (((ids >> channel) & 1) << shift).astype(np.uint8)
        ids = ids >> 3
    return cmap


def ade20k_palette() -> np.ndarray:
    """256 RGB colours: the ADE20K palette for ids 0..31, PASCAL colours after."""
    pal = pascal_colormap(256)
    pal[: len(_ADE20K_32_COLORS)] = np.array(_ADE20K_32_COLORS, dtype=np.uint8)
    return pal


def cityscapes_palette() -> np.ndarray:
    """256 RGB colours: the Cityscapes colours for train ids 0..18, PASCAL colours after."""
    pal = pascal_colormap(256)
    pal[: len(_CITYSCAPES_COLORS)] = np.array(_CITYSCAPES_COLORS, dtype=np.uint8)
    return pal


def person_palette() -> np.ndarray:
    """256 RGB colours: black background and PASCAL's person colour for id 1, PASCAL colours after."""
    pal = pascal_colormap(256)
    pal[1] = pal[PASCAL_VOC.index("person")]
    return pal


PALETTES = {"pascal": pascal_colormap, "ade20k": ade20k_palette, "cityscapes": cityscapes_palette,
            "person": person_palette}


def palette(name: str) -> np.ndarray:
    """A (256, 3) uint8 RGB palette by name ("pascal", "ade20k", "cityscapes" or "person")."""
    return PALETTES[name]()


def read_labels_file(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one per line in class-id order.

    Reading stops at the first blank line, so files that carry notes after the
    names (like Coral's ``pascal_voc_labels.txt``) work. ``id name`` lines
    (``0 background``) are accepted too.
    """
    names: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            if names:
                break
            continue
        first, _, rest = line.partition(" ")
        names.append(rest.strip() if first.isdigit() and rest.strip() else line)
    return tuple(names)


def generic_labels(n: int) -> tuple[str, ...]:
    """Placeholder names ``class 0`` .. ``class n-1`` for models without labels."""
    return tuple(f"class {i}" for i in range(n))
