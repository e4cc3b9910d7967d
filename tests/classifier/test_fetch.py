"""URL intake against real loopback servers.

Loopback spellings are proven refused by a listener that must see no
connection; the other ranges are covered by test_address_policy without
sending any traffic.
"""

import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme
from werkzeug import Response

from classifier.fetch import FetchLimits, check_url_shape, fetch_image_bytes
from tests.support.listener import ConnectionCounter
from tests.support.trickle import TricklingHost
from webservice import errors

STRICT = FetchLimits(connect_timeout=2, read_timeout=2, total_timeout=5)
LOOPBACK_OK = FetchLimits(connect_timeout=2, read_timeout=2, total_timeout=5, allow_loopback=True)

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:{port}/cat.jpg",
    "http://localhost:{port}/cat.jpg",  # a host name that resolves to 127.0.0.1
    "http://[::1]:{port}/cat.jpg",
    "http://0.0.0.0:{port}/cat.jpg",
    "http://2130706433:{port}/cat.jpg",  # decimal
    "http://0177.0.0.1:{port}/cat.jpg",  # octal
    "http://0x7f000001:{port}/cat.jpg",  # hex
    "http://0x7f.0.0.1:{port}/cat.jpg",
    "http://127.1:{port}/cat.jpg",
    "http://[::ffff:127.0.0.1]:{port}/cat.jpg",  # IPv4-mapped
    "http://[::ffff:7f00:1]:{port}/cat.jpg",
    "https://127.0.0.1:{port}/cat.jpg",
]


@pytest.mark.parametrize("template", LOOPBACK_SPELLINGS)
def test_loopback_spellings_never_connect(template):
    with ConnectionCounter() as listener, pytest.raises(errors.UrlForbidden) as caught:
        fetch_image_bytes(template.format(port=listener.port), STRICT)
    assert listener.connections == 0
    assert caught.value.status == 400
    assert "upload the file" in caught.value.message


@pytest.mark.parametrize(
    "template",
    ["http://0.0.0.0:{port}/x", "http://[::ffff:127.0.0.1]:{port}/x", "http://[::]:{port}/x"],
)
def test_unspecified_and_mapped_refused_even_with_loopback_allowed(template):
    with ConnectionCounter() as listener, pytest.raises(errors.UrlForbidden):
        fetch_image_bytes(template.format(port=listener.port), LOOPBACK_OK)
    assert listener.connections == 0


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x.jpg", "file:///etc/passwd", "gopher://x/", "data:image/png,AA"]
)
def test_only_http_and_https(url):
    with pytest.raises(errors.UrlForbidden, match="Only http and https"):
        check_url_shape(url)


@pytest.mark.parametrize("url", ["http:///nohost", "http://exa mple.com:99999/"])
def test_malformed_urls_are_bad_requests(url):
    with pytest.raises(errors.BadRequest):
        check_url_shape(url)


def test_loopback_allowed_by_configuration(httpserver):
    httpserver.expect_request("/img").respond_with_data(b"abc", content_type="image/jpeg")
    assert fetch_image_bytes(httpserver.url_for("/img"), LOOPBACK_OK) == b"abc"
    with pytest.raises(errors.UrlForbidden):
        fetch_image_bytes(httpserver.url_for("/img"), STRICT)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_in_the_environment_is_not_used(httpserver, monkeypatch, variable):
    # Through a proxy the guard would check the proxy's address, and the proxy would
    # then reach any address it was given, the metadata server included.
    httpserver.expect_request("/img").respond_with_data(b"abc", content_type="image/jpeg")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ConnectionCounter() as proxy:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        assert fetch_image_bytes(httpserver.url_for("/img"), LOOPBACK_OK) == b"abc"
    assert proxy.connections == 0


def _redirect(location: str) -> Response:
    return Response(status=302, headers={"Location": location})


@pytest.mark.parametrize(
    "target",
    [
        "http://0.0.0.0:{port}/x",
        "http://[::ffff:127.0.0.1]:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
        "http://100.64.0.1/x",
        "file:///etc/passwd",
    ],
)
def test_each_redirect_hop_is_checked(httpserver, target):
    with ConnectionCounter() as listener:
        httpserver.expect_request("/start").respond_with_response(
            _redirect(target.format(port=listener.port))
        )
        with pytest.raises(errors.UrlForbidden):
            fetch_image_bytes(httpserver.url_for("/start"), LOOPBACK_OK)
    assert listener.connections == 0


def test_redirects_are_followed_up_to_three(httpserver):
    for hop in range(3):
        httpserver.expect_request(f"/r{hop}").respond_with_response(_redirect(f"/r{hop + 1}"))
    httpserver.expect_request("/r3").respond_with_data(b"image", content_type="image/png")
    assert fetch_image_bytes(httpserver.url_for("/r0"), LOOPBACK_OK) == b"image"


def test_a_fourth_redirect_is_refused(httpserver):
    for hop in range(4):
        httpserver.expect_request(f"/r{hop}").respond_with_response(_redirect(f"/r{hop + 1}"))
    httpserver.expect_request("/r4").respond_with_data(b"image")
    with pytest.raises(errors.UpstreamFailed, match="more than 3 times"):
        fetch_image_bytes(httpserver.url_for("/r0"), LOOPBACK_OK)


def test_declared_length_over_the_cap_is_refused_before_reading(httpserver):
    limits = FetchLimits(max_bytes=1000, allow_loopback=True)
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(errors.PayloadTooLarge, match=r"is 4\.9 KB; the limit is 1000 bytes"):
        fetch_image_bytes(httpserver.url_for("/big"), limits)


