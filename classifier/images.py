"""Turn untrusted bytes into an RGB image, or a precise 4xx error.

Only allow-listed formats are opened, the pixel count is capped (a
decompression bomb raises instead of warning), EXIF orientation is applied and
every mode is converted to 8-bit RGB.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import (
    Image,
    ImageOps,
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401 - registers WEBP now (see below)
)

from webservice import errors

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# Pillow imports its format plugins at the first open, all of them for a WEBP:
# done here, at import (before gunicorn forks), no user's first request waits for
# it. preinit() brings JPEG, PNG, GIF and BMP; WEBP's plugin is imported above.
Image.preinit()
DEFAULT_MAX_PIXELS = 40_000_000  # about 6300 x 6300: any real photo, never a bomb
# Every catalog model resizes the shorter side to at most 256 pixels, so a JPEG
# whose shorter side is at least twice this is decoded at 1/2, 1/4 or 1/8 scale
# straight from its DCT coefficients (Pillow's draft mode): a 12-megapixel phone
# photo decodes several times faster and still has twice the pixels the resize needs.
DRAFT_MIN_SIDE = 512


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_min_side: int | None = DRAFT_MIN_SIDE,
) -> Image.Image:
    """Decode untrusted bytes to RGB; large JPEGs are reduced to `draft_min_side` (None: never)."""
    if not data:
        raise errors.BadRequest("The image is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between max_pixels and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            _check_pixels(image, max_pixels)
            if draft_min_side and image.format == "JPEG":
                # Keeps both sides >= draft_min_side; a no-op for smaller photos.
                image.draft(None, (draft_min_side, draft_min_side))
            image.seek(0)  # GIF, WEBP: the first frame
            image.load()
    except UnidentifiedImageError as exc:
        raise errors.UnsupportedImage(
            f"The data is not an image in an accepted format ({', '.join(ALLOWED_FORMATS)})."
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise errors.UnusableImage(_too_many_pixels(max_pixels)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise errors.UnusableImage(f"The image could not be decoded: {exc}.") from exc
    return to_rgb(ImageOps.exif_transpose(image))


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise errors.UnusableImage(_too_many_pixels(max_pixels, width, height))
    if width == 0 or height == 0:
        raise errors.UnusableImage("The image has no pixels.")


def _too_many_pixels(max_pixels: int, width: int | None = None, height: int | None = None) -> str:
    size = f" ({width}x{height})" if width else ""
    return f"The image has too many pixels{size}; the limit is {max_pixels} pixels."


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's convert("RGB") clips 16-bit values to 255; scale to the range instead.
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
    grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")
