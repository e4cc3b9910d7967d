"""Service-to-service authentication: a Google-signed ID token on every call.

With BACKEND_AUTH=id-token, each request carries `Authorization: Bearer <ID
token>` whose audience is the called service's URL (scheme and host), the way
Cloud Run checks callers of a private service (one that does not allow
unauthenticated calls). The token comes from google-auth's standard
lookup: GOOGLE_APPLICATION_CREDENTIALS when it names a service-account key,
else the metadata server of the Cloud Run instance (GCE_METADATA_HOST and
GCE_METADATA_IP move it, which is how the tests use a fake one on loopback).

One token source per audience and process: Streamlit keeps one ApiClient per
browser session, and they all share the token. google-auth keeps it until
shortly before it expires (its refresh threshold) and then fetches a new one.
google-auth is imported on first use, so `import apiclient` stays light.
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BeforeValidator

from apiclient.errors import BackendAuthFailed

AUTH_ID_TOKEN = "id-token"  # noqa: S105 (a mode name, not a secret)
AUTH_NONE = "none"


def _unset_is_none(value: object) -> object:
    return AUTH_NONE if value is None or str(value).strip() == "" else str(value).strip()


# BACKEND_AUTH in a settings object: "none" (also when empty) or "id-token".
BackendAuth = Annotated[Literal["none", "id-token"], BeforeValidator(_unset_is_none)]


def audience_of(base_url: str) -> str:
    """The audience Cloud Run expects: the service's URL without a path."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class IdTokenSource:
    """Google-signed ID tokens for one audience, fetched when missing or about to expire."""

    # After a failed lookup, calls fail fast for this long instead of each waiting
    # for google-auth's retries against a metadata server that is not there.
    FAILURE_MEMORY_SECONDS = 10.0

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self._lock = threading.Lock()
        self._credentials: Any = None
        self._claims: dict[str, Any] = {}
        self._failure: BackendAuthFailed | None = None
        self._failed_at = 0.0

    def token(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._failure and now - self._failed_at < self.FAILURE_MEMORY_SECONDS:
                raise self._failure
            try:
                return self._fetch()
            except BackendAuthFailed as exc:
                self._failure, self._failed_at = exc, now
                raise

    def _fetch(self) -> str:
        from google.auth import exceptions, jwt
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        session = requests.Session()
        session.trust_env = False  # the metadata server is never reached through a proxy
        request = Request(session)
        try:
            if self._credentials is None:
                self._credentials = id_token.fetch_id_token_credentials(
                    self.audience, request=request
                )
            if not self._credentials.valid:  # none yet, or within google-auth's threshold
                self._credentials.refresh(request)
                self._claims = jwt.decode(self._credentials.token, verify=False)
        except exceptions.DefaultCredentialsError as exc:
            raise BackendAuthFailed(
                "BACKEND_AUTH=id-token, but no Google identity is available here: "
                f"{exc}. On Cloud Run the metadata server provides it; locally, leave "
                "BACKEND_AUTH unset (local services are public)."
            ) from exc
        except (exceptions.GoogleAuthError, ValueError) as exc:
            raise BackendAuthFailed(
                f"Could not get an ID token for {self.audience} from the metadata server: {exc}"
            ) from exc
        finally:
            session.close()
        return self._credentials.token

    @property
    def identity(self) -> str | None:
        """Whose identity the tokens carry (the service account's email), once one was fetched."""
        return self._claims.get("email")


@cache
def id_token_source(audience: str) -> IdTokenSource:
    return IdTokenSource(audience)


class IdTokenAuth(requests.auth.AuthBase):
    """requests' hook that signs each request with the source's current token."""

    def __init__(self, source: IdTokenSource) -> None:
        self.source = source

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.source.token()}"
        return request


def cloud_run_service(base_url: str) -> str:
    """The service name in a Cloud Run URL (https://<name>-<hash>-<region>.a.run.app)."""
    host = urlsplit(base_url).hostname or ""
    if host.endswith(".run.app") and host.count("-") >= 2:
        return host.split(".")[0].rsplit("-", 2)[0]
    return "<backend service>"


def refused_message(
    status: int,
    base_url: str,
    identity: str | None,
    auth: str,
    *,
    caller: str = "frontend",
    callee: str = "backend",
) -> str:
    """What a 401/403 from a called service means here, and the command that fixes it."""
    service = cloud_run_service(base_url)
    if auth == AUTH_ID_TOKEN:
        account = identity or f"<the {caller}'s service account>"
        return (
            f"The {callee} refused the {caller}'s identity (HTTP {status}): grant "
            f"roles/run.invoker to {account} "
            f"on {service}: gcloud run services add-iam-policy-binding {service} "
            f"--region=<region> --member=serviceAccount:{account} --role=roles/run.invoker"
        )
    return (
        f"The {callee} refused the call (HTTP {status}): it accepts only authenticated callers. "
        # Named by what it does, not by its flag: making a service public is part of Q3.
        "Either make it public (`gcloud run deploy --help` lists the flag that allows "
        f"unauthenticated calls), or set BACKEND_AUTH=id-token on the {caller} and grant its "
        f"service account roles/run.invoker on {service}."
    )
