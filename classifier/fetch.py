"""Image intake from a URL, safe against SSRF and slow or huge responses.

Why requests-hardened: it resolves the host once, refuses private and loopback
addresses and pins the connection to the address it checked, so DNS rebinding
has no window between the check and the connect. We add our stricter address
policy on the pinned address, follow redirects ourselves (each hop goes through
the same checks), and cap the bytes while streaming.

Time: a host that trickles a byte a second never trips a read timeout (each
byte arrives in time), and neither requests nor urllib3 has a total deadline.
So the download runs on a thread of a small pool of this process while the
request thread waits for it at most until the deadline; then the request
answers 504 and the download's sockets are shut down under it, which ends the
pool thread as well. We wait on a thread rather than shrink each socket
timeout to the time left because the name lookup (getaddrinfo) takes no
timeout at all, and a deadline per socket call would need hooks in plain and
TLS sockets alike; waiting on the thread bounds every stage the same way.

Slots: each worker runs at most `max_concurrent` downloads at once (fewer than
its request threads, so uploads and /health always find one), and a URL
request that finds every slot taken is answered 503 `url_fetch_busy` with
Retry-After at once: it never holds a request thread waiting for a slot.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from classifier.address_policy import forbidden_reason
from webservice import errors
from webservice.deadlines import FETCH_TOTAL_TIMEOUT_SECONDS

ALLOWED_SCHEMES = ("http", "https")
CHUNK_BYTES = 64 * 1024
# A turned-away URL request may try again this soon: a download slot frees within
# the total deadline at the latest, usually much sooner.
BUSY_RETRY_AFTER_SECONDS = 1
# How long a request that gave up on its download waits for the download to end.
GIVE_UP_WAIT_SECONDS = 0.25


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    # The whole fetch: name lookup, connect, redirects and every byte.
    total_timeout: float = FETCH_TOTAL_TIMEOUT_SECONDS
    max_redirects: int = 3
    # Loopback hosts are for local development and tests only; never the default.
    allow_loopback: bool = False
    # Downloads at once in this process; a URL request past them gets 503 at once.
    max_concurrent: int = 8


class ForbiddenAddress(requests.RequestException):
    """The resolved address is one our policy refuses (raised before connecting)."""


class _PolicyAdapter(IPFilterAdapter):
    """requests-hardened's pinning adapter plus our policy on the pinned address, with
    connections the download that opened them can shut down (_Sockets)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        # The URL's own literal too: the library unwraps ::ffff:a.b.c.d before pinning.
        literal = _ip_literal(urlsplit(request.url).hostname)
        pinned = ipaddress.ip_address(host_params["host"].strip("[]"))
        for address in (literal, pinned):
            reason = address and forbidden_reason(address, allow_loopback=self._allow_loopback)
            if reason:
                raise ForbiddenAddress(f"{address} is a {reason} address")
        return host_params, pool_kwargs


# urllib3's pools, making connections whose new socket is handed to _watched first.
# _new_conn is where urllib3 (1.x and 2.x alike) creates a connection's socket;
# it offers no public hook for that, and the trickling-host tests fail without it.
class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())  # before TLS wraps it


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _ip_literal(host: str | None):
    try:
        return ipaddress.ip_address(host or "")
    except ValueError:
        return None


class _DirectSession(HTTPSession):
    """Never through a proxy from the environment (HTTP_PROXY, ALL_PROXY...): through a
    proxy the address guard would check the proxy's address, and the proxy would then
    connect anywhere. The rest of the environment (a CA bundle) still counts."""

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        settings["proxies"] = {}
        return settings


def _session(limits: FetchLimits) -> requests.Session:
    config = Config(
        ip_filter_enable=True,
        ip_filter_allow_loopback_ips=limits.allow_loopback,
        never_redirect=True,
        default_timeout=(limits.connect_timeout, limits.read_timeout),
        user_agent_override="image-classifier-fetch/1.0",
    )
    session = _DirectSession(config)
    for prefix, https in (("http://", False), ("https://", True)):
        session.mount(prefix, _PolicyAdapter(https, allow_loopback=limits.allow_loopback))
    return session


def check_url_shape(url: str) -> None:
    """Refuse what is not an absolute http(s) URL with a host, before any I/O."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise errors.BadRequest(f"The image URL is malformed: {exc}.") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise errors.UrlForbidden(
            f"Only http and https image URLs are accepted, not {parts.scheme or 'no scheme'!r}."
        )
    if not parts.hostname:
        raise errors.BadRequest("The image URL has no host name.")


def fetch_image_bytes(url: str, limits: FetchLimits) -> bytes:
    """Download at most `limits.max_bytes` from `url`, following up to N checked redirects,
    in `limits.total_timeout` seconds at most whatever the host does (then 504).

    Raises FetchesBusy (503, Retry-After) at once when this process already runs
    `limits.max_concurrent` downloads: the request never waits for a slot.
    """
    return _downloads(limits.max_concurrent).fetch(url, limits)


class _Downloads:
    """This process's URL downloads: at most `slots` at once, each on a pool thread.

    The request thread waits for its download with concurrent.futures' own
    deadline (`result(timeout)`); at the deadline it gives up and shuts the
    download's sockets down, which ends the pool thread too (_Sockets).
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="url-fetch")

    def fetch(self, url: str, limits: FetchLimits) -> bytes:
        deadline = time.monotonic() + limits.total_timeout
        if not self._free.acquire(blocking=False):
            raise errors.FetchesBusy(
                f"This server is already downloading {self.slots} image URLs at once; "
                "send the request again in a moment, or upload the file instead.",
                retry_after_seconds=BUSY_RETRY_AFTER_SECONDS,
            )
        sockets = _Sockets()
        try:
            download = self._pool.submit(_download_watched, sockets, url, limits, deadline)
        except BaseException:
            self._free.release()
            raise
        # The slot comes back when the download itself ends, even one given up on.
        download.add_done_callback(lambda _done: self._free.release())
        try:
            return download.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            sockets.shut_down()
            # That wakes the download at once (a name lookup cannot be woken, hence the
            # bound), so its slot is free again for the caller's next try.
            futures_wait([download], timeout=GIVE_UP_WAIT_SECONDS)
            raise errors.UpstreamTimeout(
                f"The image host did not send the whole image within "
                f"{limits.total_timeout:g} s: {url}."
            ) from None


