"""Calls from the gateway to the model services: pooled, bounded in time and in
concurrency, retried only when the connection itself failed, behind a breaker."""

from __future__ import annotations

import http.cookiejar
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from classifier import errors
from v3_gateway.breaker import CircuitBreaker, CircuitOpen
from v3_gateway.routes import ModelRoute
from v3_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# Error codes a model service gives when the *image host* failed, not itself:
# they must not count against the model's circuit.
IMAGE_HOST_CODES = frozenset({"image_host_failed", "timeout", "url_forbidden"})


def connect_retry_only() -> Retry:
    """One more try when the connection could not be made (the request never left),
    none after a read error or timeout: a second inference is never started
    behind the back of one that may still be running."""
    return Retry(
        total=None,
        connect=1,
        read=False,  # re-raise read errors as they are (requests: ReadTimeout)
        status=0,
        other=0,
        redirect=0,
        allowed_methods=None,  # POST included; only connect failures reach a retry
        raise_on_status=False,
        backoff_factor=0,
    )


class SessionPerProcess:
    """One pooled requests.Session per gunicorn worker, made on first use.

    Made lazily, not at import or in create_app: sockets opened in gunicorn's
    master would be inherited by every forked worker, and two processes sharing
    one keep-alive connection read each other's answers. The pid check keeps
    this right even if someone turns on preload_app. The session is shared by
    the worker's threads: its urllib3 pool is thread-safe, and its one
    non-thread-safe part, the cookie jar, is told to keep no cookies.
    """

    def __init__(self, pool_size: int, pools: int) -> None:
        self._pool_size = pool_size
        self._pools = pools
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid: int | None = None

    def get(self) -> requests.Session:
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._session = self._build()
                    self._pid = pid
        return self._session

    def _build(self) -> requests.Session:
        session = requests.Session()
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        session.trust_env = False  # no proxies or .netrc credentials from the environment
        adapter = HTTPAdapter(
            pool_connections=self._pools,
            pool_maxsize=self._pool_size,
            max_retries=connect_retry_only(),
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


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

    def __init__(self, route: ModelRoute, settings: GatewaySettings, sessions: SessionPerProcess):
        self.route = route
        self.settings = settings
        self.sessions = sessions
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
        timeout = (
            min(self.settings.upstream_connect_timeout, left),
            min(self.settings.upstream_read_timeout, left),
        )
        started = time.perf_counter()
        try:
            with self.sessions.get().post(
                self.route.url + "/predict",
                data=body,
                headers={"Content-Type": content_type, "Accept": "application/json"},
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                data = self._read_body(response, deadline)
                return Reply(
                    status=response.status_code,
                    body=data,
                    content_type=response.headers.get("Content-Type", ""),
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
        except requests.Timeout:
            raise errors.UpstreamTimeout(
                f"Model {self.name!r} did not answer in time "
                f"(connect {timeout[0]:g} s, read {timeout[1]:g} s).",
                model=self.name,
            ) from None
        except requests.RequestException as exc:
            log.warning("model %s at %s unreachable: %s", self.name, self.route.url, exc)
            raise errors.ModelUnavailable(
                f"Model {self.name!r} cannot be reached right now; try again shortly.",
                model=self.name,
                retry_after_seconds=1,
            ) from None

    def _read_body(self, response: requests.Response, deadline: Deadline) -> bytes:
        """Read the answer in chunks, so the deadline and a size cap hold even
        against a service that trickles bytes (the read timeout is per read)."""
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
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

    def probe(self, path: str) -> requests.Response:
        """A short GET for /ready or /models: no breaker, no slot, short timeouts."""
        timeout = (
            min(self.settings.upstream_connect_timeout, self.settings.probe_timeout),
            self.settings.probe_timeout,
        )
        return self.sessions.get().get(self.route.url + path, timeout=timeout)
