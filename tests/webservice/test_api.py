"""The Flask set-up every service shares: the request limit, JSON errors, Retry-After."""

from __future__ import annotations

import io

from flask import Flask, request

from webservice import errors
from webservice.api import MULTIPART_OVERHEAD_BYTES, UploadSettings, init_api
from webservice.stopping import stopping


class Ready:
    def warm_up(self, cores: int | None = None) -> None:
        pass

    def not_ready_reason(self) -> str | None:
        return None


def make_app(**limits) -> Flask:
    app = Flask(__name__)
    init_api(app, UploadSettings(**limits), readiness=Ready())

    @app.post("/busy")
    def busy() -> dict[str, str]:
        raise errors.ModelBusy("try again shortly", model="m", retry_after_seconds=2)

    @app.post("/upload")
    def upload() -> dict[str, str]:
        return {"size": str(len(request.files["image"].read()))}

    return app


def test_the_request_limit_is_the_upload_limit_plus_the_multipart_framing():
    app = make_app(max_upload_bytes=1000)
    assert app.config["MAX_CONTENT_LENGTH"] == 1000 + MULTIPART_OVERHEAD_BYTES
    client = app.test_client()
    fits = client.post("/upload", data={"image": (io.BytesIO(b"x" * 1000), "a.jpg")})
    assert fits.status_code == 200
    too_big = client.post("/upload", data={"image": (io.BytesIO(b"x" * 100_000), "a.jpg")})
    assert too_big.status_code == 413
    assert too_big.get_json()["error"]["code"] == "payload_too_large"


def test_an_error_with_a_retry_time_says_it_in_retry_after():
    answer = make_app().test_client().post("/busy")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.get_json()["error"] == {
        "code": "model_busy",
        "message": "try again shortly",
        "model": "m",
        "retry_after_seconds": 2,
    }


def test_health_and_ready_are_there():
    client = make_app().test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/ready").get_json() == {"status": "ready"}


def test_after_sigterm_every_new_request_is_refused_with_retry_after():
    client = make_app().test_client()
    stopping.set()  # what webservice/stopping.py's worker does at SIGTERM
    try:
        refused = [client.get("/health"), client.post("/busy")]
    finally:
        stopping.clear()
    for answer in refused:
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.get_json()["error"]["code"] == "shutting_down"
    assert client.get("/health").status_code == 200
