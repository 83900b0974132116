"""Reading photos: any path, PIL image or array as (H, W, 3) uint8 RGB, upright, optionally scaled down.

    from omnitalker.io import load_image
    image = load_image("photo.jpg", max_side=1024)   # EXIF orientation applied; big JPEGs decoded at reduced scale
    pixels = to_rgb_uint8(array)                     # gray / RGBA / 16-bit / float -> (H, W, 3) uint8
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

UINT16_TO_UINT8 = 257.0  # 65535 / 255
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
JPEG_SUFFIXES = {".jpg", ".jpeg"}
EXIF_ORIENTATION_TAG = 0x0112


def fit_within(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side` (aspect kept, never upscaled)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Normalise an array to (H, W, 3) uint8 RGB.

    Accepts gray (H, W) or (H, W, 1), RGB, RGBA (alpha dropped: the face analysis needs the pixels,
    not the transparency), uint8, uint16 (16-bit PNG/TIFF), bool, and floats in [0, 1] (or [0, 255]
    when the maximum exceeds 1).
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(
            f"{name} must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.bool_:
        return np.ascontiguousarray(image.astype(np.uint8) * 255)
    if image.dtype == np.uint16:
        return np.ascontiguousarray(np.round(image / UINT16_TO_UINT8).astype(np.uint8))
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{name} contains NaN/inf pixels")
        peak = 255.0 if image.max() > 1.0 else 1.0
        return np.ascontiguousarray(np.clip(np.round(image / peak * 255.0), 0, 255).astype(np.uint8))
    if np.issubdtype(image.dtype, np.integer):
        return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    raise ValueError(f"{name} has unsupported pixel type {image.dtype}; use uint8, uint16 or float")


def load_image(source: Any, max_side: int | None = None) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB from a path, a PIL image or an array (any pixel format, ``to_rgb_uint8``).

    `max_side`: the longer side is scaled down to at most this (never up). A JPEG file is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg when that still covers `max_side` (a 48 MP photo never exists in memory at
    full size). A file's EXIF orientation (phone photos) is applied, so the face is upright.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        pixels = _load_jpeg(path, max_side)
        if pixels is None:
            pixels = _read_image_file(path)
        pixels = exif_orient(pixels, _exif_orientation(path))
    elif hasattr(source, "mode") and hasattr(source, "size"):  # PIL.Image without importing PIL
        if source.mode in ("I;16", "I;16B", "I;16L", "I"):
            pixels = to_rgb_uint8(np.asarray(source).astype(np.uint16), name="image")
        else:
            pixels = to_rgb_uint8(np.asarray(source.convert("RGBA" if "A" in source.mode else "RGB")), name="image")
    else:
        if hasattr(source, "detach"):  # torch.Tensor
            source = source.detach().cpu().numpy()
        pixels = to_rgb_uint8(source)
    width, height = fit_within(pixels.shape[1], pixels.shape[0], max_side)
    if (width, height) != (pixels.shape[1], pixels.shape[0]):
        import cv2

        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels)


def _read_image_file(path: Path) -> np.ndarray:
    """Any image file OpenCV reads, 16 bits and alpha kept until ``to_rgb_uint8``."""
    if not path.is_file():
        raise ValueError(f"image file {path} does not exist (check the path)")
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:  # GIF (OpenCV has no decoder for it) and whatever else Pillow reads
        return _read_with_pillow(path)
    if pixels.ndim == 3:  # OpenCV orders channels BGR(A)
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[-1]]]
    return to_rgb_uint8(pixels, name=str(path))


def _read_with_pillow(path: Path) -> np.ndarray:
    """The first frame of an image OpenCV cannot decode (an animated GIF's first picture)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.seek(0)
            return to_rgb_uint8(np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB")),
                                name=str(path))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"could not read {path} as an image: use a PNG, JPEG, WebP, TIFF, BMP or GIF photo (a "
                         "damaged or cut-off file needs to be exported again)") from error


def _load_jpeg(path: Path, max_side: int | None) -> np.ndarray | None:
    """An 8-bit JPEG decoded by PIL at the smallest libjpeg scale (1, 1/2, 1/4, 1/8) still covering `max_side`;
    None for anything else (the general loader takes it)."""
    from PIL import Image

    if path.suffix.lower() not in JPEG_SUFFIXES or not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                return None
            target = fit_within(*image.size, max_side)
            if target != image.size:
                image.draft(None, target)
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError):
        return None


def _exif_orientation(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 1


def exif_orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels: what ``PIL.ImageOps.exif_transpose`` does."""
    steps = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](pixels)) if orientation in steps else pixels
