"""A loopback TCP listener that counts connections: proof that nothing connected."""

from __future__ import annotations

import contextlib
import socket
import threading


class ConnectionCounter:
    """Listens on 127.0.0.1 and [::1] at one port; `connections` counts accepts on either."""

    def __init__(self, *, hold: bool = False) -> None:
        self.connections = 0
        self._hold = hold  # keep accepted connections open and silent (a hanging host)
        self._held: list[socket.socket] = []
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self._sockets.append(v4)
        with contextlib.suppress(OSError):  # IPv6 loopback may be missing
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::1", self.port))
            self._sockets.append(v6)
        self._threads = [
            threading.Thread(target=self._accept, args=(s,), daemon=True) for s in self._sockets
        ]

    def __enter__(self) -> ConnectionCounter:
        for sock, thread in zip(self._sockets, self._threads, strict=True):
            sock.listen(16)
            sock.settimeout(0.2)
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(2)
        for sock in self._sockets + self._held:
            sock.close()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._hold:
                self._held.append(conn)
            else:
                conn.close()
