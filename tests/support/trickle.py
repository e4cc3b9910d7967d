"""A loopback image host that sends one byte at a time, slowly: each byte arrives well
within any read timeout, so only a total deadline can stop a download from it."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time

# A JPEG's first bytes: the download looks like an image for as long as it lasts.
IMAGE_START = b"\xff\xd8\xff\xe0"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n"


class TricklingHost:
    """Answers every GET with a large Content-Length, then one byte every `interval`.

    `headers_too=True` trickles the status line and headers as well; `tls` (a
    server-side SSLContext) serves https. Each connection stops after
    `max_seconds` (so a test can never hang on it) or as soon as the client goes
    away; `open_connections` counts those still being fed, `accepted` all of them.
    """

    def __init__(
        self,
        *,
        interval: float = 0.5,
        headers_too: bool = False,
        tls: ssl.SSLContext | None = None,
        max_seconds: float = 60,
    ) -> None:
        self.interval, self.headers_too, self.max_seconds = interval, headers_too, max_seconds
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open = 0
        self.accepted = 0
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/slow.jpg") -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    def wait_until_idle(self, timeout: float) -> bool:
        """True once no connection is still being fed (its client went away)."""
        end = time.monotonic() + timeout
        while self.open_connections:
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        """True once `count` connections have been accepted."""
        end = time.monotonic() + timeout
        while self.accepted < count:
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def __enter__(self) -> TricklingHost:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open += 1
                self.accepted += 1
            threading.Thread(target=self._feed, args=(connection,), daemon=True).start()

    def _feed(self, connection: socket.socket) -> None:
        end = time.monotonic() + self.max_seconds
        try:
            connection.settimeout(5)
            if self._tls:
                connection = self._tls.wrap_socket(connection, server_side=True)
            with connection:
                connection.recv(65536)  # the request (its headers fit one read)
                if not self.headers_too:
                    connection.sendall(HEAD)
                for byte in (HEAD if self.headers_too else b"") + IMAGE_START + bytes(10**6):
                    if time.monotonic() > end or self._stopped.is_set():
                        return
                    connection.sendall(bytes([byte]))
                    if self._client_left(connection):
                        return
        except OSError:  # ssl.SSLError included: the client went away
            return
        finally:
            connection.close()
            with self._lock:
                self._open -= 1

    def _client_left(self, connection: socket.socket) -> bool:
        """Wait one interval, returning early (True) when the client closes or resets."""
        connection.settimeout(self.interval)
        try:
            return connection.recv(1) == b""
        except TimeoutError:
            return False
        finally:
            connection.settimeout(5)
