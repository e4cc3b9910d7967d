"""apiclient against real loopback HTTP servers: JSON, typed errors, timeouts, bounded retries."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
from werkzeug import Request, Response

from apiclient import (
    ApiClient,
    ApiClientError,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    ClientSettings,
    InvalidResponse,
    ServingUrlInvalid,
    ServingUrlMissing,
)
from tests.support.listener import ConnectionCounter
from tests.support.servers import REPO_ROOT, free_port

PREDICTION = {
    "model": "resnet18",
    "category": "tabby",
    "predictions": [{"label": "tabby", "index": 281, "probability": 0.9}],
    "timing_ms": {"total_ms": 12.5},
}


@pytest.fixture
def client(httpserver):
    with ApiClient(httpserver.url_for("/"), read_timeout=5) as api:
        yield api


def test_get_routes_return_parsed_json(client, httpserver):
    httpserver.expect_request("/health").respond_with_json({"status": "ok"})
    httpserver.expect_request("/ready").respond_with_json({"status": "ready"})
    httpserver.expect_request("/models").respond_with_json({"models": [{"name": "resnet18"}]})
    httpserver.expect_request("/model").respond_with_json({"model": "resnet18"})
    assert client.health() == {"status": "ok"}
    assert client.ready() == {"status": "ready"}
    assert client.models()["models"][0]["name"] == "resnet18"
    assert client.get_model() == {"model": "resnet18"}


def test_predict_url_sends_the_json_body(client, httpserver):
    httpserver.expect_request(
        "/predict",
        method="POST",
        json={"url": "https://example.test/cat.jpg", "top_k": 3, "model": "resnet18"},
    ).respond_with_json(PREDICTION)
    assert client.predict_url("https://example.test/cat.jpg", model="resnet18", top_k=3) == (
        PREDICTION
    )


def test_predict_url_leaves_the_model_out_when_none(client, httpserver):
    httpserver.expect_request(
        "/predict", method="POST", json={"url": "https://example.test/a.png", "top_k": 5}
    ).respond_with_json(PREDICTION)
    assert client.predict_url("https://example.test/a.png")["category"] == "tabby"


def test_why_the_model_answered_is_read_from_the_body_or_the_gateways_header(client, httpserver):
    """backend_v2 says it in the answer; the v3 gateway, which relays a model service's
    answer untouched, in a header: the caller reads `selected_by` either way."""
    httpserver.expect_ordered_request("/predict").respond_with_json(
        {**PREDICTION, "selected_by": "session"}
    )
    httpserver.expect_ordered_request("/predict").respond_with_json(
        PREDICTION, headers={"X-Model-Selected-By": "service_default"}
    )
    httpserver.expect_ordered_request("/predict").respond_with_json(PREDICTION)
    assert client.predict_url("https://example.test/cat.jpg")["selected_by"] == "session"
    relayed = client.predict_url("https://example.test/cat.jpg")
    assert relayed == {**PREDICTION, "selected_by": "service_default"}
    assert "selected_by" not in client.predict_url("https://example.test/cat.jpg")  # v1


def test_predict_upload_sends_multipart_field_image(client, httpserver):
    seen = {}

    def handler(request: Request) -> Response:
        upload = request.files["image"]
        seen.update(
            filename=upload.filename,
            content_type=upload.content_type,
            data=upload.read(),
            form=dict(request.form),
        )
        return Response('{"model": "resnet18"}', content_type="application/json")

    httpserver.expect_request("/predict", method="POST").respond_with_handler(handler)
    assert client.predict_upload(b"\x89PNG...", "cat.png", model="resnet18", top_k=2) == {
        "model": "resnet18"
    }
    assert seen == {
        "filename": "cat.png",
        "content_type": "image/png",
        "data": b"\x89PNG...",
        "form": {"top_k": "2", "model": "resnet18"},
    }


def test_backend_error_carries_the_backends_code_message_and_details(client, httpserver):
    httpserver.expect_request("/predict", method="POST").respond_with_json(
        {"error": {"code": "unknown_model", "message": "Unknown model 'x'.", "available": ["a"]}},
        status=404,
    )
    with pytest.raises(BackendError) as caught:
        client.predict_url("https://example.test/cat.jpg", model="x")
    error = caught.value
    assert (error.status, error.code, error.message) == (404, "unknown_model", "Unknown model 'x'.")
    assert error.details == {"available": ["a"]}
    assert error.kind == "backend_error"
    assert str(error) == "HTTP 404 unknown_model: Unknown model 'x'."


def test_non_api_error_page_becomes_a_backend_error_quoting_the_body(client, httpserver):
    httpserver.expect_request("/ready").respond_with_data(
        "<html><body>Service Unavailable</body></html>", status=503, content_type="text/html"
    )
    with pytest.raises(BackendError) as caught:
        client.ready()
    assert caught.value.status == 503
    assert caught.value.code == "http_503"
    assert "Service Unavailable" in caught.value.message


def test_success_that_is_not_json_is_an_invalid_response(client, httpserver):
    httpserver.expect_request("/models").respond_with_data(
        "<html>a Streamlit page</html>", content_type="text/html"
    )
    with pytest.raises(InvalidResponse, match="Is SERVING_URL the backend's base URL"):
        client.models()


def test_set_model_puts_the_name_and_the_session_cookie_persists(client, httpserver):
    def put_model(request: Request) -> Response:
        response = Response('{"model": "resnet18"}', content_type="application/json")
        response.set_cookie("session", "signed-id-1", httponly=True)
        return response

    def get_model(request: Request) -> Response:
        model = "resnet18" if request.cookies.get("session") == "signed-id-1" else "default"
        return Response(f'{{"model": "{model}"}}', content_type="application/json")

    httpserver.expect_request("/model/resnet18", method="PUT").respond_with_handler(put_model)
    httpserver.expect_request("/model", method="GET").respond_with_handler(get_model)
    assert client.set_model("resnet18") == {"model": "resnet18"}
    assert client.get_model() == {"model": "resnet18"}
    assert client.session.cookies.get("session") == "signed-id-1"
    with ApiClient(client.base_url) as stranger:  # a different browser session: no cookie
        assert stranger.get_model() == {"model": "default"}


def test_set_model_escapes_the_name_into_one_path_segment(client, httpserver):
    def echo(request: Request) -> Response:
        body = {"path": request.path, "query": request.query_string.decode()}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request(re.compile("^/model/"), method="PUT").respond_with_handler(echo)
    # A '?' or '/' in a name stays in the name; it never starts a query or a new segment.
    assert client.set_model("res/net?x") == {"path": "/model/res/net?x", "query": ""}
    assert httpserver.log[-1][0].environ["RAW_URI"] == "/model/res%2Fnet%3Fx"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_serving_url_is_its_own_error(value):
    with pytest.raises(ServingUrlMissing, match="SERVING_URL is not set") as caught:
        ApiClient(value)
    assert caught.value.kind == "serving_url_missing"


@pytest.mark.parametrize("value", ["backend:8080", "ftp://host/", "https://", "http://h/?q=1"])
def test_malformed_serving_url_is_its_own_error(value):
    with pytest.raises(ServingUrlInvalid, match=re.escape(repr(value))):
        ApiClient(value)


def test_base_url_keeps_a_path_prefix_and_drops_the_trailing_slash():
    assert ApiClient(" https://gw.example.test/api/ ").base_url == "https://gw.example.test/api"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SERVING_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("API_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("API_READ_TIMEOUT", "7")
    monkeypatch.setenv("API_CONNECT_RETRIES", "1")
    client = ApiClient.from_settings(ClientSettings())
    assert client.base_url == "http://127.0.0.1:8080"
    assert client.timeout == (1.5, 7.0)
    assert client.session.get_adapter(client.base_url).max_retries.connect == 1


def retry_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]


@pytest.mark.parametrize("retries", [0, 2])
def test_refused_connections_are_retried_a_bounded_number_of_times(caplog, retries):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    client = ApiClient(f"http://127.0.0.1:{free_port()}", connect_retries=retries)
    with pytest.raises(BackendUnreachable, match=f"tried {retries + 1} times") as caught:
        client.predict_url("https://example.test/cat.jpg")
    assert "Connection refused" in caught.value.message
    assert caught.value.kind == "unreachable"
    assert len(retry_warnings(caplog)) == retries


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_connection_dropped_after_the_request_is_sent_is_not_retried(caplog, method):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with ConnectionCounter() as counter:
        client = ApiClient(f"http://127.0.0.1:{counter.port}", connect_retries=3)
        with pytest.raises(BackendUnreachable, match="closed the connection"):
            client.call(method, "/predict" if method == "POST" else "/health")
    assert counter.connections == 1
    assert retry_warnings(caplog) == []


def test_a_read_timeout_is_a_timeout_and_the_post_is_not_sent_again(caplog):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with ConnectionCounter(hold=True) as counter:
        client = ApiClient(f"http://127.0.0.1:{counter.port}", read_timeout=0.3, connect_retries=3)
        with pytest.raises(BackendTimeout, match=r"did not answer within 0\.3s") as caught:
            client.predict_upload(b"image bytes", "cat.jpg")
    assert caught.value.kind == "timeout"
    assert counter.connections == 1
    assert retry_warnings(caplog) == []


def test_every_client_error_shares_one_base():
    for error_type in (
        ServingUrlMissing,
        ServingUrlInvalid,
        BackendUnreachable,
        BackendTimeout,
        InvalidResponse,
    ):
        assert issubclass(error_type, ApiClientError)
    assert issubclass(BackendError, ApiClientError)


def test_importing_the_client_loads_no_torch_flask_or_streamlit():
    probe = (
        "import sys, apiclient; "
        "loaded = [m for m in ('torch', 'flask', 'streamlit') if m in sys.modules]; "
        "print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
