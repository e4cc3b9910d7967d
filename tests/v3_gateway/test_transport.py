"""The gateway's HTTP exchange (libcurl) against loopback servers that misbehave on purpose."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import trustme

from tests.v3_gateway.conftest import ScriptedServer
from v3_gateway.transport import HandlePerThread, Timeouts, TransportError, exchange

QUICK = Timeouts(connect=2, read=5, total=10)


@pytest.fixture
def serve():
    servers = []

    def start(script, wrap=None) -> ScriptedServer:
        servers.append(ScriptedServer(script, wrap))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def read_request(connection: socket.socket) -> bytes:
    """Read one request (headers and a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")]
    length = int(lengths[0].split(b":")[1]) if lengths else 0
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def answer(body: bytes, *, length: bool = True) -> bytes:
    """A JSON answer, with a Content-Length or as one chunk."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if length:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def keep_answering(body: bytes):
    def script(connection):
        while True:
            read_request(connection)
            connection.sendall(answer(body))

    return script


def test_posts_the_body_as_given_and_reuses_the_connection(serve):
    received = []

    def script(connection):
        while True:
            received.append(read_request(connection))
            connection.sendall(answer(b'{"ok": true}'))

    server = serve(script)
    handle = HandlePerThread().get()
    body = bytes(range(256)) * 5000  # every byte value, 1.3 MB: libcurl would send "Expect:"
    first = exchange(handle, server.url + "/predict", timeouts=QUICK, max_bytes=1024, body=body,
                     headers=("Content-Type: application/octet-stream",))  # fmt: skip
    second = exchange(handle, server.url + "/ready", timeouts=QUICK, max_bytes=1024)
    assert (first.status, first.content_type) == (200, "application/json")
    assert first.body == b'{"ok": true}'
    assert second.body == b'{"ok": true}'
    assert received[0].startswith(b"POST /predict HTTP/1.1\r\n")
    assert received[0].endswith(b"\r\n\r\n" + body)
    assert b"expect:" not in received[0].lower()  # no wait for "100 Continue"
    assert received[1].startswith(b"GET /ready HTTP/1.1\r\n")  # the POST's options are gone
    assert server.connections == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_answer_over_the_limit_is_refused(serve, declared):
    server = serve(lambda c: (read_request(c), c.sendall(answer(b"x" * 5000, length=declared))))
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=QUICK, max_bytes=4096)
    assert failed.value.kind == "too_large"


def test_a_silent_service_times_out_after_the_read_gap_not_the_deadline(serve):
    server = serve(lambda c: (read_request(c), time.sleep(30)))
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=Timeouts(2, 1, 20), max_bytes=1024)
    assert failed.value.kind == "read_timeout"
    assert time.monotonic() - started < 15  # the 1 s read gap ended it, not the 20 s left


def test_a_trickling_service_is_cut_off_at_the_deadline(serve):
    def trickle(connection):
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):  # a byte per 0.3 s: never a 1 s gap, 30 s in all
            connection.sendall(b"x")
            time.sleep(0.3)

    server = serve(trickle)
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=Timeouts(2, 1, 2), max_bytes=1024)
    assert failed.value.kind == "read_timeout"
    assert time.monotonic() - started < 15


def test_a_refused_connection_is_a_connect_failure(serve):
    server = serve(lambda c: None)
    server.stop()  # nothing listens on its port any more
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=QUICK, max_bytes=1024)
    assert failed.value.kind == "connect_failed"


def test_a_request_that_reached_the_service_is_never_sent_twice(serve):
    server = serve(lambda c: read_request(c))  # reads it, then hangs up without answering
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=QUICK, max_bytes=1024, body=b"img")
    assert failed.value.kind == "broken"
    assert server.connections == 1


def test_a_kept_alive_connection_closed_before_answering_is_tried_once_more(serve):
    """libcurl's own rule, not ours: the service dropped the request with its
    connection (a worker that died takes its inference with it), so the request
    goes once more on a new connection."""
    received = []

    def script(connection):
        received.append(read_request(connection))
        connection.sendall(answer(b"{}"))
        if len(received) == 1:  # the first connection reads the next request and hangs up
            received.append(read_request(connection))

    server = serve(script)
    handle = HandlePerThread().get()
    for body in (b"first", b"second"):
        reply = exchange(handle, server.url, timeouts=QUICK, max_bytes=1024, body=body)
        assert reply.status == 200
    assert [request.rsplit(b"\r\n", 1)[-1] for request in received] == [
        b"first",
        b"second",
        b"second",
    ]
    assert server.connections == 2


def test_proxy_settings_in_the_environment_are_ignored(serve, monkeypatch):
    proxy = serve(lambda c: c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
    target = serve(keep_answering(b"{}"))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    reply = exchange(HandlePerThread().get(), target.url, timeouts=QUICK, max_bytes=1024)
    assert reply.status == 200
    assert proxy.connections == 0


def test_a_certificate_no_public_authority_signed_is_refused(serve):
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server = serve(keep_answering(b"{}"), wrap=lambda c: context.wrap_socket(c, server_side=True))
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url.replace("http:", "https:"),
                 timeouts=QUICK, max_bytes=1024)  # fmt: skip
    assert failed.value.kind == "tls"


def test_each_thread_has_its_own_handle():
    handles = HandlePerThread()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(handles.get()))
    worker.start()
    worker.join()
    assert handles.get() is handles.get()
    assert seen[0] is not handles.get()


def test_a_call_whose_caller_left_stops_and_closes_its_connection(serve):
    """The gateway's client hung up: the call to the model service goes with it."""
    closed = threading.Event()

    def silent(connection):
        read_request(connection)
        if connection.recv(1) == b"":  # blocks until the gateway closes its end
            closed.set()

    server = serve(silent)
    left = threading.Event()
    threading.Timer(0.2, left.set).start()
    with pytest.raises(TransportError) as failed:
        exchange(HandlePerThread().get(), server.url, timeouts=Timeouts(2, 30, 30),
                 max_bytes=1024, body=b"img", abandoned=left.is_set)  # fmt: skip
    assert failed.value.kind == "abandoned"
    assert closed.wait(10), "the connection to the model service was left open"
    assert server.connections == 1  # and nothing was sent again


def test_a_quick_call_never_asks_whether_its_caller_left(serve):
    server = serve(keep_answering(b'{"ok": true}'))
    asked = []
    answered = exchange(HandlePerThread().get(), server.url, timeouts=QUICK, max_bytes=1024,
                        abandoned=lambda: asked.append(1) or False)  # fmt: skip
    assert answered.body == b'{"ok": true}'
    assert asked == []  # within ABANDON_CHECK_SECONDS: not one check
