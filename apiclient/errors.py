"""What can go wrong talking to the backend, one exception type per state.

A frontend shows each state differently (a setup problem, a backend that is
down, a slow backend, the backend's own refusal), so they are distinct types
sharing one base that always carries a plain-language message.
"""

from __future__ import annotations

from typing import Any


class ApiClientError(Exception):
    """Base of every client failure; `kind` names the state for UIs and logs."""

    kind = "client_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServingUrlMissing(ApiClientError):
    """SERVING_URL is not set, so there is no backend to talk to."""

    kind = "serving_url_missing"


class ServingUrlInvalid(ApiClientError):
    """SERVING_URL is set but is not an http(s) base URL."""

    kind = "serving_url_invalid"


class BackendUnreachable(ApiClientError):
    """No connection could be made (refused, DNS, TLS), even after the bounded retries."""

    kind = "unreachable"


class BackendAuthFailed(ApiClientError):
    """BACKEND_AUTH=id-token, but no ID token could be had (no metadata server, no key)."""

    kind = "auth"


class BackendTimeout(ApiClientError):
    """The backend accepted the connection but did not answer in time."""

    kind = "timeout"


class BackendError(ApiClientError):
    """The backend answered with an error status; `code` and `message` are its own."""

    kind = "backend_error"

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}"


class InvalidResponse(ApiClientError):
    """A success status whose body is not the JSON the API promises (wrong URL?)."""

    kind = "invalid_response"
