"""BACKEND_AUTH=id-token on the gateway: each call to a model service carries a Google ID
token whose audience is that service's URL, from a fake metadata server on loopback;
recording model services keep what they were sent."""

from __future__ import annotations

import json

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.images import sample_jpeg
from tests.support.metadata_server import FakeMetadataServer, jwt_claims
from tests.support.servers import start_service
from tests.v3_gateway.conftest import start_gateway

pytestmark = pytest.mark.slow

GATEWAY_SA = "v3-gateway@student-project.iam.gserviceaccount.com"
GOOGLE_403 = "<html><title>403 Forbidden</title><h1>Error: Forbidden</h1></html>"


class RecordingModelService:
    """A model service speaking the API, keeping each request's path and Authorization."""

    def __init__(self, name: str, *, refuse: bool = False) -> None:
        self.name = name
        self.refuse = refuse
        self.seen: list[tuple[str, str | None]] = []
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request("").respond_with_handler(self.answer)  # every path
        self.server.start()

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def authorizations(self, path: str) -> list[str | None]:
        return [auth for seen_path, auth in self.seen if seen_path == path]

    def answer(self, request: Request) -> Response:
        self.seen.append((request.path, request.headers.get("Authorization")))
        if self.refuse:  # what Cloud Run's front end says to a caller it does not admit
            return Response(GOOGLE_403, 403, content_type="text/html; charset=UTF-8")
        body = {
            "/ready": {"status": "ready"},
            "/models": {"models": [{"name": self.name, "available": True, "default": True}]},
            "/predict": {
                "model": self.name,
                "category": "tabby",
                "predictions": [{"label": "tabby", "index": 281, "probability": 0.9}],
            },
        }.get(request.path, {"error": {"code": "not_found", "message": "no such route"}})
        status = 200 if "error" not in body else 404
        return Response(json.dumps(body), status, content_type="application/json")

    def stop(self) -> None:
        self.server.clear()
        self.server.stop()


@pytest.fixture
def models():
    services = [RecordingModelService("efficientnet_lite0"), RecordingModelService("resnet18")]
    yield services
    for service in services:
        service.stop()


def start_unready_gateway(log_dir, session_dir, routes: dict[str, str], **env: str):
    """A gateway with BACKEND_AUTH=id-token that will never be ready (no model admits
    it): started once it answers /health."""
    services = ",".join(f"{name}={url}" for name, url in routes.items())
    return start_service(
        "v3_gateway",
        log_dir,
        ready_path="/health",
        env={
            "MODEL_SERVICES": services,
            "SESSION_DIR": str(session_dir),
            "WEB_CONCURRENCY": "1",
            "BACKEND_AUTH": "id-token",
            **env,
        },
    )


def predict(gateway, model: str) -> requests.Response:
    files = {"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")}
    return requests.post(gateway.url + "/predict", files=files, data={"model": model}, timeout=60)


def test_each_model_service_gets_a_token_for_its_own_url(models, service_log_dir, tmp_path):
    lite0, resnet18 = models
    with FakeMetadataServer(email=GATEWAY_SA) as metadata:
        gateway = start_gateway(
            service_log_dir, tmp_path, {m.name: m.url for m in models},
            backend_auth="id-token", **metadata.env,
        )  # fmt: skip
        try:
            answer = predict(gateway, "resnet18")
            listed = requests.get(gateway.url + "/models", timeout=30).json()["models"]
        finally:
            gateway.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "resnet18"
    assert all(entry["available"] for entry in listed)
    tokens = {jwt_claims(token)["aud"]: token for token in metadata.tokens}
    assert set(tokens) == {lite0.url, resnet18.url}  # one token per model service
    [sent] = resnet18.authorizations("/predict")
    assert sent == f"Bearer {tokens[resnet18.url]}"
    for service in models:  # the probes behind /ready and /models carry it too
        assert service.authorizations("/models")
        assert set(service.authorizations("/models")) == {f"Bearer {tokens[service.url]}"}
    assert jwt_claims(tokens[resnet18.url])["email"] == GATEWAY_SA
    assert {flavor for _, flavor in metadata.requests} == {"Google"}


def test_without_backend_auth_the_gateway_sends_no_token(models, service_log_dir, tmp_path):
    _, resnet18 = models
    with FakeMetadataServer() as metadata:
        gateway = start_gateway(
            service_log_dir, tmp_path, {m.name: m.url for m in models}, **metadata.env
        )
        try:
            assert predict(gateway, "resnet18").status_code == 200
        finally:
            gateway.stop()
    assert resnet18.authorizations("/predict") == [None]
    assert metadata.requests == []


def test_a_model_that_refuses_the_gateway_says_what_to_grant(service_log_dir, tmp_path):
    refusing = RecordingModelService("resnet18", refuse=True)
    try:
        with FakeMetadataServer(email=GATEWAY_SA) as metadata:
            gateway = start_unready_gateway(
                service_log_dir, tmp_path, {"resnet18": refusing.url}, **metadata.env
            )
            try:
                answer = predict(gateway, "resnet18")
                [entry] = requests.get(gateway.url + "/models", timeout=30).json()["models"]
            finally:
                gateway.stop()
    finally:
        refusing.stop()
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert "Model 'resnet18' answered HTTP 403 without the API's JSON." in message
    assert "refused the gateway's identity (HTTP 403)" in message
    assert f"grant roles/run.invoker to {GATEWAY_SA}" in message
    assert entry["available"] is False
    assert f"grant roles/run.invoker to {GATEWAY_SA}" in entry["reason"]


def test_no_metadata_server_makes_the_model_unavailable_not_a_crash(
    models, service_log_dir, tmp_path
):
    _, resnet18 = models
    # The suite points GCE_METADATA_HOST at a closed loopback port.
    gateway = start_unready_gateway(service_log_dir, tmp_path, {m.name: m.url for m in models})
    try:
        answer = predict(gateway, "resnet18")
    finally:
        gateway.stop()
    assert answer.status_code == 503
    assert "The gateway cannot call model 'resnet18'" in answer.json()["error"]["message"]
    assert "no Google identity is available here" in answer.json()["error"]["message"]
    assert resnet18.authorizations("/predict") == []
