"""A gunicorn worker that stops cleanly: every request is answered, refused or logged as cut.

gunicorn's threaded worker, on SIGTERM, stops calling accept() but keeps its
listening socket open until it exits: a connection that arrives meanwhile is
completed by the kernel, waits in the backlog and is reset when the worker
leaves. This worker, once SIGTERM has ended its main loop:

- takes the connections already waiting, whose requests are answered 503
  `shutting_down` with Retry-After (init_api refuses every request that starts
  after `stopping` is set), then closes its listening sockets, so a later
  connection is refused, never accepted and then reset;
- logs the requests in flight, which get GRACEFUL_TIMEOUT to finish, and each
  one as it finishes;
- just before GRACEFUL_TIMEOUT ends (when the master kills the worker), logs
  the requests still running as cut and shuts their connections down, so
  their clients see the connection close at once, not a kill.

Everything but recording the signal runs on the worker's main thread, after
its loop: a signal handler must not take locks (starting a thread, logging)
that the code it interrupted may hold.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from webservice.deadlines import CUT_MARGIN_SECONDS

# Set in a worker process once SIGTERM has stopped it taking new work.
stopping = threading.Event()


@dataclass(frozen=True)
class _InFlight:
    method: str
    path: str
    started: float
    client: socket.socket

    def describe(self, now: float) -> str:
        return f"{self.method} {self.path} (running {now - self.started:.1f} s)"


class StoppingThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's gthread worker, with the stop described in this module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight: dict[int, _InFlight] = {}
        self._in_flight_lock = threading.Lock()
        self._got_sigterm = False
        self._stopped_listening = False
        self._stopped_at = float("inf")

    def handle_exit(self, sig: Any, frame: Any) -> None:
        self._got_sigterm = True  # the rest happens on the main thread
        super().handle_exit(sig, frame)

    def handle_request(self, req: Any, conn: Any) -> Any:
        entry = _InFlight(req.method, req.path, time.monotonic(), conn.sock)
        with self._in_flight_lock:
            self._in_flight[id(entry)] = entry
        try:
            return super().handle_request(req, conn)
        finally:
            with self._in_flight_lock:
                del self._in_flight[id(entry)]
                left = len(self._in_flight)
            if self._stopped_listening and entry.started < self._stopped_at:
                self.log.info(
                    "stopping: %s in flight at SIGTERM finished; %d request(s) still running",
                    entry.describe(time.monotonic()),
                    left,
                )

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        # gunicorn calls this with False once its main loop has ended (and when the
        # worker has as many connections as it takes, which is not a stop).
        if not enabled and self._got_sigterm and not self.alive and not self._stopped_listening:
            self._stop_listening()

    def _stop_listening(self) -> None:
        self._stopped_listening = True
        self._stopped_at = time.monotonic()
        stopping.set()
        for listener in self.sockets:
            self._take_waiting(listener)
            listener.close()
        running = self._running()
        grace = self.cfg.graceful_timeout
        if running:
            self.log.info(
                "stopping (SIGTERM): listening sockets closed; %d request(s) in flight get "
                "up to %s s (GRACEFUL_TIMEOUT) to finish: %s",
                len(running),
                grace,
                "; ".join(running),
            )
        else:
            self.log.info("stopping (SIGTERM): listening sockets closed; no request in flight")
        cutter = threading.Timer(max(0.0, grace - CUT_MARGIN_SECONDS), self._cut_the_rest)
        cutter.daemon = True
        cutter.start()

    def _take_waiting(self, listener: Any) -> None:
        """Accept every connection the kernel has already completed on `listener`
        (the worker set it non-blocking), so that none is reset by the close."""
        waiting = select.poll()
        waiting.register(listener, select.POLLIN)
        while waiting.poll(0):
            self.accept(listener)

    def _running(self) -> list[str]:
        now = time.monotonic()
        with self._in_flight_lock:
            return [entry.describe(now) for entry in self._in_flight.values()]

    def _cut_the_rest(self) -> None:
        # Under the lock: a request still listed has not returned, so gunicorn has
        # not closed its socket, and the descriptor is still that connection's.
        with self._in_flight_lock:
            cut = list(self._in_flight.values())
            for entry in cut:
                with contextlib.suppress(OSError):  # the client left already
                    entry.client.shutdown(socket.SHUT_RDWR)
        if cut:
            now = time.monotonic()
            self.log.warning(
                "stopping: GRACEFUL_TIMEOUT (%s s) is ending; cut %d request(s) still "
                "running (their clients see the connection close without an answer): %s",
                self.cfg.graceful_timeout,
                len(cut),
                "; ".join(entry.describe(now) for entry in cut),
            )
