"""The API's error vocabulary: each error knows its HTTP status and a stable code.

Every failure a client can cause is one of these, so a handler in api.py turns
it into `{"error": {"code", "message"}}` and bad input never becomes a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class UrlForbidden(ApiError):
    status, code = 400, "url_forbidden"


class UnknownModel(ApiError):
    status, code = 404, "unknown_model"

    @classmethod
    def named(cls, name: str, available: Iterable[str]) -> UnknownModel:
        """The one wording of this error, wherever a model name is looked up."""
        names = list(available)
        listed = ", ".join(names) if names else "none"
        return cls(f"Unknown model {name!r}. Models available here: {listed}.", available=names)


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


def size_text(size: int) -> str:
    """A byte count as people read it: MB (of 1024 * 1024 bytes, as MAX_UPLOAD_BYTES), KB, bytes."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


class UnsupportedImage(ApiError):
    status, code = 415, "unsupported_media_type"


class UnusableImage(ApiError):
    status, code = 422, "unusable_image"


class UpstreamFailed(ApiError):
    status, code = 502, "image_host_failed"


class NotReady(ApiError):
    status, code = 503, "not_ready"


class ModelUnavailable(ApiError):
    status, code = 503, "model_unavailable"


class FetchesBusy(ApiError):
    """Every URL download slot of this worker is taken (uploads still get through)."""

    status, code = 503, "url_fetch_busy"


class ShuttingDown(ApiError):
    """This instance got SIGTERM: it finishes what it has and takes nothing new
    (webservice/stopping.py); another instance answers the same request."""

    status, code = 503, "shutting_down"


class SessionStoreUnavailable(ApiError):
    """The session store cannot be reached: a caller's own choice can be neither read
    nor saved (requests that name their model still work)."""

    status, code = 503, "session_store_unavailable"


class UpstreamTimeout(ApiError):
    status, code = 504, "timeout"


class ClientGone(ApiError):
    """The caller closed its connection before the work began; nobody reads this answer,
    but the access log shows 499 (nginx's "client closed request")."""

    status, code = 499, "client_closed_request"


# Raised by the v3 gateway only (a model service answers for itself above).
class ModelBusy(ApiError):
    """The model already has as many requests in flight as this gateway allows."""

    status, code = 503, "model_busy"


class ModelServiceFailed(ApiError):
    """A model service answered, but not with the API's JSON (a crash page, a proxy error)."""

    status, code = 502, "model_service_failed"
