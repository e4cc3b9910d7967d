"""BACKEND_AUTH=id-token: a Google ID token from the metadata server on every call.

A fake metadata server and a recording backend on loopback; the client runs
in a fresh process (see in_fresh_process.py) with GCE_METADATA_HOST/IP
pointing at the fake, as google-auth reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError
from werkzeug import Request, Response

from apiclient import ClientSettings
from apiclient.auth import audience_of, cloud_run_service, refused_message
from tests.support.listener import ConnectionCounter
from tests.support.metadata_server import FakeMetadataServer, jwt_claims
from tests.support.servers import REPO_ROOT

FRONTEND_SA = "frontend-v1-sa@student-project.iam.gserviceaccount.com"
GOOGLE_403 = (
    "<html><head><title>403 Forbidden</title></head><body><h1>Error: Forbidden</h1>"
    "<h2>Your client does not have permission to get URL <code>/health</code> "
    "from this server.</h2></body></html>"
)


class RecordingBackend:
    """A /health (and /models) that keeps each request's Authorization header."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.authorizations: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("Authorization"))
        if self.status != 200:
            return Response(GOOGLE_403, self.status, content_type="text/html")
        body = {"status": "ok"} if request.path == "/health" else {"models": []}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def backend(httpserver):
    recording = RecordingBackend()
    httpserver.expect_request("/health").respond_with_handler(recording)
    httpserver.expect_request("/models").respond_with_handler(recording)
    recording.url = httpserver.url_for("/").rstrip("/")
    return recording


def run_fresh(*args: str, env: dict, timeout: float = 90) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "tests.apiclient.in_fresh_process", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def id_token_env(metadata: FakeMetadataServer, url: str) -> dict:
    return {**metadata.env, "BACKEND_AUTH": "id-token", "SERVING_URL": url}


def test_every_call_carries_an_id_token_whose_audience_is_the_backends_url(backend):
    with FakeMetadataServer(email=FRONTEND_SA) as metadata:
        outcomes = run_fresh("calls", "3", env=id_token_env(metadata, backend.url + "/"))
    assert outcomes == [{"status": "ok"}] * 3
    assert metadata.identity_requests == [backend.url]  # one token, cached for three calls
    [token] = metadata.tokens
    assert backend.authorizations == [f"Bearer {token}"] * 3
    claims = jwt_claims(token)
    assert claims["aud"] == backend.url
    assert claims["email"] == FRONTEND_SA
    # google-auth's own lookup: every request to the metadata server said Metadata-Flavor: Google.
    assert metadata.requests
    assert {flavor for _, flavor in metadata.requests} == {"Google"}


def test_a_token_about_to_expire_is_replaced_and_the_new_one_kept(backend):
    # The first token expires in a minute: within google-auth's refresh threshold,
    # so the next call fetches another; that one lives an hour and is kept.
    with FakeMetadataServer(lifetimes=(60, 3600)) as metadata:
        outcomes = run_fresh("calls", "3", env=id_token_env(metadata, backend.url))
    assert outcomes == [{"status": "ok"}] * 3
    first, second = metadata.tokens
    assert backend.authorizations == [f"Bearer {first}", f"Bearer {second}", f"Bearer {second}"]
    assert metadata.identity_requests == [backend.url, backend.url]


def test_clients_of_one_process_share_the_token(backend):
    with FakeMetadataServer() as metadata:
        run_fresh("calls", "4", "2", env=id_token_env(metadata, backend.url))
    assert len(metadata.tokens) == 1
    assert len(set(backend.authorizations)) == 1


def test_without_backend_auth_no_header_is_sent_and_no_metadata_server_asked(backend):
    with FakeMetadataServer() as metadata:
        env = {**metadata.env, "BACKEND_AUTH": "", "SERVING_URL": backend.url}
        outcomes = run_fresh("calls", "2", env=env)
    assert outcomes == [{"status": "ok"}] * 2
    assert backend.authorizations == [None, None]
    assert metadata.requests == []


