"""Loading without random initialisation gives exactly the weights of the regular load."""

import torch
import torchvision

from classifier.fast_load import load_without_init
from classifier.models import WeightsSource, load_model


def test_same_weights_as_the_regular_load(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    source = WeightsSource.parse(str(path))
    fast = load_without_init("resnet18", source)
    regular = load_model("resnet18", source)
    assert fast is not None
    assert fast.weights_origin == regular.weights_origin
    fast_state, regular_state = fast.module.state_dict(), regular.module.state_dict()
    assert fast_state.keys() == regular_state.keys()
    for key, value in regular_state.items():
        assert torch.equal(fast_state[key], value), key
    assert not fast.module.training
    assert not any(p.requires_grad for p in fast.module.parameters())
    batch = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(fast.module(batch), regular.module(batch))


def test_falls_back_where_it_does_not_apply(tmp_path):
    assert load_without_init("resnet18", WeightsSource.parse("random")) is None
    assert load_without_init("resnet18", WeightsSource.parse(str(tmp_path / "none.pth"))) is None
    assert load_without_init("no-such-model", WeightsSource.parse("random")) is None
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    assert load_without_init("resnet18", WeightsSource.parse(str(wrong))) is None
