"""Calls from the gateway to the model services: pooled, bounded in time and in
concurrency, retried only when the connection itself failed, behind a breaker.

urllib3 directly rather than requests: the gateway needs only a pool, a retry
policy and timeouts, and requests' per-call preparation (hooks, cookies,
environment lookups) was a quarter of a millisecond of the gateway's own time
per /predict (bench/, the gateway figure).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry

from classifier import errors
from v3_gateway.breaker import CircuitBreaker, CircuitOpen
from v3_gateway.routes import ModelRoute
from v3_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# Error codes a model service gives when the *image host* failed, not itself:
# they must not count against the model's circuit.
IMAGE_HOST_CODES = frozenset({"image_host_failed", "timeout", "url_forbidden"})

# What a failed call to a model service raises: urllib3's own errors only.
UpstreamError = HTTPError


def connect_retry_only() -> Retry:
    """One more try when the connection could not be made (the request never left),
    none after a read error or timeout: a second inference is never started
    behind the back of one that may still be running."""
    return Retry(
        total=None,
        connect=1,
        read=False,  # re-raise read errors as they are (ReadTimeoutError)
        status=0,
        other=0,
        redirect=0,
        allowed_methods=None,  # POST included; only connect failures reach a retry
        raise_on_status=False,
        backoff_factor=0,
    )


def root_cause(exc: HTTPError) -> BaseException:
    """The error behind urllib3's "retries exhausted" wrapper."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


class PoolPerProcess:
    """One urllib3 PoolManager per gunicorn worker, made on first use.

    Made lazily, not at import or in create_app: sockets opened in gunicorn's
    master would be inherited by every forked worker, and two processes sharing
    one keep-alive connection read each other's answers. The pid check keeps
    this right even if someone turns on preload_app. The pool is shared by the
    worker's threads (urllib3's pools are thread-safe). It keeps no cookies and
    reads no proxy settings from the environment.
    """

    def __init__(self, pool_size: int, pools: int) -> None:
        self._pool_size = pool_size
        self._pools = pools
        self._lock = threading.Lock()
        self._manager: urllib3.PoolManager | None = None
        self._pid: int | None = None

    def get(self) -> urllib3.PoolManager:
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._manager = urllib3.PoolManager(
                        num_pools=self._pools,
                        maxsize=self._pool_size,
                        retries=connect_retry_only(),
                    )
                    self._pid = pid
        return self._manager


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


@dataclass(frozen=True)
class Reply:
    """A model service's answer, body bytes untouched."""

    status: int
    body: bytes
    content_type: str
    elapsed_ms: float

    def error_code(self) -> str | None:
        try:
            return json.loads(self.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def is_api_json(self) -> bool:
        return self.content_type.startswith("application/json")

    def is_service_failure(self) -> bool:
        """Does this answer say the model service itself is failing?"""
        return self.status >= 500 and self.error_code() not in IMAGE_HOST_CODES


class ModelClient:
    """Everything the gateway knows about calling one model service."""

    def __init__(self, route: ModelRoute, settings: GatewaySettings, pools: PoolPerProcess):
        self.route = route
        self.settings = settings
        self.pools = pools
        self.breaker = CircuitBreaker(
            route.name,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_timeout,
        )
        # Per worker: a slow or hung model can hold at most this many threads.
        self.slots = threading.BoundedSemaphore(settings.max_in_flight_per_model)

    @property
    def name(self) -> str:
        return self.route.name

    def predict(self, body: bytes, content_type: str, deadline: Deadline) -> Reply:
        """POST the request body, as received, to the model service's /predict."""
        wait = min(self.settings.queue_wait_seconds, max(0.0, deadline.remaining()))
        if not self.slots.acquire(timeout=wait):
            raise errors.ModelBusy(
                f"Model {self.name!r} already has {self.settings.max_in_flight_per_model} "
                "requests in flight on this gateway; try again shortly.",
                model=self.name,
                retry_after_seconds=1,
            )
        try:
            self._admit()
            succeeded = False
            try:
                reply = self._post(body, content_type, deadline)
                succeeded = not reply.is_service_failure()
                return reply
            finally:
                if succeeded:
                    self.breaker.record_success()
                else:
                    self.breaker.record_failure()
        finally:
            self.slots.release()

    def _admit(self) -> None:
        try:
            self.breaker.admit()
        except CircuitOpen as exc:
            retry_in = max(1, round(exc.retry_in))
            raise errors.ModelUnavailable(
                f"Model {self.name!r} is unavailable: its last {exc.failures} calls failed, "
                f"so the gateway stops calling it for a while (next try in about {retry_in} s).",
                model=self.name,
                circuit="open",
                retry_after_seconds=retry_in,
            ) from None

    def _post(self, body: bytes, content_type: str, deadline: Deadline) -> Reply:
        left = deadline.check(self.name)
        timeout = urllib3.Timeout(
            connect=min(self.settings.upstream_connect_timeout, left),
            read=min(self.settings.upstream_read_timeout, left),
        )
        started = time.perf_counter()
        try:
            response = self.pools.get().request(
                "POST",
                self.route.url + "/predict",
                body=body,
                headers={"Content-Type": content_type, "Accept": "application/json"},
                timeout=timeout,
                preload_content=False,
                redirect=False,
            )
            try:
                data = self._read_body(response, deadline)
            finally:
                response.release_conn()
            return Reply(
                status=response.status,
                body=data,
                content_type=response.headers.get("Content-Type", ""),
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
        except HTTPError as exc:
            cause = root_cause(exc)
            # A refused connection is a NewConnectionError, which urllib3 also
            # files under its timeouts.
            if isinstance(cause, Urllib3Timeout) and not isinstance(cause, NewConnectionError):
                raise errors.UpstreamTimeout(
                    f"Model {self.name!r} did not answer in time "
                    f"(connect {timeout.connect_timeout:g} s, read {timeout.read_timeout:g} s).",
                    model=self.name,
                ) from None
            log.warning("model %s at %s unreachable: %s", self.name, self.route.url, cause)
            raise errors.ModelUnavailable(
                f"Model {self.name!r} cannot be reached right now; try again shortly.",
                model=self.name,
                retry_after_seconds=1,
            ) from None

    def _read_body(self, response: urllib3.BaseHTTPResponse, deadline: Deadline) -> bytes:
        """Read the answer in chunks, so the deadline and a size cap hold even
        against a service that trickles bytes (the read timeout is per read)."""
        chunks, size = [], 0
        for chunk in response.stream(64 * 1024):
            size += len(chunk)
            if size > self.settings.max_response_bytes:
                raise errors.ModelServiceFailed(
                    f"Model {self.name!r} sent an answer larger than "
                    f"{self.settings.max_response_bytes} bytes.",
                    model=self.name,
                )
            deadline.check(self.name)
            chunks.append(chunk)
        return b"".join(chunks)

    def probe(self, path: str) -> urllib3.BaseHTTPResponse:
        """A short GET for /ready or /models: no breaker, no slot, short timeouts."""
        timeout = urllib3.Timeout(
            connect=min(self.settings.upstream_connect_timeout, self.settings.probe_timeout),
            read=self.settings.probe_timeout,
        )
        return self.pools.get().request("GET", self.route.url + path, timeout=timeout)
