"""Image intake from a URL, safe against SSRF and slow or huge responses.

Why requests-hardened: it resolves the host once, refuses private and loopback
addresses and pins the connection to the address it checked, so DNS rebinding
has no window between the check and the connect. We add our stricter address
policy on the pinned address, follow redirects ourselves (each hop goes through
the same checks), and cap the bytes while streaming.

Time: a host that trickles a byte a second never trips a read timeout (each
byte arrives in time), so the total deadline is held around the whole fetch.
The download runs in a thread of its own while the request thread waits at
most until the deadline; then the request answers 504 and the download's
connections are shut down under it, so its thread ends too. Those threads are
few: each worker runs at most `max_concurrent` downloads at once (below its
request threads, so uploads and /health always find a thread), and a URL
request that finds every slot taken is turned away with a 503 and Retry-After.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from classifier.address_policy import forbidden_reason
from webservice import errors

ALLOWED_SCHEMES = ("http", "https")
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    # The whole fetch, waiting for a slot, redirects and every byte included.
    total_timeout: float = 5.0
    max_redirects: int = 3
    # Loopback hosts are for local development and tests only; never the default.
    allow_loopback: bool = False
    # Downloads at once in this process, and how long a URL request waits for one.
    max_concurrent: int = 8
    slot_wait: float = 0.5


class ForbiddenAddress(requests.RequestException):
    """The resolved address is one our policy refuses (raised before connecting)."""


class _PolicyAdapter(IPFilterAdapter):
    """requests-hardened's pinning adapter plus our policy on the pinned address, with
    connections the fetch that opened them can shut down (_Download.abandon)."""

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


def _session(limits: FetchLimits) -> requests.Session:
    config = Config(
        ip_filter_enable=True,
        ip_filter_allow_loopback_ips=limits.allow_loopback,
        never_redirect=True,
        default_timeout=(limits.connect_timeout, limits.read_timeout),
        user_agent_override="image-classifier-fetch/1.0",
    )
    session = HTTPSession(config)
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
    in `limits.total_timeout` seconds at most whatever the host does (then 504)."""
    deadline = time.monotonic() + limits.total_timeout
    slots = _slots(limits.max_concurrent)
    if not slots.acquire(timeout=min(limits.slot_wait, limits.total_timeout)):
        raise errors.FetchesBusy(
            f"This server is already downloading {limits.max_concurrent} image URLs; "
            "try again in a moment, or upload the file instead.",
            retry_after_seconds=1,
        )
    download = _Download(url, limits, deadline)
    try:
        threading.Thread(target=download.run, args=(slots,), name="url-fetch", daemon=True).start()
    except BaseException:
        slots.release()
        raise
    return download.result()


# Per process (so per gunicorn worker): a semaphore per configured count.
_slot_lock = threading.Lock()
_slot_pools: dict[int, threading.BoundedSemaphore] = {}
_current = threading.local()


def _slots(count: int) -> threading.BoundedSemaphore:
    with _slot_lock:
        return _slot_pools.setdefault(count, threading.BoundedSemaphore(count))


def _watched(sock: socket.socket) -> socket.socket:
    """Let the download running on this thread, if any, shut `sock` down at its deadline."""
    download: _Download | None = getattr(_current, "download", None)
    if download is not None:
        download.watch(sock)
    return sock


class _Download:
    """One URL fetch on a thread of its own, given up on at its deadline.

    Giving up shuts its connections down, which wakes the thread from whatever
    read it is blocked in. The connections are watched through duplicates of
    their sockets, closed when the thread ends: a duplicate keeps the socket
    itself open, so a shutdown can never reach another connection that got
    the same file descriptor number.
    """

    def __init__(self, url: str, limits: FetchLimits, deadline: float) -> None:
        self.url, self.limits, self.deadline = url, limits, deadline
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._abandoned = False
        self._data: bytes | None = None
        self._error: BaseException | None = None

    def run(self, slots: threading.BoundedSemaphore) -> None:
        _current.download = self
        try:
            self._data = _download(self.url, self.limits, self.deadline)
        except BaseException as exc:  # handed to the waiting request thread
            self._error = exc
        finally:
            _current.download = None
            with self._lock:
                for sock in self._sockets:
                    sock.close()
                self._sockets.clear()
            slots.release()
            self._done.set()

    def result(self) -> bytes:
        if not self._done.wait(max(0.0, self.deadline - time.monotonic())):
            self.abandon()
            raise errors.UpstreamTimeout(
                f"The image host did not send the whole image within "
                f"{self.limits.total_timeout:g} s: {self.url}."
            )
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            duplicate = sock.dup()
            self._sockets.append(duplicate)
            if self._abandoned:
                _shut(duplicate)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


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
