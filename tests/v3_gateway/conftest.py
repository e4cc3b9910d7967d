"""Fixtures for the v3 gateway: real model services (backend_v1 with MODEL_NAME)
and real gateways on loopback, plus a model service that hangs."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.servers import RunningService, start_service

# WEB_CONCURRENCY=1: one worker, so one set of breakers and per-model limits,
# which makes the fault tests' counts exact (and saves CPU).
RESNET18_ENV = {
    "MODEL_NAME": "resnet18",
    "MODEL_WEIGHTS": "random",
    "ALLOW_LOOPBACK_URLS": "true",
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "4",
}


class ModelService:
    """A model service that a test may kill and start again on the same port."""

    def __init__(self, log_dir, env: dict) -> None:
        self.log_dir = log_dir
        self.env = env
        self.service: RunningService = start_service("backend_v1", log_dir, env=env)

    @property
    def url(self) -> str:
        return self.service.url

    def restart(self) -> None:
        self.service.stop()
        self.service = start_service(
            "backend_v1", self.log_dir, env=self.env, port=self.service.port
        )


@pytest.fixture(scope="session")
def model_services(request, service_log_dir):
    """(lite0, resnet18): the suite's lite0 backend and a resnet18 one, started side by side."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ModelService, service_log_dir, RESNET18_ENV)
        try:
            lite0 = request.getfixturevalue("lite0_backend")
        finally:
            resnet18 = pending.result()
    yield lite0, resnet18
    resnet18.service.stop()


def start_gateway(log_dir, session_dir, routes: dict[str, str], **env) -> RunningService:
    services = ",".join(f"{name}={url}" for name, url in routes.items())
    return start_service(
        "v3_gateway",
        log_dir,
        env={
            "MODEL_SERVICES": services,
            "SESSION_DIR": str(session_dir),
            "WEB_CONCURRENCY": "1",
            **{key.upper(): str(value) for key, value in env.items()},
        },
    )


@pytest.fixture
def gateway_factory(service_log_dir, tmp_path):
    started: list[RunningService] = []

    def start(routes: dict[str, str], **env) -> RunningService:
        gateway = start_gateway(service_log_dir, tmp_path / "sessions", routes, **env)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


class ScriptedServer:
    """A loopback server that plays `script(connection)` on each connection it
    accepts (after `wrap`, e.g. a TLS handshake) and counts the connections."""

    def __init__(self, script, wrap=None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._script, self._wrap = script, wrap
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return len(self._connections)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._play, args=(connection,), daemon=True).start()

    def _play(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError), connection:
            if self._wrap:
                connection = self._wrap(connection)
            self._script(connection)

    def stop(self) -> None:
        # shutdown() wakes the accept() above on Linux; close() alone may not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


class HangingService(ScriptedServer):
    """Accepts connections and reads requests, never answers: a hung model service."""

    def __init__(self) -> None:
        self._open = 0
        super().__init__(self._drain)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    def _drain(self, connection: socket.socket) -> None:
        with self._lock:
            self._open += 1
        try:
            while connection.recv(65536):
                pass
        finally:
            with self._lock:
                self._open -= 1


@pytest.fixture
def hanging_service():
    service = HangingService()
    yield service
    service.stop()
