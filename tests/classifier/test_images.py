"""Decoding untrusted bytes: formats, modes, orientation and the 4xx errors."""

import numpy as np
import pytest
from PIL import Image

from classifier.images import ALLOWED_FORMATS, decode_image
from tests.support.images import encode, sample_jpeg
from webservice import errors


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF"])
def test_allowed_formats_decode_to_rgb(fmt):
    image = decode_image(encode(Image.new("RGB", (64, 32), (200, 30, 30)), fmt))
    assert image.mode == "RGB"
    assert image.size == (64, 32)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM", "TGA"])
def test_formats_outside_the_allow_list_are_415(fmt):
    assert fmt not in ALLOWED_FORMATS
    with pytest.raises(errors.UnsupportedImage) as caught:
        decode_image(encode(Image.new("RGB", (16, 16)), fmt))
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGBA", "PNG"), ("P", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("1", "PNG"),
     ("CMYK", "JPEG"), ("I;16", "PNG"), ("RGBA", "WEBP"), ("P", "GIF")],
)  # fmt: skip
def test_every_mode_becomes_rgb(mode, fmt):
    assert decode_image(encode(Image.new(mode, (20, 10)), fmt)).mode == "RGB"


def test_transparent_pixels_become_white():
    image = decode_image(encode(Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "PNG"))
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_keeps_its_range():
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    image = decode_image(encode(Image.fromarray(ramp), "PNG"))
    assert image.getpixel((0, 0))[0] == 0
    assert image.getpixel((15, 15))[0] == 255


def test_gif_first_frame():
    frames = [Image.new("P", (8, 8), color) for color in (1, 2, 3)]
    frames[0].putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(data).getpixel((0, 0)) == (255, 0, 0)


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes())
    assert decode_image(data).size == (20, 40)


def test_pixel_bomb_is_a_422_not_a_warning():
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 100_000  # tiny on the wire, 400 million pixels decoded
    with pytest.raises(errors.UnusableImage, match="too many pixels") as caught:
        decode_image(bomb)
    assert caught.value.status == 422


def test_configured_pixel_limit_applies_below_pillows_own():
    data = encode(Image.new("RGB", (1000, 1000)), "PNG")
    with pytest.raises(errors.UnusableImage, match="1000x1000"):
        decode_image(data, max_pixels=500_000)


def test_truncated_jpeg_is_422():
    data = sample_jpeg("cat")
    with pytest.raises(errors.UnusableImage, match="could not be decoded"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"not an image at all", b"<html></html>", b"%PDF-1.4\n"])
def test_non_image_bytes_are_415(data):
    with pytest.raises(errors.UnsupportedImage):
        decode_image(data)


def test_empty_body_is_400():
    with pytest.raises(errors.BadRequest):
        decode_image(b"")
