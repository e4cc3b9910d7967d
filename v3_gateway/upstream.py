"""Calls from the gateway to the model services: bounded in time and in
concurrency, retried only when no connection was made, behind a breaker.
The HTTP exchange itself is v3_gateway/transport.py (libcurl).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from apiclient.auth import AUTH_ID_TOKEN, audience_of, id_token_source, refused_message
from apiclient.errors import BackendAuthFailed
from v3_gateway.breaker import CircuitBreaker, CircuitOpen
from v3_gateway.routes import ModelRoute
from v3_gateway.settings import GatewaySettings
from v3_gateway.transport import Answer, HandlePerThread, Timeouts, TransportError, exchange
from webservice import errors

log = logging.getLogger(__name__)

# Error codes a model service gives when the *image host* failed, not itself, or
# when slow image hosts hold all its URL download slots (url_fetch_busy; uploads
# still get through): they must not count against the model's circuit.
IMAGE_HOST_CODES = frozenset({"image_host_failed", "timeout", "url_forbidden", "url_fetch_busy"})
POST_HEADERS = ("Accept: application/json",)


def _left(where: str) -> errors.ClientGone:
    return errors.ClientGone(f"The client closed its connection while {where}.")


class Deadline:
    """The time left for one gateway request, all attempts and waits included."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self, model: str) -> float:
        left = self.remaining()
        if left <= 0:
            raise errors.UpstreamTimeout(
                f"Model {model!r} did not answer within the gateway's deadline of "
                f"{self.seconds:g} s.",
                model=model,
            )
        return left


class Reply(Answer):
    """A model service's answer, body bytes untouched, and what the gateway reads in it."""

    @classmethod
    def of(cls, answer: Answer) -> Reply:
        return cls(answer.status, answer.body, answer.content_type, answer.elapsed_ms)

    def json(self):
        return json.loads(self.body)

    def error_code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def is_api_json(self) -> bool:
        return self.content_type.startswith("application/json")

    def is_service_failure(self) -> bool:
        """Does this answer say the model service itself is failing?"""
        return self.status >= 500 and self.error_code() not in IMAGE_HOST_CODES


