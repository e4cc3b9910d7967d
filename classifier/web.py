"""Flask glue every service shares (backends and gateway): JSON errors, /health, /ready.

No torch and no image code here, so the gateway can use it too."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from classifier import errors

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def configure_logging(level: int = logging.INFO) -> None:
    """Send the app's own log lines to stderr beside gunicorn's, once per process."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
        )


def error_response(code: str, message: str, status: int, **details):
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.ApiError)
    def _api_error(exc: errors.ApiError):
        return error_response(exc.code, exc.message, exc.status, **exc.details)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc):
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(
            "payload_too_large",
            f"The request body is larger than the limit of {errors.size_text(limit)}.",
            413,
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        return error_response(_HTTP_CODES.get(status, "http_error"), exc.description or "", status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unexpected error")
        return error_response("internal", "The server failed; the error was logged.", 500)


def health_blueprint(is_ready: Callable[[], str | None]) -> Blueprint:
    """`is_ready` returns None when ready, else the reason it is not."""
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/health")
    def health():
        return {"status": "ok"}

    @blueprint.get("/ready")
    def ready():
        reason = is_ready()
        if reason:
            return error_response("not_ready", reason, 503)
        return {"status": "ready"}

    return blueprint
