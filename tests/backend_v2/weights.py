"""Weights the tests make themselves (nothing can be downloaded) and the reference answers.

Each torchvision model is saved with seeded random weights, made usable in two
ways. Its batch-norm statistics are measured on the sample photos: with the
initial ones (mean 0, variance 1) the activations of MobileNet and EfficientNet
fade to nothing, every image gets the same answer, and every class ~0.001, a
tie. And the last layer's bias (initialised at zero) is spread out, so each
model has a clear top-5 of its own: a response from the wrong model cannot pass
for the right one, and the answer changes with the image.
"""

from __future__ import annotations

import io
import shutil
from functools import cache
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn

from classifier.models import CATALOG
from tests.support.images import SAMPLES, sample_photo

# Models this test service has weights for (the two lightest torchvision ones, and
# lite0's real weights); the rest of the catalog is missing here.
SEEDS = {"mobilenet_v3_large": 3, "efficientnet_b0": 0}
PACKAGED = "efficientnet_lite0"
MISSING = ("resnet50", "resnet18")
AVAILABLE = [name for name in CATALOG if name in SEEDS or name == PACKAGED]
# Closer than this, two classes could swap places between thread set-ups.
MIN_GAP = 1e-5


def save_random_weights(name: str, path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None)
    transform = _transform(name)
    photos = torch.stack([transform(sample_photo(photo)) for photo in SAMPLES])
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # running statistics = this batch's
    model.train()
    with torch.no_grad():
        model(photos)
        head = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
        head.bias.normal_(0.0, 1.0)
    torch.save(model.state_dict(), path)


def _transform(name: str):
    """torchvision's own evaluation transform for the catalog's weights of `name`."""
    return torchvision.models.get_weight(CATALOG[name].torchvision_weights).transforms()


def make_weights_dir(folder: Path) -> Path:
    """A MODEL_WEIGHTS folder: the random SEEDS models and the packaged lite0.

    A folder source looks only in the folder, for every model, so lite0's file is
    copied in from its package.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in SEEDS.items():
        save_random_weights(name, folder / f"{name}.pth", seed)
    shutil.copy(CATALOG[PACKAGED].default_weights_path(), folder / f"{PACKAGED}.pth")
    return folder


@cache
def _reference_model(name: str, weights_path: str) -> tuple[nn.Module, object]:
    """torchvision's own model and evaluation transform, with the file's weights."""
    model = torchvision.models.get_model(name, weights=None)
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    model.eval()
    return model, _transform(name)


def reference_top5(name: str, weights_dir: Path, image_bytes: bytes) -> list[tuple[int, float]]:
    """(class index, probability) of the top 5, computed in this process, not by the service."""
    model, transform = _reference_model(name, str(weights_dir / f"{name}.pth"))
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    with torch.inference_mode():
        probabilities = model(transform(image).unsqueeze(0)).softmax(dim=-1)[0]
    values, indices = probabilities.topk(6)
    gaps = (values[:-1] - values[1:]).tolist()
    assert min(gaps) > MIN_GAP, f"{name}'s test weights rank classes too close to compare: {gaps}"
    return list(zip(indices.tolist(), values.tolist(), strict=True))[:5]


def top5_of(body: dict) -> list[tuple[int, float]]:
    return [(p["index"], p["probability"]) for p in body["predictions"][:5]]


def same_top5(got: list[tuple[int, float]], want: list[tuple[int, float]], tol=1e-4) -> bool:
    return len(got) == len(want) and all(
        g_index == w_index and abs(g_p - w_p) <= tol
        for (g_index, g_p), (w_index, w_p) in zip(got, want, strict=True)
    )
