"""The Flask set-up every service shares: JSON errors, /health and /ready, the request limit.

`init_api(app, settings, readiness)` is the one call a service's create_app makes
for all of it, as a Flask extension's `init_app` would. No torch and no image
code here, so the gateway uses it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, jsonify
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from webservice import errors
from webservice.connection import client_gone
from webservice.stopping import stopping

log = logging.getLogger(__name__)

# A multipart upload carries its image inside boundaries and part headers: the
# request may be this much larger than the image limit.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
READINESS_EXTENSION = "readiness"

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class UploadSettings(BaseSettings):
    """The largest image a caller may send, read from the environment (MAX_UPLOAD_BYTES)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @property
    def max_request_bytes(self) -> int:
        """The request limit: the image's, plus room for the multipart framing."""
        return self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES


class Readiness(Protocol):
    """How a service gets ready in each gunicorn worker, and whether it is.

    gunicorn's hooks (webservice/server.py) call warm_up once per worker, after
    the fork and before the worker takes requests; /ready answers 503 with
    not_ready_reason until it returns None.
    """

    def warm_up(self, cores: int | None = None) -> None:
        """Make this worker ready, using at most `cores` cores (None: every one it may use)."""
        ...

    def not_ready_reason(self) -> str | None:
        """Why this worker cannot serve yet, or None when it can."""
        ...


def init_api(app: Flask, settings: UploadSettings, readiness: Readiness) -> None:
    """Set `app` up the way every service's public API behaves."""
    configure_logging()
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keys in the order written
    register_error_handlers(app)
    app.before_request(_refuse_when_stopping)
    app.before_request(_refuse_if_client_gone)
    app.register_blueprint(health_blueprint(readiness.not_ready_reason))
    app.extensions[READINESS_EXTENSION] = readiness


# How soon a client refused by a stopping instance may send its request again.
STOPPING_RETRY_AFTER_SECONDS = 1


def _refuse_when_stopping() -> None:
    """After SIGTERM, a request that starts gets 503 at once: the instance is going away,
    and the request's worst case may not fit what is left of its time."""
    if stopping.is_set():
        raise errors.ShuttingDown(
            "This instance is shutting down and takes no new requests; send it again.",
            retry_after_seconds=STOPPING_RETRY_AFTER_SECONDS,
        )


def readiness_of(app: object) -> Readiness | None:
    """What init_api was given for the WSGI app `app`, if anything (gunicorn's hooks warm
    it up in each worker; a bare WSGI function, as in bench/baselines, has none)."""
    extensions = getattr(app, "extensions", None)
    readiness: Readiness | None = (extensions or {}).get(READINESS_EXTENSION)
    return readiness


def configure_logging(level: int = logging.INFO) -> None:
    """Send the app's own log lines to stderr beside gunicorn's, once per process."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
        )


def error_response(code: str, message: str, status: int, **details: Any) -> Response:
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    return response


def _refuse_if_client_gone() -> None:
    """A request whose client left while it waited for a thread (a server frozen or
    overloaded meanwhile) is answered to nobody: do none of its work."""
    if client_gone():
        raise errors.ClientGone("The client closed its connection before the request began.")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.ApiError)
    def _api_error(exc: errors.ApiError) -> Response:
        response = error_response(exc.code, exc.message, exc.status, **exc.details)
        if "retry_after_seconds" in exc.details:  # a busy or failing dependency: come back then
            response.headers["Retry-After"] = str(exc.details["retry_after_seconds"])
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(
            "payload_too_large",
            f"The request body is larger than the limit of {errors.size_text(limit or 0)}.",
            413,
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return error_response(_HTTP_CODES.get(status, "http_error"), exc.description or "", status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return error_response("internal", "The server failed; the error was logged.", 500)


def health_blueprint(not_ready_reason: Callable[[], str | None]) -> Blueprint:
    """/health (the process is alive) and /ready (503 with the reason until it is ready)."""
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @blueprint.get("/ready")
    def ready() -> Response | dict[str, str]:
        reason = not_ready_reason()
        if reason:
            return error_response("not_ready", reason, 503)
        return {"status": "ready"}

    return blueprint
