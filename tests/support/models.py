"""Random-weight models that exercise what trained ones would, and comparing answers."""

from __future__ import annotations

import pytest
import torch
import torchvision
from PIL import Image
from torch import nn


def trained_looking(model: nn.Module) -> nn.Module:
    """`model` in eval mode with BatchNorms far from the identity a fresh model has,
    so folding them changes the convolutions' weights for real."""
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.2, 0.2)
            layer.running_var.uniform_(0.3, 2.0)
            layer.weight.data.uniform_(0.5, 1.5)
            layer.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def trained_looking_resnet18() -> nn.Module:
    torch.manual_seed(1)
    return trained_looking(torchvision.models.resnet18())


def assert_same_answers(fast, plain, image: Image.Image) -> None:
    """Two predictors' top-k for `image`: the same classes, probabilities within 1e-5."""
    want, _ = plain.classify(image)
    got, _ = fast.classify(image)
    assert [p.index for p in got] == [p.index for p in want]
    for mine, reference in zip(got, want, strict=True):
        assert mine.probability == pytest.approx(reference.probability, abs=1e-5)
