"""The inputs every contender shares: one weights file per model, a fixed set of photos."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

# scikit-image's sample photos, from 300x451 to 1411x1411 (the retina is large
# enough for JPEG draft decoding to matter).
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "hubble_deep_field", "retina")
JPEG_QUALITY = 90
SEED = 20240917
BOUNDARY = "benchboundary7d1f0c"


@dataclass(frozen=True)
class Assets:
    root: Path

    @property
    def photos_dir(self) -> Path:
        return self.root / "photos"

    def weights(self, model: str) -> Path:
        return self.root / "weights" / f"{model}.pth"

    def photo_files(self) -> list[Path]:
        return [self.photos_dir / f"{name}.jpg" for name in PHOTOS]


def prepare(root: Path, models: list[str]) -> Assets:
    """Write the photos and a seeded random state dict per model (no downloads)."""
    assets = Assets(root)
    _write_photos(assets.photos_dir)
    for model in models:
        path = assets.weights(model)
        if not path.is_file():
            _write_weights(model, path)
    return assets


def _write_photos(folder: Path) -> None:
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


def _write_weights(model: str, path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.get_model(model, weights=None).state_dict(), path)


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


MULTIPART_CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def dump_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
