"""The served model, through its interface only: what backend_v1 and backend_v2 see.

Every model it serves runs the fast way (folded, channels-last, packed,
batched) and answers as the plain model does; a model loaded on demand gets
the same treatment as the one loaded at start.
"""

from __future__ import annotations

import shutil
import threading
from functools import cache

import pytest
import torch

from classifier.images import decode_image
from classifier.inference import Predictor
from classifier.intake import ImageRequest
from classifier.models import CATALOG, WeightsSource, load_model
from classifier.packing import PrepackedModel
from classifier.serving import create_served_model
from classifier.settings import ServingSettings
from tests.support.images import encode, sample_jpeg, sample_photo
from tests.support.models import trained_looking_resnet18
from webservice import errors

pytestmark = pytest.mark.slow
PHOTOS = ["cat", "coffee", "rocket"]


class CatalogSettings(ServingSettings):
    """A choice of every catalog model, as backend_v2 offers (classifier has no backends)."""

    @property
    def offered_models(self) -> list[str]:
        return list(CATALOG)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """resnet18 (random, trained-looking) and lite0's real weights; the rest missing."""
    folder = tmp_path_factory.mktemp("served-weights")
    torch.save(trained_looking_resnet18().state_dict(), folder / "resnet18.pth")
    shutil.copy(
        CATALOG["efficientnet_lite0"].default_weights_path(), folder / "efficientnet_lite0.pth"
    )
    return folder


def request_for(photo: str, model: str | None = None, top_k: int | None = None) -> ImageRequest:
    # PNG: lossless, so the plain model below sees exactly the served pixels.
    return ImageRequest(encode(sample_photo(photo), "PNG"), "upload", model, top_k)


@cache
def plain_predictor(name: str, source: WeightsSource) -> Predictor:
    return Predictor(load_model(name, source))


def plain_top5(name: str, source: WeightsSource, photo: str) -> list[tuple[int, float]]:
    plain = plain_predictor(name, source)
    image = decode_image(encode(sample_photo(photo), "PNG"))
    predictions, _ = plain.classify(image, top_k=5)
    return [(p.index, p.probability) for p in predictions]


def assert_close(body: dict, expected: list[tuple[int, float]]) -> None:
    got = [(p["index"], p["probability"]) for p in body["predictions"]]
    assert [index for index, _ in got] == [index for index, _ in expected]
    for (_, mine), (_, reference) in zip(got, expected, strict=True):
        assert mine == pytest.approx(reference, abs=1e-5)


def test_one_model_served_concurrently_answers_as_the_plain_model(weights_dir):
    settings = ServingSettings(
        model_name="resnet18", model_weights=str(weights_dir / "resnet18.pth")
    )
    served = create_served_model(settings)
    assert served.not_ready_reason() == "resnet18 is warming up"
    served.warm_up()
    assert served.not_ready_reason() is None
    assert [entry["name"] for entry in served.describe()] == ["resnet18"]

    answers: dict[int, dict] = {}

    def classify(index: int) -> None:
        photo = PHOTOS[index % len(PHOTOS)]
        answers[index] = served.classify(request_for(photo), model="resnet18").to_json()

    threads = [threading.Thread(target=classify, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    source = settings.weights_source
    for index, body in answers.items():
        assert body["model"] == "resnet18"
        assert body["category"] == body["predictions"][0]["label"]
        assert_close(body, plain_top5("resnet18", source, PHOTOS[index % len(PHOTOS)]))
        assert list(body["timing_ms"]) == [
            "fetch_ms", "decode_ms", "preprocess_ms", "queue_ms", "inference_ms", "total_ms",
        ]  # fmt: skip
    assert len(answers) == 6


def test_a_model_loaded_on_demand_runs_the_same_fast_way(weights_dir):
    settings = CatalogSettings(
        model_name="efficientnet_lite0", model_weights=str(weights_dir), max_loaded_models=2
    )
    served = create_served_model(settings)
    served.warm_up(cores=1)
    served.load("resnet18")
    on_demand = served.loaded.get("resnet18")
    assert isinstance(on_demand.loaded.module, PrepackedModel)  # folded, then packed
    assert on_demand.memory_format == torch.channels_last
    body = served.classify(request_for("coffee", top_k=3), model="resnet18").to_json()
    assert body["model"] == "resnet18"
    assert_close(body, plain_top5("resnet18", settings.weights_source, "coffee")[:3])
    lite0 = served.classify(
        ImageRequest(sample_jpeg("cat"), "upload", None, None), model="efficientnet_lite0"
    )
    assert lite0.predictions[0].label in {"tabby", "tiger cat", "Egyptian cat"}
    # Both ran on the worker's one scheduler, on the one core it was given.
    assert served.scheduler.cores == 1
    assert len(served.scheduler._engines) == 1


def test_models_it_cannot_serve_are_refused_with_the_reason(weights_dir):
    one = create_served_model(
        ServingSettings(model_name="resnet18", model_weights=str(weights_dir / "resnet18.pth"))
    )
    with pytest.raises(errors.UnknownModel) as unknown:
        one.check("resnet50")  # in the catalog, but this service serves one model
    assert unknown.value.message == "Unknown model 'resnet50'. Models available here: resnet18."

    catalog = create_served_model(
        CatalogSettings(model_name="efficientnet_lite0", model_weights=str(weights_dir))
    )
    with pytest.raises(errors.ModelUnavailable, match=r"resnet50\.pth") as missing:
        catalog.load("resnet50")
    assert missing.value.details["available"] == ["resnet18", "efficientnet_lite0"]
    with pytest.raises(errors.UnknownModel, match="vgg16"):
        catalog.classify(request_for("cat"), model="vgg16")
    entries = {entry["name"]: entry for entry in catalog.describe()}
    assert list(entries) == list(CATALOG)
    assert entries["efficientnet_lite0"]["default"] is True
    assert entries["resnet50"]["available"] is False


def test_a_default_model_that_cannot_load_stops_the_start(tmp_path):
    with pytest.raises(SystemExit, match=r"cannot start: .*resnet18\.pth"):
        create_served_model(ServingSettings(model_name="resnet18", model_weights=str(tmp_path)))
