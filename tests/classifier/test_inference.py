"""Inference against an independent reference: torchvision's model and transforms."""

import pytest
import torch
import torchvision

from classifier.inference import MAX_TOP_K, Predictor, configure_threads
from classifier.models import WeightsSource, load_model
from tests.support.images import sample_photo


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def predictor(resnet18_file):
    return Predictor(load_model("resnet18", WeightsSource.parse(str(resnet18_file))))


def reference_probabilities(weights_file, image):
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights_file, weights_only=True))
    model.eval()
    transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        return model(transform(image).unsqueeze(0)).softmax(-1)[0]


def test_top5_matches_the_reference(predictor, resnet18_file):
    image = sample_photo("cat")
    predictions, timing = predictor.classify(image, top_k=5)
    expected = reference_probabilities(resnet18_file, image)
    values, indices = expected.topk(5)
    assert [p.index for p in predictions] == indices.tolist()
    for prediction, value in zip(predictions, values.tolist(), strict=True):
        assert prediction.probability == pytest.approx(value, abs=1e-5)
    assert set(timing) == {"preprocess_ms", "inference_ms"}


def test_top_k_is_clamped(predictor):
    probabilities = torch.softmax(torch.randn(1, 1000), -1)
    assert len(predictor.top_k(probabilities, 0)[0]) == 1
    assert len(predictor.top_k(probabilities, 500)[0]) == MAX_TOP_K


def test_predictions_are_sorted_and_labelled(predictor):
    predictions, _ = predictor.classify(sample_photo("coffee"), top_k=10)
    probabilities = [p.probability for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)
    assert all(p.label == predictor.categories[p.index] for p in predictions)


def test_batch_equals_single(predictor):
    images = [sample_photo("cat"), sample_photo("rocket")]
    batch = predictor.forward(predictor.preprocess(images))
    for row, image in zip(batch, images, strict=True):
        single = predictor.forward(predictor.preprocess([image]))[0]
        assert torch.allclose(row, single, atol=1e-5)


def test_thread_budget_is_applied():
    before = torch.get_num_threads()
    try:
        configure_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("photo", "accepted"),
    [
        ("cat", {"tabby", "tiger cat", "Egyptian cat"}),
        ("coffee", {"espresso", "cup", "coffee mug"}),
    ],
)
def test_packaged_model_recognises_real_photos(photo, accepted):
    lite0 = Predictor(load_model("efficientnet_lite0", WeightsSource.parse("default")))
    predictions, _ = lite0.classify(sample_photo(photo))
    assert predictions[0].label in accepted
