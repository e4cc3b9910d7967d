"""The inputs every contender shares: one weights file per model, a fixed set of photos."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# The photos and their uploads are `make loadtest`'s, which the student release keeps.
from tools.loadtest.photos import (  # noqa: F401 (re-exported for the benchmarks)
    MULTIPART_CONTENT_TYPE,
    PHOTOS,
    load_photos,
    multipart_body,
    write_photos,
)

SEED = 20240917


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
    write_photos(assets.photos_dir)
    for model in models:
        path = assets.weights(model)
        if not path.is_file():
            _write_weights(model, path)
    return assets


def _write_weights(model: str, path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.get_model(model, weights=None).state_dict(), path)


def dump_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
