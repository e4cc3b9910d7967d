"""The real gunicorn backend_v1 on loopback, over real HTTP."""

import signal

import pytest
import requests
import torch
import torchvision
from PIL import Image

from tests.classifier.test_fetch import LOOPBACK_SPELLINGS
from tests.support.images import encode, sample_jpeg, sample_photo
from tests.support.listener import ConnectionCounter
from tests.support.servers import start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def strict_backend(service_log_dir, resnet18_weights):
    """resnet18 from a saved state dict, default URL policy (no loopback), 2 workers."""
    service = start_service(
        "backend_v1",
        service_log_dir,
        env={
            "MODEL_NAME": "resnet18",
            "MODEL_WEIGHTS": str(resnet18_weights),
            "WEB_CONCURRENCY": "2",
            "MAX_UPLOAD_BYTES": "2000000",
        },
    )
    yield service
    service.stop()


def post_upload(url, data, filename="photo.jpg", **form):
    return requests.post(url + "/predict", files={"image": (filename, data)}, data=form, timeout=60)


def reference_top5(weights_file, image):
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights_file, weights_only=True))
    model.eval()
    transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    with torch.no_grad():
        probabilities = model(transform(image).unsqueeze(0)).softmax(-1)[0]
    values, indices = probabilities.topk(5)
    return [(categories[i], v) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


@pytest.mark.parametrize("photo", ["cat", "coffee", "rocket"])
def test_live_top5_equals_in_process_reference(strict_backend, resnet18_weights, photo):
    data = encode(sample_photo(photo), "PNG")  # lossless: both sides see the same pixels
    response = post_upload(strict_backend.url, data, "photo.png")
    assert response.status_code == 200, response.text
    live = [(p["label"], p["probability"]) for p in response.json()["predictions"]]
    expected = reference_top5(resnet18_weights, sample_photo(photo))
    assert [label for label, _ in live] == [label for label, _ in expected]
    for (_, got), (_, want) in zip(live, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize(
    ("photo", "accepted"),
    [
        ("cat", {"tabby", "tiger cat", "Egyptian cat"}),
        ("coffee", {"espresso", "cup", "coffee mug"}),
    ],
)
def test_real_weights_recognise_real_photos(lite0_backend, photo, accepted):
    body = post_upload(lite0_backend.url, sample_jpeg(photo)).json()
    assert body["model"] == "efficientnet_lite0"
    assert body["category"] in accepted


def test_url_from_a_local_server_when_loopback_is_allowed(lite0_backend, httpserver):
    httpserver.expect_request("/cat.jpg").respond_with_data(
        sample_jpeg("cat"), content_type="image/jpeg"
    )
    response = requests.post(
        lite0_backend.url + "/predict", json={"url": httpserver.url_for("/cat.jpg")}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["category"] in {"tabby", "tiger cat", "Egyptian cat"}


@pytest.mark.parametrize("template", LOOPBACK_SPELLINGS)
def test_ssrf_loopback_forms_refused_by_the_live_service(strict_backend, template):
    with ConnectionCounter() as listener:
        url = template.format(port=listener.port)
        response = requests.post(strict_backend.url + "/predict", json={"url": url}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "url_forbidden"
    assert listener.connections == 0


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (encode(Image.new("1", (20000, 20000)), "PNG"), 422, "unusable_image"),
        (sample_jpeg("cat")[:5000], 422, "unusable_image"),
        (encode(sample_photo("rocket"), "PNG")[:20000], 422, "unusable_image"),
        (b"just some text", 415, "unsupported_media_type"),
        (b"\x00" * 2_500_000, 413, "payload_too_large"),
    ],
    ids=["png-bomb", "truncated-jpeg", "truncated-png", "not-an-image", "oversized"],
)
def test_bad_uploads_get_the_documented_4xx(strict_backend, data, status, code):
    response = post_upload(strict_backend.url, data)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("body", ['{"url": 1}', "not json", '{"top_k": 3}'])
def test_wrong_json_is_400(strict_backend, body):
    response = requests.post(
        strict_backend.url + "/predict",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_sigterm_stops_gracefully(service_log_dir):
    service = start_service(
        "backend_v1",
        service_log_dir,
        env={"MODEL_NAME": "resnet18", "MODEL_WEIGHTS": "random", "WEB_CONCURRENCY": "1"},
    )
    service.stop(signal.SIGTERM)
    assert service.process.returncode == 0
    assert "Shutting down: Master" in service.log()
