"""Bytes or files in, RGB uint8 arrays out, with every check an untrusted upload needs:
size and pixel-count limits (decompression bombs), a full decode (truncated files fail
here, not later), and EXIF orientation applied so a rotated phone photo reads upright."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from facerec.errors import BadImage, ImageTooLarge

# Never let Pillow pad a truncated file with grey: a half-written upload must fail.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS = 40_000_000
MIN_SIDE = 16  # nothing smaller can hold a detectable face (MTCNN's smallest is 12 px)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to an upright RGB uint8 array, or raise BadImage/ImageTooLarge."""
    if not data:
        raise BadImage("empty image")
    # Again at every call: the flag is global, and other libraries flip it at import
    # (face_recognition sets it to True, which made truncated uploads decode as grey).
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"image has {width}×{height} = {width * height} pixels; the limit is {max_pixels}",
                    width=width, height=height, max_pixels=max_pixels,
                )
            image.load()  # full decode: raises on truncated or corrupt data
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
    except (ImageTooLarge, BadImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image rejected as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.UnidentifiedImageError) as exc:
        raise BadImage(f"not a readable image: {exc}") from None
    array = np.asarray(image, dtype=np.uint8)
    if min(array.shape[:2]) < MIN_SIDE:
        raise BadImage(f"image is {array.shape[1]}×{array.shape[0]} pixels; at least "
                       f"{MIN_SIDE}×{MIN_SIDE} is needed to find a face")
    return array


def load_image_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read {Path(path).name}: {exc.strerror}") from None
    return decode_image(data, max_pixels)


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
