"""Large JPEGs are decoded at a reduced scale (draft mode); the picture stays the same."""

import numpy as np
from PIL import Image

from classifier.images import DRAFT_MIN_SIDE, decode_image
from tests.support.images import encode, sample_photo


def large_photo() -> Image.Image:
    # A real photo at a phone camera's size (scikit-image ships none that large).
    return sample_photo("coffee").resize((2400, 1600), Image.Resampling.BICUBIC)


def test_a_large_jpeg_is_reduced_but_keeps_enough_pixels():
    image = decode_image(encode(large_photo(), "JPEG", quality=92))
    assert image.size == (1200, 800)  # 1/2 scale: 1/4 would leave the short side < 512
    assert min(image.size) >= DRAFT_MIN_SIDE
    assert image.mode == "RGB"


def test_the_reduced_picture_matches_the_full_decode_at_model_size():
    data = encode(large_photo(), "JPEG", quality=92)
    reduced = decode_image(data).resize((384, 256), Image.Resampling.BILINEAR)
    full = decode_image(data, draft_min_side=None).resize((384, 256), Image.Resampling.BILINEAR)
    difference = np.abs(np.asarray(reduced, float) - np.asarray(full, float))
    assert difference.mean() < 2.0  # out of 255: the same picture


def test_small_jpegs_and_other_formats_are_decoded_in_full():
    photo = sample_photo("rocket")  # 640 x 427: short side below twice the minimum
    assert decode_image(encode(photo, "JPEG")).size == photo.size
    big_png = large_photo()
    assert decode_image(encode(big_png, "PNG")).size == big_png.size
    assert decode_image(encode(big_png, "JPEG"), draft_min_side=None).size == big_png.size
