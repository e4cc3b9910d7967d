"""The photos a load sends: scikit-image's samples as JPEG files, each as a ready upload.

No download: scikit-image bundles the photos. The benchmarks send the same ones.
"""

from __future__ import annotations

import io
from pathlib import Path

# scikit-image's sample photos, from 300x451 to 1411x1411 (the retina is large
# enough for JPEG draft decoding to matter).
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "hubble_deep_field", "retina")
JPEG_QUALITY = 90
BOUNDARY = "benchboundary7d1f0c"
MULTIPART_CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def write_photos(folder: Path) -> Path:
    """The photos as JPEG files in `folder` (those already there are kept)."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        if not path.is_file():
            buffer = io.BytesIO()
            Image.fromarray(getattr(data, name)()).convert("RGB").save(
                buffer, "JPEG", quality=JPEG_QUALITY
            )
            path.write_bytes(buffer.getvalue())
    return folder


def load_photos(folder: Path) -> list[tuple[str, bytes]]:
    return [(path.stem, path.read_bytes()) for path in sorted(folder.glob("*.jpg"))]


def multipart_body(filename: str, data: bytes) -> bytes:
    """One `image` field, encoded once up front so the load generator only sends bytes."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
