"""A worker's stop under real gunicorn (webservice/stopping.py), as Cloud Run stops an
instance: SIGTERM to the master. Requests in flight finish, later ones are refused
cleanly (503 with Retry-After, or a connection that is never accepted), whatever
outlasts GRACEFUL_TIMEOUT is cut with a log line, and nothing is accepted then reset.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import RunningService, start_gunicorn_app

pytestmark = pytest.mark.slow

APP = "tests.webservice.stopping_app:create_app()"
CONFIG = "tests/webservice/gunicorn.conf.py"
HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


@pytest.fixture
def start(service_log_dir):
    started: list[RunningService] = []

    def start(**env: str) -> RunningService:
        env = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", **env}
        service = start_gunicorn_app(APP, CONFIG, service_log_dir, env=env, timeout=60)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(signal.SIGKILL)


def post_work(service: RunningService, seconds: float, **kwargs) -> requests.Response:
    return requests.post(
        f"{service.url}/work", params={"seconds": seconds}, timeout=(5, 60), **kwargs
    )


def wait_for_log(service: RunningService, text: str, count: int = 1, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while service.log().count(text) < count:
        assert time.monotonic() < end, f"no {text!r} x{count} in the log:\n{service.log()[-3000:]}"
        time.sleep(0.05)


def sigterm(service: RunningService) -> None:
    """What Cloud Run does: SIGTERM to the container's first process, gunicorn's master."""
    os.kill(service.process.pid, signal.SIGTERM)


def exit_status(service: RunningService) -> int:
    return service.process.wait(timeout=30)


def connect_and_send(port: int, request: bytes = HEALTH) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request)
    return sock


def outcome(sock: socket.socket) -> tuple[str, bytes]:
    """("answered", the response) or ("reset", what came before the connection ended)."""
    received = b""
    with sock:
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return "reset", received
    return ("answered" if received.startswith(b"HTTP/1.1 ") else "reset"), received


def assert_refused_for_shutdown(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), response
    assert b"\r\nretry-after: 1" in head.lower(), head
    assert b'"shutting_down"' in body, body


def test_requests_in_flight_finish_and_later_ones_are_refused_cleanly(start):
    service = start()
    kept_alive = requests.Session()
    assert kept_alive.get(f"{service.url}/health", timeout=10).status_code == 200
    with ThreadPoolExecutor(2) as pool:
        in_flight = [pool.submit(post_work, service, 1.5) for _ in range(2)]
        wait_for_log(service, "work started", count=2)
        sigterm(service)
        wait_for_log(service, "stopping (SIGTERM)")
        # A request on a connection kept alive from before: answered, and refused.
        late = kept_alive.get(f"{service.url}/health", timeout=10)
        # A new connection: the worker no longer listens, so it is never accepted.
        with pytest.raises(ConnectionRefusedError):
            connect_and_send(service.port)
        finished = [future.result() for future in in_flight]

    assert [response.status_code for response in finished] == [200, 200]
    assert late.status_code == 503
    assert late.json()["error"]["code"] == "shutting_down"
    assert late.headers["Retry-After"] == "1"
    assert exit_status(service) == 0
    log = service.log()
    assert "2 request(s) in flight get up to 8 s (GRACEFUL_TIMEOUT)" in log
    assert log.count("in flight at SIGTERM finished") == 2
    assert "is ending; cut" not in log


def test_connections_waiting_at_sigterm_are_answered_not_reset(start):
    # Two connections fill the worker; the next two wait in the listening socket's
    # queue, which stock gunicorn resets when its worker leaves.
    service = start(GUNICORN_CMD_ARGS="--worker-connections 2")
    with ThreadPoolExecutor(2) as pool:
        in_flight = [pool.submit(post_work, service, 2) for _ in range(2)]
        wait_for_log(service, "work started", count=2)
        waiting = [connect_and_send(service.port) for _ in range(2)]
        sigterm(service)
        outcomes = [outcome(sock) for sock in waiting]
        finished = [future.result() for future in in_flight]

    assert [kind for kind, _ in outcomes] == ["answered", "answered"], outcomes
    for _, response in outcomes:
        assert_refused_for_shutdown(response)
    assert [response.status_code for response in finished] == [200, 200]
    assert exit_status(service) == 0


def slow_upload(seconds: float):
    """A request body that trickles for `seconds` (an upload from a slow client)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield b"x" * 1024
        time.sleep(0.2)


@pytest.mark.parametrize("stage", ["working", "uploading"])
def test_requests_outlasting_the_graceful_timeout_are_cut_and_logged(start, stage):
    service = start(GRACEFUL_TIMEOUT="2")
    body = {"data": slow_upload(30)} if stage == "uploading" else {}
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post_work, service, 0 if stage == "uploading" else 30, **body)
        wait_for_log(service, "work started")
        sigterm(service)
        # The client sees its connection closed, without an answer; it never hangs.
        with pytest.raises(requests.ConnectionError):
            in_flight.result(timeout=60)

    assert exit_status(service) == 0
    log = service.log()
    assert "1 request(s) in flight get up to 2 s (GRACEFUL_TIMEOUT)" in log
    assert "GRACEFUL_TIMEOUT (2 s) is ending; cut 1 request(s)" in log
    assert "POST /work (running" in log
