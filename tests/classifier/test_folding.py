"""BatchNorm folding: the same answers from fewer layers, and a safe fallback."""

import logging

import pytest
import torch
import torchvision
from torch import nn

from classifier.folding import count_batch_norms, fold_batch_norm
from classifier.inference import Predictor
from classifier.models import WeightsSource, load_model
from tests.support.images import sample_photo
from tests.support.models import assert_same_answers, trained_looking_resnet18


def test_a_resnet_keeps_its_answers_with_no_batch_norm_left():
    reference = trained_looking_resnet18()
    batch = torch.randn(3, 3, 224, 224)
    with torch.inference_mode():
        expected = reference(batch).softmax(-1)
    assert count_batch_norms(reference) == 20

    folded = fold_batch_norm(trained_looking_resnet18(), "resnet18")

    assert count_batch_norms(folded) == 0
    with torch.inference_mode():
        got = folded(batch).softmax(-1)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


class DataDependent(nn.Module):
    """fx cannot trace a branch on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x):
        if x.sum() > 0:
            return self.norm(self.conv(x))
        return self.conv(x)


def test_a_model_fx_cannot_trace_runs_unfolded_and_says_so(caplog):
    model = DataDependent().eval()
    with caplog.at_level(logging.WARNING, logger="classifier.folding"):
        result = fold_batch_norm(model, "odd")
    assert result is model
    assert count_batch_norms(result) == 1
    assert "odd runs with its BatchNorms unfolded" in caplog.text
    with torch.inference_mode():
        assert result(torch.ones(1, 3, 8, 8)).shape == (1, 4, 6, 6)


def test_a_model_without_batch_norm_is_returned_as_is():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    assert fold_batch_norm(model, "plain") is model


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode only"):
        fold_batch_norm(torchvision.models.resnet18(), "resnet18")


def test_the_packaged_model_keeps_its_answers_with_nothing_to_fold(caplog):
    """efficientnet_lite0 (real ImageNet weights) pads in its own Conv2d subclass,
    which fx traces through: no conv -> BatchNorm pair is left to fold, and the
    model must come out of Predictor unchanged in what it answers."""
    source = WeightsSource.parse("default")
    plain = Predictor(load_model("efficientnet_lite0", source))
    with caplog.at_level(logging.INFO, logger="classifier.folding"):
        fast = Predictor(
            load_model("efficientnet_lite0", source), channels_last=True, fold_batch_norm=True
        )
    norms = count_batch_norms(plain.loaded.module)
    assert f"efficientnet_lite0: no BatchNorm follows a plain convolution; its {norms}" in (
        caplog.text
    )
    assert_same_answers(fast, plain, sample_photo("cat"))