# One set of slots per process (gunicorn worker) and slot count. Threads do not
# survive a fork: a child starts with none, whatever its parent made.
_downloads_lock = threading.Lock()
_downloads_by_slots: dict[int, _Downloads] = {}


def _downloads(slots: int) -> _Downloads:
    with _downloads_lock:
        if slots not in _downloads_by_slots:
            _downloads_by_slots[slots] = _Downloads(slots)
        return _downloads_by_slots[slots]


def _forget_parents_downloads() -> None:
    global _downloads_lock
    _downloads_lock = threading.Lock()
    _downloads_by_slots.clear()


os.register_at_fork(after_in_child=_forget_parents_downloads)


class _Sockets:
    """The sockets one download opened, so that giving up on it can shut them down.

    Shutting a socket down wakes the thread blocked on it, in a plain read, a
    TLS read or a handshake alike. Each is kept as a duplicate, closed when the
    download ends: TLS detaches the original socket object from its descriptor,
    and a duplicate can never reach another connection that reuses the number.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._given_up = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            duplicate = sock.dup()
            self._open.append(duplicate)
            if self._given_up:  # connected just as the request gave up
                _shut(duplicate)

    def shut_down(self) -> None:
        with self._lock:
            self._given_up = True
            for sock in self._open:
                _shut(sock)

    def close(self) -> None:
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the host closed it first
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()  # the _Sockets of the download this pool thread runs


def _download_watched(sockets: _Sockets, url: str, limits: FetchLimits, deadline: float) -> bytes:
    _current.sockets = sockets
    try:
        return _download(url, limits, deadline)
    finally:
        _current.sockets = None
        sockets.close()


def _watched(sock: socket.socket) -> socket.socket:
    """Register a new connection's socket with the download running on this thread."""
    sockets: _Sockets | None = getattr(_current, "sockets", None)
    if sockets is not None:
        sockets.watch(sock)
    return sock


def _download(url: str, limits: FetchLimits, deadline: float) -> bytes:
    with _session(limits) as session:
        response = _follow_redirects(session, url, limits, deadline)
        with response:
            return _read_capped(response, limits, deadline)


def _follow_redirects(session, url: str, limits: FetchLimits, deadline: float):
    for _hop in range(limits.max_redirects + 1):
        check_url_shape(url)
        response = _get(session, url, limits, deadline)
        if not response.is_redirect:
            if response.status_code >= 400:
                response.close()
                raise errors.UpstreamFailed(
                    f"The image host answered HTTP {response.status_code} for {url}.",
                    upstream_status=response.status_code,
                )
            return response
        location = response.headers.get("Location", "")
        response.close()
        url = urljoin(url, location)
    raise errors.UpstreamFailed(
        f"The image URL redirected more than {limits.max_redirects} times; "
        "link to the image itself."
    )


def _get(session, url: str, limits: FetchLimits, deadline: float):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise errors.UpstreamTimeout("Fetching the image took longer than allowed.")
    timeout = (min(limits.connect_timeout, remaining), min(limits.read_timeout, remaining))
    try:
        return session.get(url, stream=True, allow_redirects=False, timeout=timeout)
    except (InvalidIPAddress, ForbiddenAddress) as exc:
        host = urlsplit(url).hostname
        raise errors.UrlForbidden(
            f"The image URL points at an address this service may not reach ({host}: "
            f"{_reason(exc)}). Use a public http(s) URL or upload the file instead."
        ) from exc
    except requests.Timeout as exc:
        raise errors.UpstreamTimeout(f"The image host did not answer in time: {url}.") from exc
    except requests.exceptions.InvalidURL as exc:
        raise errors.BadRequest(f"The image URL is malformed: {exc}.") from exc
    except requests.RequestException as exc:
        raise errors.UpstreamFailed(f"Could not reach the image host for {url}.") from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidIPAddress):
        return f"{exc} is a private or loopback address"
    return str(exc)


def _read_capped(response, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise errors.PayloadTooLarge(
            f"The image is {errors.size_text(int(declared))}; "
            f"the limit is {errors.size_text(limits.max_bytes)}."
        )
    received = bytearray()
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            received += chunk
            if len(received) > limits.max_bytes:
                raise errors.PayloadTooLarge(
                    f"The image is larger than the limit of {errors.size_text(limits.max_bytes)}."
                )
            if time.monotonic() > deadline:
                raise errors.UpstreamTimeout("Downloading the image took longer than allowed.")
    except requests.Timeout as exc:
        raise errors.UpstreamTimeout("The image host stopped sending data.") from exc
    except requests.RequestException as exc:
        raise errors.UpstreamFailed("The image download was interrupted.") from exc
    return bytes(received)
