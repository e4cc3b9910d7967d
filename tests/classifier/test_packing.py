"""Convolutions on packed weights: the unpacked model's answers, one packing per way of running."""

import logging
import threading

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from classifier import packing
from classifier.folding import fold_batch_norm
from classifier.inference import Predictor
from classifier.models import WeightsSource, load_model
from tests.support.images import sample_photo
from tests.support.models import assert_same_answers, trained_looking, trained_looking_resnet18


def small_bottleneck_resnet() -> nn.Module:
    """ResNet-50's block (1x1, 3x3, 1x1 and a downsampling shortcut), one per stage."""
    torch.manual_seed(2)
    return trained_looking(ResNet(Bottleneck, [1, 1, 1, 1]))


def served(model: nn.Module, name: str) -> nn.Module:
    """Folded and channels_last, as backend_v1 runs a model before packing."""
    return fold_batch_norm(model, name).to(memory_format=torch.channels_last)


def run(model: nn.Module, batch: torch.Tensor, threads: int) -> torch.Tensor:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            return model(batch.contiguous(memory_format=torch.channels_last))
    finally:
        torch.set_num_threads(before)


def layers_of(variant: nn.Module, kind: type) -> int:
    return sum(type(layer) is kind for layer in variant.modules())


@pytest.mark.parametrize(
    ("build", "convolutions", "residual_fusions"),
    [(trained_looking_resnet18, 20, 8), (small_bottleneck_resnet, 17, 4)],
    ids=["basic blocks", "bottlenecks"],
)
def test_every_convolution_is_packed_and_the_answers_stay(build, convolutions, residual_fusions):
    reference = served(build(), "reference")
    packed = packing.prepack(served(build(), "packed"), "packed")
    assert isinstance(packed, packing.PrepackedModel)
    for threads in (1, 2):
        for size in (1, 3):
            batch = torch.randn(size, 3, 224, 224)
            expected = run(reference, batch, threads)
            got = run(packed, batch, threads)
            assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (threads, size)
            assert torch.equal(got.argmax(-1), expected.argmax(-1))
    # One thread: one packing for every batch size. Two: a lone image's and a batch's.
    assert sorted(packed._variants) == [(1, False), (2, False), (2, True)]
    for variant in packed._variants.values():
        fused = layers_of(variant, packing.PackedConv2dAddReLU)
        assert fused == residual_fusions
        assert fused + layers_of(variant, packing.PackedConv2d) == convolutions
        assert layers_of(variant, nn.Conv2d) == 0
        # Every ReLU of a ResNet follows a convolution or a residual add: none is left.
        assert not [node for node in variant.graph.nodes if "relu" in node.name]
    # Packing left the model it packs from as it was: plain convolutions.
    assert layers_of(packed.module, nn.Conv2d) == convolutions


def test_a_way_of_running_is_packed_once_even_when_two_threads_meet_it(caplog):
    packed = packing.prepack(served(trained_looking_resnet18(), "resnet18"), "resnet18")
    batch = torch.randn(2, 3, 64, 64)
    outputs: list[torch.Tensor] = []
    start = threading.Barrier(2)

    def engine() -> None:
        torch.set_num_threads(1)  # a thread's count is its own, as in the engines
        start.wait()
        outputs.append(run(packed, batch, 1))

    with caplog.at_level(logging.INFO, logger="classifier.packing"):
        threads = [threading.Thread(target=engine) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert caplog.text.count("resnet18: convolutions packed for any batch on 1 thread(s)") == 1
    assert list(packed._variants) == [(1, False)]
    assert torch.equal(outputs[0], outputs[1])


class ConvThenOther(nn.Module):
    """Convolutions whose followers are not a plain ReLU: they stay separate ops."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 8, 3, padding=1)
        self.second = nn.Conv2d(8, 8, 3, padding=1)
        self.shift = nn.Parameter(torch.randn(1, 8, 1, 1))

    def forward(self, x):
        y = torch.sigmoid(self.first(x))
        # A broadcast add (not a residual of the same shape) before the ReLU.
        return torch.relu(self.second(y) + self.shift)


def test_convolutions_without_a_fusable_follower_are_packed_alone():
    torch.manual_seed(3)
    model = ConvThenOther().eval()
    batch = torch.randn(2, 3, 16, 16)
    expected = run(model, batch, 1)
    packed = packing.prepack(model, "odd")
    got = run(packed, batch, 1)
    assert torch.allclose(got, expected, atol=1e-5)
    (variant,) = packed._variants.values()
    assert layers_of(variant, packing.PackedConv2d) == 2
    assert layers_of(variant, packing.PackedConv2dAddReLU) == 0


class DataDependent(nn.Module):
    """fx cannot trace a branch on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else -self.conv(x)


def test_what_cannot_be_packed_is_returned_as_is(caplog):
    untraceable = DataDependent().eval()
    with caplog.at_level(logging.WARNING, logger="classifier.packing"):
        assert packing.prepack(untraceable, "odd") is untraceable
    assert "odd runs unpacked: tracing failed" in caplog.text
    no_convolutions = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    with caplog.at_level(logging.INFO, logger="classifier.packing"):
        assert packing.prepack(no_convolutions, "linear") is no_convolutions
    assert "linear: no plain Conv2d to pack" in caplog.text


def test_a_packing_failure_leaves_that_way_unpacked_and_correct(monkeypatch, caplog):
    """Stands in for a CPU or torch build without the op: the model still answers."""

    def refuse(*args, **kwargs):
        raise RuntimeError("no such kernel here")

    model = served(trained_looking_resnet18(), "resnet18")
    batch = torch.randn(1, 3, 64, 64)
    expected = run(model, batch, 1)
    packed = packing.prepack(model, "resnet18")
    monkeypatch.setattr(packing, "_reorder", refuse)
    with caplog.at_level(logging.WARNING, logger="classifier.packing"):
        got = run(packed, batch, 1)
    assert "resnet18 runs its convolutions unpacked: packing failed (no such kernel here)" in (
        caplog.text
    )
    assert torch.equal(got, expected)
    assert packed._variants[(1, False)] is packed.module


def test_packed_weights_that_answer_differently_are_not_used(monkeypatch, caplog):
    """Each packing is checked against the unpacked answer to the pass that made it."""
    real = packing._reorder
    monkeypatch.setattr(packing, "_reorder", lambda weight, *a, **k: real(weight * 1.5, *a, **k))
    model = served(trained_looking_resnet18(), "resnet18")
    batch = torch.randn(2, 3, 64, 64)
    expected = run(model, batch, 1)
    packed = packing.prepack(model, "resnet18")
    with caplog.at_level(logging.WARNING, logger="classifier.packing"):
        got = run(packed, batch, 1)
    assert "resnet18 runs its convolutions unpacked: packed outputs differ by up to" in caplog.text
    assert torch.equal(got, expected)
    assert packed._variants[(1, False)] is packed.module


def test_a_predictor_with_packed_convolutions_gives_the_same_answers(tmp_path):
    """Through Predictor, on a real photo, from a saved state dict as the services load it."""
    torch.manual_seed(4)
    weights = tmp_path / "resnet18.pth"
    torch.save(trained_looking(torchvision.models.resnet18()).state_dict(), weights)
    source = WeightsSource.parse(str(weights))
    plain = Predictor(load_model("resnet18", source), channels_last=True, fold_batch_norm=True)
    fast = Predictor(
        load_model("resnet18", source),
        channels_last=True,
        fold_batch_norm=True,
        pack_convolutions=True,
    )
    assert isinstance(fast.loaded.module, packing.PrepackedModel)
    assert_same_answers(fast, plain, sample_photo("cat"))
