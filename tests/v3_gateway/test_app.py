"""The gateway app in-process (Flask's test client) against loopback upstreams:
a port nobody listens on (a dead model) and pytest-httpserver standing in for
a model service, to see exactly what the gateway forwards and how it relays."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from tests.support.images import sample_jpeg
from tests.support.servers import free_port
from v3_gateway.app import create_app
from v3_gateway.settings import GatewaySettings
from webservice.sessions import SessionSettings

PREDICTION = {
    "model": "resnet18",
    "category": "tabby",
    "predictions": [{"label": "tabby", "index": 281, "probability": 0.5}],
    "timing_ms": {"total_ms": 1.0},
}


def make_client(tmp_path, routes: dict[str, str], **settings):
    gateway_settings = GatewaySettings(
        model_services=",".join(f"{name}={url}" for name, url in routes.items()),
        breaker_fail_max=2,
        breaker_reset_timeout=30,
        probe_cache_seconds=0,
        **settings,
    )
    app = create_app(gateway_settings, SessionSettings(session_dir=str(tmp_path / "sessions")))
    return app.test_client()


@pytest.fixture
def dead_url():
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture
def model_stub(httpserver):
    return httpserver.url_for("").rstrip("/")


def upload_form(**fields):
    return {"image": (io.BytesIO(sample_jpeg("cat")), "cat.jpg"), **fields}


def test_upload_bytes_are_forwarded_untouched(tmp_path, httpserver, model_stub):
    httpserver.expect_request("/predict", method="POST").respond_with_json(PREDICTION)
    client = make_client(tmp_path, {"resnet18": model_stub})
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="cat.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + sample_jpeg("cat") + b"\r\n--XyZ--\r\n"
    )
    answer = client.post("/predict", data=body, content_type="multipart/form-data; boundary=XyZ")
    assert answer.status_code == 200
    assert answer.get_json() == PREDICTION
    ((forwarded, _),) = httpserver.log
    assert forwarded.get_data() == body  # byte for byte: nothing decoded or re-encoded
    assert forwarded.headers["Content-Type"] == "multipart/form-data; boundary=XyZ"


def test_json_body_is_forwarded_with_the_routed_model(tmp_path, httpserver, model_stub, dead_url):
    httpserver.expect_request("/predict", method="POST").respond_with_json(PREDICTION)
    client = make_client(tmp_path, {"efficientnet_lite0": dead_url, "resnet18": model_stub})
    answer = client.post(
        "/model/resnet18/predict", json={"url": "https://x.test/a.jpg", "top_k": 2}
    )
    assert answer.status_code == 200
    ((forwarded, _),) = httpserver.log
    assert json.loads(forwarded.get_data()) == {
        "url": "https://x.test/a.jpg",
        "top_k": 2,
        "model": "resnet18",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("image_host_failed", 502),
        # Slow image hosts hold every URL download slot; uploads are still served.
        ("url_fetch_busy", 503),
    ],
)
def test_image_host_errors_are_relayed_and_do_not_trip_the_circuit(
    tmp_path, httpserver, model_stub, code, status
):
    failure = {"error": {"code": code, "message": "The image host is the problem."}}
    httpserver.expect_request("/predict").respond_with_json(failure, status=status)
    client = make_client(tmp_path, {"resnet18": model_stub})
    for _ in range(4):  # twice the breaker's fail_max
        answer = client.post("/predict", json={"url": "https://x.test/a.jpg"})
        assert answer.status_code == status
        assert answer.get_json() == failure
    assert client.get("/models").get_json()["models"][0]["circuit"] == "closed"


def test_each_answer_says_why_its_model_answered_in_a_header(tmp_path, httpserver, model_stub):
    httpserver.expect_request("/ready").respond_with_json({"status": "ready"})
    httpserver.expect_request("/models").respond_with_json(
        {"models": [{"name": "resnet18", "available": True}]}
    )
    httpserver.expect_request("/predict", method="POST").respond_with_json(PREDICTION)
    client = make_client(tmp_path, {"resnet18": model_stub})

    def why(answer) -> str:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json() == PREDICTION  # the model service's body, untouched
        return answer.headers["X-Model-Selected-By"]

    assert why(client.post("/predict", data=upload_form())) == "service_default"
    assert client.put("/model/resnet18").status_code == 200
    assert why(client.post("/predict", data=upload_form())) == "session"
    assert why(client.post("/predict", data=upload_form(model="resnet18"))) == "request"
    assert why(client.post("/model/resnet18/predict", json={"url": "https://x.test/a.jpg"})) == (
        "request"
    )


def test_a_full_bulkhead_counts_against_the_circuit(tmp_path, hanging_service):
    """A hung model fills its slots: the refusals open its circuit, not only timeouts."""
    client = make_client(
        tmp_path,
        {"resnet18": hanging_service.url},
        max_in_flight_per_model=1,
        queue_wait_seconds=0.1,
        fetch_total_timeout=30,
    )
    stuck = threading.Thread(target=client.post, args=("/predict",), kwargs={"json": {}})
    stuck.daemon = True
    stuck.start()
    deadline = time.monotonic() + 10
    while hanging_service.open_connections < 1:
        assert time.monotonic() < deadline, "the first request never reached the model"
        time.sleep(0.02)
    codes = [client.post("/predict", json={}).get_json()["error"] for _ in range(3)]
    assert [error["code"] for error in codes] == ["model_busy", "model_busy", "model_unavailable"]
    assert codes[-1]["circuit"] == "open"  # two refusals (fail_max) opened it
    hanging_service.stop()  # the stuck request fails now; the test does not wait for it


def test_non_json_answers_become_a_clear_502(tmp_path, httpserver, model_stub):
    # What Cloud Run itself sends when the service refuses unauthenticated calls.
    httpserver.expect_request("/predict").respond_with_data(
        "<html>403 Forbidden</html>", status=403, content_type="text/html"
    )
    client = make_client(tmp_path, {"resnet18": model_stub})
    answer = client.post("/predict", json={"url": "https://x.test/a.jpg"})
    assert answer.status_code == 502
    error = answer.get_json()["error"]
    assert error["code"] == "model_service_failed"
    assert error["upstream_status"] == 403
    assert "allows unauthenticated calls" in error["message"]


def test_dead_model_gets_503_then_an_open_circuit(tmp_path, dead_url):
    client = make_client(tmp_path, {"resnet18": dead_url})
    first = client.post("/predict", data=upload_form())
    assert first.status_code == 503
    assert first.get_json()["error"]["code"] == "model_unavailable"
    client.post("/predict", data=upload_form())
    refused = client.post("/predict", data=upload_form())
    assert refused.status_code == 503
    assert refused.get_json()["error"]["circuit"] == "open"
    assert refused.headers["Retry-After"] == "30"
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "default model resnet18" in ready.get_json()["error"]["message"]


def test_models_reports_each_model_live(tmp_path, httpserver, model_stub, dead_url):
    httpserver.expect_request("/ready").respond_with_json({"status": "ready"})
    httpserver.expect_request("/models").respond_with_json(
        {"models": [{"name": "resnet18", "available": True, "description": "ResNet-18"}]}
    )
    client = make_client(
        tmp_path,
        {"resnet18": model_stub, "efficientnet_lite0": dead_url},
        default_model="efficientnet_lite0",
    )
    listed = client.get("/models").get_json()["models"]
    assert [(m["name"], m["available"], m["default"]) for m in listed] == [
        ("resnet18", True, False),
        ("efficientnet_lite0", False, True),
    ]
    assert listed[0]["description"] == "ResNet-18"
    reason = listed[1]["reason"]
    assert reason.startswith("model service unreachable (connect_failed: "), reason
    assert dead_url.removeprefix("http://").split(":")[1] in reason  # libcurl names the port


def test_misrouted_service_is_reported(tmp_path, httpserver, model_stub):
    httpserver.expect_request("/ready").respond_with_json({"status": "ready"})
    httpserver.expect_request("/models").respond_with_json(
        {"models": [{"name": "resnet50", "available": True}]}
    )
    client = make_client(tmp_path, {"resnet18": model_stub})
    (entry,) = client.get("/models").get_json()["models"]
    assert entry["available"] is False
    assert "serves ['resnet50']" in entry["reason"]


def test_session_choice_checks_the_model(tmp_path, dead_url):
    client = make_client(tmp_path, {"efficientnet_lite0": dead_url, "resnet18": dead_url})
    assert client.get("/model").get_json() == {
        "model": "efficientnet_lite0",
        "selected_by": "service_default",
        "default": "efficientnet_lite0",
    }
    unknown = client.put("/model/vgg16")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["available"] == ["efficientnet_lite0", "resnet18"]
    down = client.put("/model/resnet18")
    assert down.status_code == 503
    assert "unchanged" in down.get_json()["error"]["message"]
    assert client.get("/model").get_json()["model"] == "efficientnet_lite0"


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code"),
    [
        (
            "/predict",
            {"data": "plain", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        ("/predict", {"json": ["not", "an", "object"]}, 400, "bad_request"),
        ("/predict", {"json": {"url": "https://x.test/a.jpg", "model": 18}}, 400, "bad_request"),
        (
            "/predict",
            {"json": {"url": "https://x.test/a.jpg", "model": "vgg16"}},
            404,
            "unknown_model",
        ),
        ("/model/vgg16/predict", {"json": {"url": "https://x.test/a.jpg"}}, 404, "unknown_model"),
        # The path and the body name different models.
        ("/model/efficientnet_lite0/predict", {"data": {"model": "resnet18"}}, 400, "bad_request"),
    ],
)
def test_bad_requests_never_reach_a_model(tmp_path, dead_url, path, kwargs, status, code):
    client = make_client(tmp_path, {"efficientnet_lite0": dead_url, "resnet18": dead_url})
    if "data" in kwargs and isinstance(kwargs["data"], dict):
        kwargs = {"data": {**kwargs["data"], **upload_form()}}
    answer = client.post(path, **kwargs)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == code
    # None of them was a model failure: the dead models' circuits are still closed.
    assert {m["circuit"] for m in client.get("/models").get_json()["models"]} == {"closed"}


def test_too_large_upload_is_refused_by_the_gateway(tmp_path, dead_url):
    client = make_client(tmp_path, {"resnet18": dead_url}, max_upload_bytes=1000)
    # The limit is the image's plus room for the multipart framing (64 KiB).
    big = {"image": (io.BytesIO(b"\0" * 100_000), "big.jpg")}
    answer = client.post("/predict", data=big)
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "payload_too_large"