def test_streamed_body_over_the_cap_is_cut(httpserver):
    limits = FetchLimits(max_bytes=100_000, allow_loopback=True)

    def chunks():
        for _ in range(100):
            yield b"x" * 10_000

    # No Content-Length: the cap must hold while streaming.
    httpserver.expect_request("/stream").respond_with_response(Response(chunks()))
    with pytest.raises(errors.PayloadTooLarge):
        fetch_image_bytes(httpserver.url_for("/stream"), limits)


def test_upstream_error_status_is_a_502(httpserver):
    httpserver.expect_request("/gone").respond_with_data(b"", status=404)
    with pytest.raises(errors.UpstreamFailed) as caught:
        fetch_image_bytes(httpserver.url_for("/gone"), LOOPBACK_OK)
    assert caught.value.status == 502
    assert caught.value.details["upstream_status"] == 404


def test_silent_host_times_out_as_504():
    # A listener that accepts but never answers: the read timeout fires.
    with ConnectionCounter(hold=True) as listener:
        limits = FetchLimits(
            connect_timeout=1, read_timeout=0.5, total_timeout=2, allow_loopback=True
        )
        with pytest.raises(errors.UpstreamTimeout):
            fetch_image_bytes(f"http://127.0.0.1:{listener.port}/slow", limits)


def test_closed_port_is_a_502():
    with ConnectionCounter() as listener:
        port = listener.port
    with pytest.raises(errors.UpstreamFailed):
        fetch_image_bytes(f"http://127.0.0.1:{port}/x", LOOPBACK_OK)


# A total deadline holds whatever the host does. The one time bound asserted is the
# spec's: the caller has its 504 within the deadline plus one second.
TRICKLE_LIMITS = FetchLimits(
    connect_timeout=1, read_timeout=2, total_timeout=2, allow_loopback=True, max_concurrent=2
)


@pytest.fixture
def tls_host_context(tmp_path, monkeypatch):
    """A server context with a certificate for 127.0.0.1 that the fetch trusts here only."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.mark.parametrize("stage", ["body", "headers", "https body"])
def test_a_trickling_host_is_cut_at_the_total_deadline(stage, request):
    tls = request.getfixturevalue("tls_host_context") if stage.startswith("https") else None
    with TricklingHost(interval=0.3, headers_too=stage == "headers", tls=tls) as host:
        started = time.monotonic()
        with pytest.raises(errors.UpstreamTimeout, match="within 2 s") as caught:
            fetch_image_bytes(host.url(), TRICKLE_LIMITS)
        elapsed = time.monotonic() - started
        assert caught.value.status == 504
        assert elapsed < TRICKLE_LIMITS.total_timeout + 1
        # The download was shut down under its thread, not left trickling: the host
        # sees its client leave (through TLS too, which detaches the plain socket).
        assert host.accepted == 1
        assert host.wait_until_idle(timeout=5), "the abandoned download kept reading"


def test_a_name_lookup_that_hangs_is_held_to_the_deadline_too(monkeypatch):
    """getaddrinfo takes no timeout; the request waits on the download's thread instead."""
    release = threading.Event()
    real_lookup = socket.getaddrinfo

    def hanging_lookup(host, *args, **kwargs):
        if host == "slow-dns.test":
            release.wait(30)
            host = "127.0.0.1"  # then a closed loopback port: nothing leaves this machine
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    with ConnectionCounter() as listener:
        port = listener.port
    started = time.monotonic()
    try:
        with pytest.raises(errors.UpstreamTimeout, match="within 2 s"):
            fetch_image_bytes(f"http://slow-dns.test:{port}/a.jpg", TRICKLE_LIMITS)
        assert time.monotonic() - started < TRICKLE_LIMITS.total_timeout + 1
    finally:
        release.set()


def test_an_abandoned_download_gives_its_slot_back(httpserver):
    limits = FetchLimits(
        connect_timeout=1, read_timeout=2, total_timeout=1, allow_loopback=True, max_concurrent=1
    )
    httpserver.expect_request("/img").respond_with_data(b"abc", content_type="image/jpeg")
    with TricklingHost(interval=0.3) as host, pytest.raises(errors.UpstreamTimeout):
        fetch_image_bytes(host.url(), limits)
    # The one slot comes back (at once, unless this machine is very busy): the next
    # URL is fetched, not turned away for good.
    end = time.monotonic() + 10
    while True:
        try:
            assert fetch_image_bytes(httpserver.url_for("/img"), limits) == b"abc"
            break
        except errors.FetchesBusy:
            assert time.monotonic() < end, "the abandoned download kept its slot"
            time.sleep(0.1)


def test_url_fetches_beyond_the_slots_are_turned_away_at_once():
    limits = FetchLimits(
        connect_timeout=1, read_timeout=2, total_timeout=3, allow_loopback=True, max_concurrent=1
    )
    with TricklingHost(interval=0.3) as host, ThreadPoolExecutor(1) as pool:
        holding = pool.submit(fetch_image_bytes, host.url("/first.jpg"), limits)
        assert host.wait_for_connections(1, timeout=10), "the first download never started"
        with pytest.raises(errors.FetchesBusy) as caught:
            fetch_image_bytes(host.url("/second.jpg"), limits)
        assert caught.value.status == 503
        assert caught.value.details["retry_after_seconds"] >= 1
        assert "upload the file" in caught.value.message
        assert host.accepted == 1, "the refused request reached the host anyway"
        with pytest.raises(errors.UpstreamTimeout):
            holding.result(timeout=30)
