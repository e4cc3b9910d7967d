"""Image intake from a URL, safe against SSRF and slow or huge responses.

Why requests-hardened: it resolves the host once, refuses private and loopback
addresses and pins the connection to the address it checked, so DNS rebinding
has no window between the check and the connect. We add our stricter address
policy on the pinned address, follow redirects ourselves (each hop goes through
the same checks), and enforce a byte cap and a total deadline while streaming.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from classifier.address_policy import forbidden_reason
from webservice import errors

ALLOWED_SCHEMES = ("http", "https")
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_redirects: int = 3
    # Loopback hosts are for local development and tests only; never the default.
    allow_loopback: bool = False


class ForbiddenAddress(requests.RequestException):
    """The resolved address is one our policy refuses (raised before connecting)."""


class _PolicyAdapter(IPFilterAdapter):
    """requests-hardened's pinning adapter plus our policy on the pinned address."""

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
    """Download at most `limits.max_bytes` from `url`, following up to N checked redirects."""
    deadline = time.monotonic() + limits.total_timeout
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
