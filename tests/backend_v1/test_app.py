"""backend_v1's API contract in-process: routes, errors and limits (Flask test client)."""

import io

import pytest
from PIL import Image

from backend_v1.app import create_app
from backend_v1.settings import BackendV1Settings
from classifier.packing import PrepackedModel
from tests.support.images import encode, sample_jpeg, sample_photo
from webservice.api import readiness_of


def upload(client, data, filename="photo.jpg", **form):
    return client.post("/predict", data={"image": (io.BytesIO(data), filename), **form})


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_health_and_ready(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200


def test_not_ready_until_warmed_up(resnet18_weights):
    cold = create_app(BackendV1Settings(model_name="resnet18", model_weights=str(resnet18_weights)))
    client = cold.test_client()
    assert_error(client.get("/ready"), 503, "not_ready")
    assert client.get("/health").status_code == 200
    readiness_of(cold).warm_up()
    assert client.get("/ready").status_code == 200


def test_convolutions_are_packed_unless_the_environment_says_not(resnet18_weights, monkeypatch):
    monkeypatch.setenv("MODEL_NAME", "resnet18")
    monkeypatch.setenv("MODEL_WEIGHTS", str(resnet18_weights))
    served = readiness_of(create_app(BackendV1Settings()))
    assert isinstance(served.loaded.get("resnet18").loaded.module, PrepackedModel)
    assert served.scheduler.engines is None  # one engine per core on packed weights
    monkeypatch.setenv("PACK_CONVOLUTIONS", "false")
    served = readiness_of(create_app(BackendV1Settings()))
    predictor = served.loaded.get("resnet18")
    assert not isinstance(predictor.loaded.module, PrepackedModel)
    assert predictor.classify(sample_photo("cat"))[0]


def test_models_lists_the_served_model(client):
    (entry,) = client.get("/models").get_json()["models"]
    assert entry["name"] == "resnet18"
    assert entry["available"] is True
    assert entry["default"] is True
    assert entry["parameters"] == 11_689_512
    assert entry["description"]


def test_upload_predicts(client):
    response = upload(client, sample_jpeg("cat"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == "resnet18"
    assert len(body["predictions"]) == 5
    assert body["category"] == body["predictions"][0]["label"]
    assert {"decode_ms", "inference_ms", "total_ms"} <= set(body["timing_ms"])


def test_top_k_and_model_in_form(client):
    body = upload(client, sample_jpeg("cat"), top_k="3", model="resnet18").get_json()
    assert len(body["predictions"]) == 3


def test_url_predicts(client, httpserver):
    httpserver.expect_request("/cat.jpg").respond_with_data(
        sample_jpeg("cat"), content_type="image/jpeg"
    )
    response = client.post("/predict", json={"url": httpserver.url_for("/cat.jpg"), "top_k": 2})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["predictions"]) == 2
    assert response.get_json()["timing_ms"]["fetch_ms"] > 0


def test_other_model_is_404(client):
    error = assert_error(upload(client, sample_jpeg("cat"), model="resnet50"), 404, "unknown_model")
    assert error["available"] == ["resnet18"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"url": 5}',
        b'{"model": "resnet18"}',
        b'{"url": ""}',
        b'{"url": "https://x/a.jpg", "top_k": 0}',
        b'{"url": "https://x/a.jpg", "top_k": "many"}',
        b'{"url": "https://x/a.jpg", "top_k": 2.5}',
        b'{"url": "https://x/a.jpg", "model": 3}',
    ],
)
def test_wrong_json_is_400(client, body):
    response = client.post("/predict", data=body, content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_unsupported_content_type_is_415(client):
    response = client.post("/predict", data=b"hello", content_type="text/plain")
    assert "multipart" in assert_error(response, 415, "unsupported_media_type")["message"]


def test_multipart_without_image_field_is_400(client):
    response = client.post("/predict", data={"file": (io.BytesIO(b"x"), "x.jpg")})
    assert "'image'" in assert_error(response, 400, "bad_request")["message"]


def test_non_image_upload_is_415(client):
    assert_error(upload(client, b"this is text, not a photo"), 415, "unsupported_media_type")


def test_truncated_jpeg_is_422(client):
    data = sample_jpeg("cat")
    assert_error(upload(client, data[: len(data) // 3]), 422, "unusable_image")


def test_pixel_bomb_is_422(client):
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")
    assert_error(upload(client, bomb, "bomb.png"), 422, "unusable_image")


def test_oversized_body_is_413(client):
    assert_error(upload(client, b"\xff" * 3_000_000), 413, "payload_too_large")


def test_forbidden_url_is_400(client):
    response = client.post("/predict", json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert "169.254.169.254" in assert_error(response, 400, "url_forbidden")["message"]


def test_file_scheme_is_refused(client):
    assert_error(client.post("/predict", json={"url": "file:///etc/passwd"}), 400, "url_forbidden")


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/predict"), 405, "method_not_allowed")


def test_random_weights_are_flagged_in_models_and_predictions():
    app = create_app(BackendV1Settings(model_name="resnet18", model_weights="random"))
    readiness_of(app).warm_up()
    client = app.test_client()
    (entry,) = client.get("/models").get_json()["models"]
    assert entry["weights"] == "random"
    assert "untrained" in entry["warning"]
    assert "untrained" in upload(client, sample_jpeg("cat")).get_json()["warning"]


def test_missing_weights_stop_start_up_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(SystemExit, match=r"classifier\.prefetch"):
        create_app(BackendV1Settings(model_name="resnet50", model_weights="default"))
