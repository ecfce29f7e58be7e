"""Image preprocessing in NumPy + Pillow, shared by torch training and ONNX Runtime inference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# ImageNet channel statistics: the convention of standard ResNet50 weight files.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ImageError(ValueError):
    """An image file is missing or unreadable, or a size is invalid."""


def load_rgb(path: Path, size: int) -> np.ndarray:
    """One image as uint8 HWC RGB at ``size`` x ``size``; transparency is composited over white."""
    try:
        with Image.open(path) as img:
            rgba = img.convert("RGBA")
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(canvas, rgba).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW, scaled to [0, 1] then standardised per channel."""
    x = images.astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def preprocess_images(paths: Sequence[Path], size: int) -> np.ndarray:
    """Model input for ``paths``: float32 NCHW ``[len(paths), 3, size, size]``."""
    if size < 8:
        raise ImageError(f"image size must be at least 8 pixels, got {size}")
    if not paths:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    return normalise(np.stack([load_rgb(Path(p), size) for p in paths]))
