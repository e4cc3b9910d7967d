"""frontend_v1 in Streamlit's AppTest: the real backend for the happy path, every error state."""

from __future__ import annotations

import tomllib

import pytest
import requests

from tests.support.frontend import (
    HangingPredict,
    app_test,
    backend_coming_back,
    opened_while_backend_down,
    texts,
    upload,
)
from tests.support.images import sample_jpeg
from tests.support.servers import REPO_ROOT, free_port

MODELS = {"models": [{"name": "resnet18", "available": True, "default": True}]}


@pytest.fixture
def v1(monkeypatch):
    monkeypatch.delenv("SERVING_URL", raising=False)
    return app_test("frontend_v1")


def classify(at):
    return at.button(key="v1-classify").click().run()


def test_missing_serving_url_is_said_plainly(v1):
    at = v1.run()
    assert not at.exception
    assert texts(at.error) == [
        "No backend configured. SERVING_URL is not set. Set it to the backend's base URL, "
        "e.g. SERVING_URL=https://backend-v1-<hash>-nn.a.run.app (or http://127.0.0.1:8080)."
    ]
    assert len(at.file_uploader) == 0  # nothing to classify with
    assert len(at.button) == 0  # and no "Try again": only a new setting can fix this


def test_malformed_serving_url_is_said_plainly(v1, monkeypatch):
    monkeypatch.setenv("SERVING_URL", "backend-v1:8080")
    at = v1.run()
    assert not at.exception
    assert "is not an http(s) URL" in texts(at.error)[0]


def test_unreachable_backend_is_said_plainly(v1, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("SERVING_URL", f"http://127.0.0.1:{port}")
    at = v1.run()
    assert not at.exception
    [message] = texts(at.error)
    assert message.startswith(
        f"The backend is unreachable. Could not reach http://127.0.0.1:{port}"
    )
    assert "Connection refused" in message


def test_a_page_loaded_while_the_backend_was_down_comes_back_with_it(v1, monkeypatch):
    at, port = opened_while_backend_down(v1, monkeypatch)
    with backend_coming_back(port, {"/models": MODELS}):
        at = at.button(key="retry-now").click().run()
    assert not at.exception
    assert not at.error
    assert texts(at.caption)[0] == f"Backend http://127.0.0.1:{port} serves: resnet18"
    assert at.button(key="v1-classify")  # the page is all there


def test_timeout_is_said_plainly(v1, monkeypatch, httpserver):
    hanging = HangingPredict()
    httpserver.expect_request("/models").respond_with_json(MODELS)
    httpserver.expect_request("/predict", method="POST").respond_with_handler(hanging)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    monkeypatch.setenv("API_READ_TIMEOUT", "0.5")
    try:
        at = classify(upload(v1.run(), "cat.jpg", sample_jpeg("cat")))
    finally:
        hanging.release.set()
    assert not at.exception
    [message] = texts(at.error)
    assert message.startswith("The backend timed out.")
    assert "did not answer within 0.5s" in message
    assert hanging.calls == 1  # the POST was not sent twice


def test_nothing_to_classify_until_an_image_is_given(v1, monkeypatch, httpserver):
    httpserver.expect_request("/models").respond_with_json(MODELS)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    at = v1.run()
    assert not at.exception
    assert at.button(key="v1-classify").disabled
    assert "Backend http://localhost" in texts(at.caption)[0]
    assert "serves: resnet18" in texts(at.caption)[0]


def test_a_file_that_is_not_an_image_is_refused_with_its_reason(v1, monkeypatch, httpserver):
    httpserver.expect_request("/models").respond_with_json(MODELS)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    at = upload(v1.run(), "notes.txt", b"shopping list", mime="text/plain")
    assert not at.exception
    [message] = texts(at.error)
    assert message == (
        "notes.txt is not an image this app can classify. "
        "Upload a JPEG, PNG, WebP, GIF or BMP file of at most 10 MB."
    )
    assert at.button(key="v1-classify").disabled
    assert [entry for entry in httpserver.log if entry[0].path == "/predict"] == []


def test_the_uploader_takes_no_more_than_the_backend_accepts(v1, monkeypatch, httpserver):
    httpserver.expect_request("/models").respond_with_json(MODELS)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(3 * 1024 * 1024 + 5))
    at = v1.run()
    [uploader] = at.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == 3  # whole MB, never above the backend's limit
    assert "JPEG, PNG, WebP, GIF or BMP" in uploader.proto.label


@pytest.mark.slow
def test_uploaded_photo_is_classified_by_the_real_backend(v1, monkeypatch, lite0_backend):
    monkeypatch.setenv("SERVING_URL", lite0_backend.url)
    at = classify(upload(v1.run(), "chelsea.jpg", sample_jpeg("cat")))
    assert not at.exception
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model"] == "efficientnet_lite0"
    assert metrics["Backend time"].endswith(" ms")
    assert metrics["Round trip"].endswith(" ms")
    table = at.dataframe[0].value
    assert len(table) == 5
    assert "cat" in table["label"].iloc[0].lower()
    assert table["probability"].is_monotonic_decreasing
    assert "cat" in at.subheader[0].value.lower()


@pytest.mark.slow
def test_image_url_is_classified_by_the_real_backend(v1, monkeypatch, lite0_backend, httpserver):
    httpserver.expect_request("/chelsea.jpg").respond_with_data(
        sample_jpeg("cat"), content_type="image/jpeg"
    )
    monkeypatch.setenv("SERVING_URL", lite0_backend.url)
    at = v1.run()
    at.text_input(key="v1-url").input(httpserver.url_for("/chelsea.jpg")).run()
    at = classify(at)
    assert not at.exception
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Model"] == "efficientnet_lite0"
    assert "cat" in at.dataframe[0].value["label"].iloc[0].lower()
    # the backend fetched the URL; the frontend only showed the address to the browser
    assert len(httpserver.log) == 1


@pytest.mark.slow
def test_backend_error_is_shown_in_the_backends_own_words(v1, monkeypatch, lite0_backend):
    not_an_image = b"these bytes are not a picture"
    direct = requests.post(
        lite0_backend.url + "/predict", files={"image": ("notes.jpg", not_an_image)}, timeout=30
    )
    assert direct.status_code == 415
    monkeypatch.setenv("SERVING_URL", lite0_backend.url)
    at = classify(upload(v1.run(), "notes.jpg", not_an_image))
    assert not at.exception
    [message] = texts(at.error)
    assert message == (
        "The backend refused the request (HTTP 415, unsupported_media_type): "
        + direct.json()["error"]["message"]
    )
    assert not at.metric


def test_the_frontends_default_upload_limit_is_the_backends():
    from apiclient.settings import DEFAULT_MAX_UPLOAD_BYTES, FrontendSettings
    from classifier.settings import ServingSettings
    from v3_gateway.settings import GatewaySettings

    assert FrontendSettings().max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES
    assert ServingSettings().max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES
    assert GatewaySettings.model_fields["max_upload_bytes"].default == DEFAULT_MAX_UPLOAD_BYTES


@pytest.mark.parametrize("frontend", ["frontend_v1", "frontend_v2"])
def test_the_toolbar_has_no_developer_tools(frontend):
    """Streamlit reads the config.toml beside app.py; "viewer" drops Deploy, Rerun, Clear cache."""
    config = tomllib.loads((REPO_ROOT / frontend / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"
