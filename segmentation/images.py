"""Reading still images into RGB uint8 arrays, whatever the file holds.

Handles grayscale, palette, RGBA (composited on white), 16-bit, CMYK and
EXIF-rotated files through Pillow; refuses non-images and absurd sizes with an
``InputError`` that says why.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import config
from .errors import InputError



def default_max_pixels() -> int:
    """Larger images are downscaled to this many pixels before segmenting (``SEGMENTATION_MAX_IMAGE_PIXELS``)."""
    return config.read("SEGMENTATION_MAX_IMAGE_PIXELS")


def hard_max_pixels() -> int:
    """Files beyond this many pixels are refused outright: a decompression-bomb guard
    (``SEGMENTATION_HARD_MAX_IMAGE_PIXELS``)."""
    return config.read("SEGMENTATION_HARD_MAX_IMAGE_PIXELS")


ORIENTATION = 0x0112  # EXIF tag
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def to_rgb(img: Image.Image) -> np.ndarray:
    """A Pillow image in any mode -> (H, W, 3) uint8 RGB, EXIF rotation applied."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def load_image(source: str | Path | bytes, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file (path or bytes) as RGB uint8, downscaling past ``max_pixels``.

    Raises ``InputError`` for missing files, non-images and images over the hard limit.
    """
    max_pixels = default_max_pixels() if max_pixels is None else max_pixels
    hard = hard_max_pixels()
    name = "image" if isinstance(source, bytes) else Path(source).name
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except FileNotFoundError:
        raise InputError(f"File not found: {source}") from None
    except OSError as exc:
        raise InputError(f"Cannot read {name}: {exc.strerror or exc}") from None
    with fp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                Image.MAX_IMAGE_PIXELS = hard
                img = Image.open(fp)
                w, h = img.size
                if w * h > hard:
                    raise InputError(f"{name} is {w}x{h} pixels, over the limit of {hard:,} pixels.")
                if w * h > max_pixels:
                    # draft() lets JPEG decode at reduced size; others are resized after decoding
                    scale = (max_pixels / (w * h)) ** 0.5
                    img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
                img.load()
        except InputError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise InputError(f"{name} is not an image file Pillow can read.") from None
            raise InputError(f"{name} is too large to decode safely: {exc}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name} is damaged or truncated: {exc}") from None
        rgb = to_rgb(img)
    return fit_pixels(rgb, max_pixels)


def fit_pixels(rgb: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downscale (keeping the aspect ratio) so the image has at most ``max_pixels`` pixels."""
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb
    import cv2

    scale = (max_pixels / (h * w)) ** 0.5
    return cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


def displayed_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of an image file as shown (EXIF orientation applied), read from its
    header only; None when Pillow cannot open it (``load_image`` says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if img.getexif().get(ORIENTATION) in (5, 6, 7, 8):  # turned a quarter: sides swap
                    w, h = h, w
                return w, h
    except Exception:
        return None


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Validate/convert an in-memory array to (H, W, 3) uint8 RGB (gray and RGBA accepted)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"Expected an image array of shape (H, W, 3), got {a.shape}.")
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype in (np.float32, np.float64):
        a = np.clip(a * 255.0 + 0.5 if a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InputError(f"Unsupported image dtype {a.dtype}.")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.uint16)
        a = ((a[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha)) // 255).astype(np.uint8)
    return np.ascontiguousarray(a)