def test_a_refused_identity_says_which_role_to_grant_to_whom(httpserver):
    refusing = RecordingBackend(status=403)
    httpserver.expect_request("/health").respond_with_handler(refusing)
    with FakeMetadataServer(email=FRONTEND_SA) as metadata:
        [outcome] = run_fresh("calls", "1", env=id_token_env(metadata, httpserver.url_for("/")))
    assert outcome["kind"] == "backend_error"
    assert outcome["status"] == 403
    assert "The backend refused the frontend's identity (HTTP 403)" in outcome["message"]
    assert f"grant roles/run.invoker to {FRONTEND_SA}" in outcome["message"]
    assert f"--member=serviceAccount:{FRONTEND_SA} --role=roles/run.invoker" in outcome["message"]


def test_no_metadata_server_is_a_clear_error_and_is_not_asked_again_at_once(backend):
    # A listener that closes every connection: google-auth's ping fails each try.
    with ConnectionCounter() as listener:
        address = f"127.0.0.1:{listener.port}"
        env = {
            "GCE_METADATA_HOST": address,
            "GCE_METADATA_IP": address,
            "GCE_METADATA_DETECT_RETRIES": "2",
            "BACKEND_AUTH": "id-token",
            "SERVING_URL": backend.url,
        }
        outcomes = run_fresh("calls", "3", env=env)
    assert [outcome["kind"] for outcome in outcomes] == ["auth"] * 3
    assert "no Google identity is available here" in outcomes[0]["message"]
    assert "leave BACKEND_AUTH unset" in outcomes[0]["message"]
    assert listener.connections == 2  # one lookup's two tries; the next calls fail fast
    assert backend.authorizations == []  # nothing was sent without the token


@pytest.mark.slow
def test_the_frontend_page_calls_its_backend_with_the_token(backend):
    with FakeMetadataServer() as metadata:
        page = run_fresh("frontend", "frontend_v1", env=id_token_env(metadata, backend.url))
    assert page["exception"] == []
    assert page["errors"] == []
    [token] = metadata.tokens
    assert backend.authorizations == [f"Bearer {token}"]  # its GET /models


@pytest.mark.slow
def test_the_frontend_page_shows_the_refusal_with_the_fix(httpserver):
    httpserver.expect_request("/models").respond_with_handler(RecordingBackend(status=403))
    with FakeMetadataServer(email=FRONTEND_SA) as metadata:
        page = run_fresh(
            "frontend", "frontend_v2", env=id_token_env(metadata, httpserver.url_for("/"))
        )
    [error] = page["errors"]
    assert error.startswith("The backend refused the frontend's identity (HTTP 403): grant")
    assert f"roles/run.invoker to {FRONTEND_SA}" in error


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "none"), ("", "none"), ("id-token", "id-token")]
)
def test_backend_auth_is_off_unless_asked_for(monkeypatch, value, mode):
    if value is None:
        monkeypatch.delenv("BACKEND_AUTH", raising=False)
    else:
        monkeypatch.setenv("BACKEND_AUTH", value)
    assert ClientSettings().backend_auth == mode


def test_an_unknown_backend_auth_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("BACKEND_AUTH", "api-key")
    with pytest.raises(ValidationError, match="'none' or 'id-token'"):
        ClientSettings()


def test_the_audience_is_the_services_url_without_a_path():
    assert audience_of("https://backend-v1-abc123-nn.a.run.app") == (
        "https://backend-v1-abc123-nn.a.run.app"
    )
    assert audience_of("http://127.0.0.1:8080/api") == "http://127.0.0.1:8080"


def test_a_refusal_without_backend_auth_explains_both_ways_out():
    url = "https://backend-v1-abc123xyz-nn.a.run.app"
    assert cloud_run_service(url) == "backend-v1"
    message = refused_message(403, url, None, "none")
    assert "accepts only authenticated callers" in message
    assert "`gcloud run deploy --help` lists the flag" in message
    assert "--allow-unauthenticated" not in message  # Q3 asks for it: --help teaches it
    assert "BACKEND_AUTH=id-token" in message
    assert "roles/run.invoker on backend-v1" in message
