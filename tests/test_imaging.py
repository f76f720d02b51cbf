import io

import numpy as np
import pytest
from PIL import Image

from facerec.errors import BadImage, ImageTooLarge
from facerec.imaging import decode_image


def encode(image: Image.Image, fmt="JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_decodes_rgb_from_grey_and_rgba():
    assert decode_image(encode(Image.new("L", (40, 30), 128))).shape == (30, 40, 3)
    assert decode_image(encode(Image.new("RGBA", (40, 30)), "PNG")).shape == (30, 40, 3)


@pytest.mark.parametrize("orientation, shape", [(1, (30, 60, 3)), (6, (60, 30, 3)), (8, (60, 30, 3))])
def test_exif_orientation_is_applied(orientation, shape):
    image = Image.new("RGB", (60, 30), (200, 10, 10))
    image.paste((10, 200, 10), (0, 0, 10, 30))  # green stripe on the left
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(encode(image, exif=exif))
    assert decoded.shape == shape
    if orientation == 6:  # rotated 90° clockwise to display: the stripe ends on top
        assert decoded[2, 15, 1] > 150 and decoded[-2, 15, 1] < 100


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\0" * 20])
def test_garbage_is_bad_image(data):
    with pytest.raises(BadImage):
        decode_image(data)


def test_truncated_jpeg_is_bad_image():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)))
    with pytest.raises(BadImage):
        decode_image(data[: len(data) // 2])


def test_pixel_limit_and_tiny_images():
    big = encode(Image.new("RGB", (3000, 2000)))
    with pytest.raises(ImageTooLarge):
        decode_image(big, max_pixels=5_000_000)
    with pytest.raises(BadImage, match="at least"):
        decode_image(encode(Image.new("RGB", (1, 1)), "PNG"))


def test_decompression_bomb_is_refused_before_decoding():
    # A PNG header declaring 100k × 100k pixels: refused from the header alone.
    bomb = encode(Image.new("1", (10000, 10000)), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(bomb, max_pixels=10_000_000)
