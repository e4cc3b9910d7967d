"""A small client of the public HTTP API, shared by the frontends and the autograder's probes.

One requests.Session per client: connections are reused, explicit (connect,
read) timeouts apply to every call, and cookies persist across calls, which is
what keeps a v2 backend's server-side session (the user's chosen model).
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError
from urllib3.util.retry import Retry

from apiclient.auth import AUTH_NONE, IdTokenAuth, audience_of, id_token_source, refused_message
from apiclient.errors import (
    ApiClientError,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    InvalidResponse,
    ServingUrlInvalid,
    ServingUrlMissing,
)
from apiclient.settings import ClientSettings

USER_AGENT = "cloud-ml-apiclient/1"
# The v3 gateway passes a model service's answer on untouched and says in this
# header why that model answered (backend_v2 says it in the answer: "selected_by").
SELECTED_BY_HEADER = "X-Model-Selected-By"
BODY_SNIPPET_CHARS = 200


def connect_only_retry(retries: int) -> Retry:
    """Retry only failures to connect: such a request never reached the server.

    A read error or read timeout means the request may have been received (a
    POST /predict may be running), so it is never retried; error statuses are
    answers, returned as they are.
    """
    return Retry(
        total=retries,
        connect=retries,
        read=0,
        status=0,
        other=0,
        backoff_factor=0.2,
        raise_on_status=False,
    )


def normalise_base_url(base_url: str | None) -> str:
    if base_url is None or not base_url.strip():
        raise ServingUrlMissing(
            "SERVING_URL is not set. Set it to the backend's base URL, "
            "e.g. SERVING_URL=https://backend-v1-<hash>-nn.a.run.app (or http://127.0.0.1:8080)."
        )
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServingUrlInvalid(
            f"SERVING_URL={base_url!r} is not an http(s) URL. "
            "Use the backend's base URL, e.g. https://backend-v1-<hash>-nn.a.run.app."
        )
    if parts.query or parts.fragment:
        raise ServingUrlInvalid(
            f"SERVING_URL={base_url!r} has a query or fragment; use only the base URL."
        )
    return url


class ApiClient:
    """Calls the backend's API; every method returns its parsed JSON or raises ApiClientError."""

    def __init__(
        self,
        base_url: str | None,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 60.0,
        connect_retries: int = 2,
        auth: str = AUTH_NONE,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.timeout = (connect_timeout, read_timeout)
        self.auth = auth
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.tokens = None
        if auth != AUTH_NONE:  # a Google ID token for this backend (apiclient/auth.py)
            self.tokens = id_token_source(audience_of(self.base_url))
            self.session.auth = IdTokenAuth(self.tokens)
        self.retry = connect_only_retry(connect_retries)
        adapter = HTTPAdapter(max_retries=self.retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_settings(cls, settings: ClientSettings | None = None) -> ApiClient:
        settings = settings or ClientSettings()
        return cls(
            settings.serving_url,
            connect_timeout=settings.api_connect_timeout,
            read_timeout=settings.api_read_timeout,
            connect_retries=settings.api_connect_retries,
            auth=settings.backend_auth,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # The public API, one method per route.

    def health(self) -> dict[str, Any]:
        return self.call("GET", "/health")

    def ready(self) -> dict[str, Any]:
        return self.call("GET", "/ready")

    def models(self) -> dict[str, Any]:
        return self.call("GET", "/models")

    def predict_url(self, url: str, model: str | None = None, top_k: int = 5) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "top_k": top_k}
        if model:
            body["model"] = model
        return self.call("POST", "/predict", json=body)

    def predict_upload(
        self, data: bytes, filename: str, model: str | None = None, top_k: int = 5
    ) -> dict[str, Any]:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        form = {"top_k": str(top_k)}
        if model:
            form["model"] = model
        return self.call(
            "POST", "/predict", files={"image": (filename, data, content_type)}, data=form
        )

    def get_model(self) -> dict[str, Any]:
        """This session's model (v2 and the gateway keep it in a server-side session)."""
        return self.call("GET", "/model")

    def set_model(self, name: str) -> dict[str, Any]:
        return self.call("PUT", "/model/" + quote(name, safe=""))

    # The one place where HTTP turns into JSON or a typed error.

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise BackendUnreachable(
                f"Could not connect to {self.base_url} within {self.timeout[0]:g}s "
                f"(tried {self._attempts()} times): {_reason(exc)}"
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise BackendTimeout(
                f"{self.base_url} accepted {method} {path} but did not answer within "
                f"{self.timeout[1]:g}s."
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            if _dropped_after_sending(exc):
                raise BackendUnreachable(
                    f"{self.base_url} closed the connection without answering {method} {path} "
                    f"(not retried: the request may have reached it): {_reason(exc)}"
                ) from exc
            raise BackendUnreachable(
                f"Could not reach {self.base_url} (tried {self._attempts()} times): {_reason(exc)}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise ApiClientError(f"{method} {url} failed: {exc}") from exc
        with response:
            try:
                return parse_response(response)
            except BackendError as error:
                if error.status in (401, 403):
                    identity = self.tokens.identity if self.tokens else None
                    message = refused_message(error.status, self.base_url, identity, self.auth)
                    raise BackendError(error.status, "caller_refused", message) from error
                raise

    def _attempts(self) -> int:
        return 1 + (self.retry.connect or 0)


def parse_response(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    request = response.request
    where = f"{request.method} {response.url}"
    if response.status_code >= 400:
        raise backend_error(response.status_code, response.reason, body, response.text)
    if not isinstance(body, dict):
        raise InvalidResponse(
            f"{where} answered {response.status_code} with "
            f"{response.headers.get('Content-Type', 'no content type')}, not the API's JSON: "
            f"{_snippet(response.text)!r}. Is SERVING_URL the backend's base URL?"
        )
    if "selected_by" not in body and SELECTED_BY_HEADER in response.headers:
        body["selected_by"] = response.headers[SELECTED_BY_HEADER]
    return body


def backend_error(status: int, reason: str | None, body: Any, text: str) -> BackendError:
    """The backend's own {"error": {"code", "message"}}, or a plain account of a non-API answer."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
        code = str(error.get("code") or f"http_{status}")
        return BackendError(status, code, error["message"], details)
    message = f"HTTP {status} {reason or ''}".strip()
    if text.strip():
        message += f" (not the API's JSON error; the body began {_snippet(text)!r})"
    return BackendError(status, f"http_{status}", message)


def _dropped_after_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when a connection was made and then broke (a read error), not a failed connect."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, ProtocolError)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:BODY_SNIPPET_CHARS] + ("..." if len(flat) > BODY_SNIPPET_CHARS else "")


def _reason(exc: requests.exceptions.RequestException) -> str:
    """The innermost cause (e.g. 'Connection refused') rather than urllib3's long repr."""
    cause: BaseException | None = exc
    while cause is not None:
        nested = getattr(cause, "reason", None) or cause.__cause__ or cause.__context__
        if nested is None or nested is cause or not isinstance(nested, BaseException):
            break
        cause = nested
    text = str(cause)
    # urllib3 prefixes e.g. "<HTTPConnection object at 0x..>: Failed to establish ..."
    return text.split(">: ", 1)[-1] if ">: " in text else text
