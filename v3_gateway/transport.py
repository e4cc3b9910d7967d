"""One HTTP exchange with a model service, in libcurl (pycurl).

libcurl rather than urllib3: the gateway's own cost per /predict is mostly
Python running cold (after the model's forward pass, or after a pause), and
urllib3 sends and parses in Python (http.client, the email parser for headers).
libcurl does both in C, and the gateway added less to the direct call in front
of ResNet-50 with it in every alternated round (the performance notes).

Each request thread keeps its own handle, and so its own keep-alive connections:
a libcurl handle must not be used by two threads at once. Handles are made on
first use in the thread, after gunicorn's fork, so no process inherits another's
connections. Nothing is read from the environment: no proxy, no netrc, no cookies.

A call may be given `abandoned`, asked now and then while it runs (libcurl's
progress callback): when it says True, the call stops at once ("abandoned"),
so a request whose own client has left stops holding a connection and a slot.

Retries: ours, once, only when no connection was made. libcurl adds one of its
own that no option turns off: a request sent on a kept-alive connection that
closes before any answer goes once more on a new connection. The service
dropped it with the connection (a worker that died took its inference along),
so no inference runs twice at once; a request that kills its worker would
kill a second one (tests/v3_gateway/test_transport.py pins both rules).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import certifi
import pycurl

# libcurl's codes for "no connection was made" and for TLS failures; every
# timeout (connect, whole call, read gap) is E_OPERATION_TIMEDOUT.
CONNECT_FAILED = frozenset({pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST})
TLS_FAILED = frozenset(
    {
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_CERTPROBLEM,
    }
)
# Retried once: the request never left, so no inference was started.
RETRIED = frozenset({"connect_failed", "connect_timeout"})
CA_BUNDLE = certifi.where()
# How often a running call asks `abandoned`; a quick call never asks.
ABANDON_CHECK_SECONDS = 0.5


class TransportError(Exception):
    """The exchange failed; `kind` says how, `detail` is libcurl's own words."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        # connect_failed, connect_timeout, read_timeout, tls, too_large, abandoned, broken
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Timeouts:
    connect: float  # seconds to establish the connection
    read: float  # the longest silence while waiting for or reading the answer
    total: float  # the whole exchange, the retry included


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    elapsed_ms: float


class HandlePerThread:
    """The calling thread's libcurl handle, made on first use (and again after a fork)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> pycurl.Curl:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.handle = pycurl.Curl()
            local.pid = os.getpid()
        return local.handle


def exchange(
    handle: pycurl.Curl,
    url: str,
    *,
    timeouts: Timeouts,
    max_bytes: int,
    body: bytes | None = None,
    headers: tuple[str, ...] = (),
    abandoned: Callable[[], bool] | None = None,
) -> Answer:
    """GET `url` (or POST `body`), retrying once only if no connection was made."""
    end = time.monotonic() + timeouts.total
    call = (handle, url, timeouts)
    try:
        return _perform(*call, timeouts.total, max_bytes, body, headers, abandoned)
    except TransportError as exc:
        left = end - time.monotonic()
        if exc.kind not in RETRIED or left <= 0:
            raise
        return _perform(*call, left, max_bytes, body, headers, abandoned)


def _perform(handle, url, timeouts, left, max_bytes, body, headers, abandoned) -> Answer:
    handle.reset()  # drops the last call's options; keeps the connection cache
    chunks: list[bytes] = []
    received = 0

    def keep(chunk: bytes) -> int | None:
        nonlocal received
        received += len(chunk)
        if received > max_bytes:
            return 0  # anything but len(chunk): libcurl stops with a write error
        chunks.append(chunk)
        return None

    handle.setopt(pycurl.URL, url)
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: we are threaded
    handle.setopt(pycurl.PROXY, "")
    handle.setopt(pycurl.TCP_NODELAY, 1)
    handle.setopt(pycurl.CAINFO, CA_BUNDLE)
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, _ms(min(timeouts.connect, left)))
    handle.setopt(pycurl.TIMEOUT_MS, _ms(left))
    # A read gap: below 1 byte/s for this long (libcurl counts whole seconds).
    handle.setopt(pycurl.LOW_SPEED_LIMIT, 1)
    handle.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(timeouts.read)))
    handle.setopt(pycurl.MAXFILESIZE_LARGE, max_bytes)
    # "Expect:" keeps libcurl from waiting for a 100 Continue before large bodies.
    handle.setopt(pycurl.HTTPHEADER, [*headers, "Expect:"])
    if body is not None:
        handle.setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
        handle.setopt(pycurl.POSTFIELDS, body)
    handle.setopt(pycurl.WRITEFUNCTION, keep)
    if abandoned is not None:
        handle.setopt(pycurl.NOPROGRESS, 0)
        handle.setopt(pycurl.XFERINFOFUNCTION, _abandon_check(abandoned))
    started = time.perf_counter()
    try:
        handle.perform()
    except pycurl.error as exc:
        code, detail = exc.args
        raise TransportError(_kind(handle, code, received > max_bytes), detail) from None
    return Answer(
        status=handle.getinfo(pycurl.RESPONSE_CODE),
        body=b"".join(chunks),
        content_type=handle.getinfo(pycurl.CONTENT_TYPE) or "",
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _abandon_check(abandoned: Callable[[], bool]) -> Callable[..., int]:
    """libcurl's progress callback: non-zero stops the call. It runs many times a
    second; `abandoned` is asked at most every ABANDON_CHECK_SECONDS."""
    next_check = time.monotonic() + ABANDON_CHECK_SECONDS

    def progress(*_counts: int) -> int:
        nonlocal next_check
        now = time.monotonic()
        if now < next_check:
            return 0
        next_check = now + ABANDON_CHECK_SECONDS
        return 1 if abandoned() else 0

    return progress


def _kind(handle: pycurl.Curl, code: int, over_limit: bool) -> str:
    if over_limit or code == pycurl.E_FILESIZE_EXCEEDED:
        return "too_large"
    if code == pycurl.E_ABORTED_BY_CALLBACK:
        return "abandoned"
    if code == pycurl.E_OPERATION_TIMEDOUT:
        connected = handle.getinfo(pycurl.CONNECT_TIME) > 0
        return "read_timeout" if connected else "connect_timeout"
    if code in CONNECT_FAILED:
        return "connect_failed"
    if code in TLS_FAILED:
        return "tls"
    return "broken"


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
