"""Real photos (scikit-image's samples) and crafted images, as encoded bytes."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image
from skimage import data

SAMPLES = {"cat": data.chelsea, "coffee": data.coffee, "rocket": data.rocket}


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@cache
def sample_photo(name: str) -> Image.Image:
    return Image.fromarray(SAMPLES[name]())


@cache
def sample_jpeg(name: str) -> bytes:
    return encode(sample_photo(name), "JPEG", quality=95)