class ModelClient:
    """Everything the gateway knows about calling one model service."""

    def __init__(self, route: ModelRoute, settings: GatewaySettings, handles: HandlePerThread):
        self.route = route
        self.settings = settings
        self.handles = handles
        self.breaker = CircuitBreaker(
            route.name,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_timeout,
        )
        # Per worker: a slow or hung model can hold at most this many threads.
        self.slots = threading.BoundedSemaphore(settings.max_in_flight_per_model)
        # When a prediction last succeeded (time.monotonic()): fresher than any probe.
        self.answered_at = float("-inf")
        # BACKEND_AUTH=id-token: an ID token for this model's URL on every call, from the
        # metadata server, shared by the worker's threads and kept until near expiry.
        self.tokens = None
        if settings.backend_auth == AUTH_ID_TOKEN:
            self.tokens = id_token_source(audience_of(route.url))

    def auth_headers(self) -> tuple[str, ...]:
        """Authorization for this call, or nothing; raises BackendAuthFailed."""
        if self.tokens is None:
            return ()
        return (f"Authorization: Bearer {self.tokens.token()}",)

    def refusal(self, status: int) -> str:
        """Why the model service answered 401/403, and what to grant to whom."""
        identity = self.tokens.identity if self.tokens else None
        return refused_message(
            status,
            self.route.url,
            identity,
            self.settings.backend_auth,
            caller="gateway",
            callee=f"model service of {self.name!r}",
        )

    @property
    def name(self) -> str:
        return self.route.name

    def predict(
        self,
        body: bytes,
        content_type: str,
        deadline: Deadline,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> Reply:
        """POST the request body, as received, to the model service's /predict.

        Nothing is sent, and the call stops, once `client_gone()`: the answer
        would go to nobody, and it would hold one of the model's slots meanwhile.
        """
        self._guarded(self.breaker.refuse_if_open)  # an open circuit fails before any wait
        wait = min(self.settings.queue_wait_seconds, max(0.0, deadline.remaining()))
        if not self.slots.acquire(timeout=wait):
            self.breaker.record_busy()  # a hung model fills its slots before it times out
            raise errors.ModelBusy(
                f"Model {self.name!r} already has {self.settings.max_in_flight_per_model} "
                "requests in flight on this gateway; try again shortly.",
                model=self.name,
                retry_after_seconds=1,
            )
        try:
            if client_gone():
                raise _left("waiting for a slot")
            self._guarded(self.breaker.admit)
            try:
                reply = self._post(body, content_type, deadline, client_gone)
            except errors.ClientGone:
                self.breaker.record_abandoned()
                raise
            except BaseException:
                self.breaker.record_failure()
                raise
            if reply.is_service_failure():
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
                self.answered_at = time.monotonic()
            return reply
        finally:
            self.slots.release()

    def _guarded(self, check: Callable[[], None]) -> None:
        """Run a breaker check; an open circuit becomes 503 model_unavailable."""
        try:
            check()
        except CircuitOpen as exc:
            retry_in = max(1, round(exc.retry_in))
            raise errors.ModelUnavailable(
                f"Model {self.name!r} is unavailable: its last {exc.failures} calls failed, "
                f"so the gateway stops calling it for a while (next try in about {retry_in} s).",
                model=self.name,
                circuit="open",
                retry_after_seconds=retry_in,
            ) from None

    def _post(
        self, body: bytes, content_type: str, deadline: Deadline, client_gone: Callable[[], bool]
    ) -> Reply:
        limit = min(deadline.check(self.name), self.settings.predict_timeout)
        timeouts = Timeouts(connect=self.settings.upstream_connect_timeout, read=limit, total=limit)
        try:
            answer = exchange(
                self.handles.get(),
                self.route.url + "/predict",
                timeouts=timeouts,
                max_bytes=self.settings.max_response_bytes,
                body=body,
                headers=(f"Content-Type: {content_type}", *POST_HEADERS, *self.auth_headers()),
                abandoned=client_gone,
            )
        except TransportError as exc:
            raise self._failure(exc, timeouts) from None
        except BackendAuthFailed as exc:
            raise errors.ModelUnavailable(
                f"The gateway cannot call model {self.name!r}: {exc.message}", model=self.name
            ) from None
        return Reply.of(answer)

    def _failure(self, exc: TransportError, timeouts: Timeouts) -> errors.ApiError:
        """The API error for a failed exchange with this model's service."""
        if exc.kind == "abandoned":
            return _left(f"waiting for model {self.name!r}")
        if exc.kind == "too_large":
            return errors.ModelServiceFailed(
                f"Model {self.name!r} sent an answer larger than "
                f"{self.settings.max_response_bytes} bytes.",
                model=self.name,
            )
        if exc.kind == "connect_timeout":
            return errors.UpstreamTimeout(
                f"Model {self.name!r} did not accept a connection within {timeouts.connect:g} s.",
                model=self.name,
            )
        if exc.kind == "read_timeout":
            return errors.UpstreamTimeout(
                f"Model {self.name!r} did not answer within {timeouts.total:.3g} s, the longest "
                "a prediction may take (an image URL's download, then the inference).",
                model=self.name,
            )
        log.warning("model %s at %s unreachable: %s", self.name, self.route.url, exc)
        hint = " (TLS verification failed)" if exc.kind == "tls" else ""
        return errors.ModelUnavailable(
            f"Model {self.name!r} cannot be reached right now{hint}; try again shortly.",
            model=self.name,
            retry_after_seconds=1,
        )

    def probe(self, path: str) -> Reply:
        """A short GET for /ready or /models: no breaker, no slot, short timeouts.
        Raises TransportError when the service cannot be reached (or no token be had)."""
        timeout = self.settings.probe_timeout
        try:
            headers = self.auth_headers()
        except BackendAuthFailed as exc:
            raise TransportError("auth", exc.message) from None
        answer = exchange(
            self.handles.get(),
            self.route.url + path,
            timeouts=Timeouts(
                connect=min(self.settings.upstream_connect_timeout, timeout),
                read=timeout,
                total=timeout,
            ),
            max_bytes=self.settings.max_response_bytes,
            headers=headers,
        )
        return Reply.of(answer)
