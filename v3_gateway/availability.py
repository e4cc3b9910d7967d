"""Is each model servable right now? Short probes of the model services, cached briefly.

/ready and /models ask every few seconds at most, however often they are
called, so a burst of health checks never becomes a burst on the models. Once
a model has been probed, its last status is answered at once, and an expired
one is refreshed in the background: a hung model service costs a probe's
timeout to a background thread, never to each /models or /ready. (A model
found unavailable that has answered a prediction since is probed again at once.)
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from v3_gateway.breaker import OPEN
from v3_gateway.transport import TransportError
from v3_gateway.upstream import ModelClient


@dataclass(frozen=True)
class Status:
    name: str
    available: bool
    reason: str | None = None
    # The model service's own /models entry (description, weights, warning...).
    entry: dict = field(default_factory=dict)


class Availability:
    def __init__(self, clients: dict[str, ModelClient], cache_seconds: float) -> None:
        self.clients = clients
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Status]] = {}
        self._refreshing: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None

    def status(self, name: str) -> Status:
        client = self.clients[name]
        if client.breaker.state == OPEN:
            # Its calls are failing fast anyway: do not knock on its door.
            return Status(
                name,
                False,
                f"circuit open after repeated failures; next try in "
                f"{client.breaker.retry_in():.0f} s",
            )
        with self._lock:
            cached = self._cache.get(name)
            if cached and not cached[1].available and client.answered_at > cached[0]:
                cached = None  # it has answered a prediction since: ask it again now
            if cached is None:
                refresh = False
            else:
                expired = time.monotonic() - cached[0] >= self.cache_seconds
                refresh = expired and name not in self._refreshing
                if refresh:
                    self._refreshing.add(name)
        if cached is None:
            return self._probe(name)  # nothing known yet: this one call waits for it
        if refresh:
            self._background().submit(self._refresh, name)
        return cached[1]

    def _probe(self, name: str) -> Status:
        status = probe(self.clients[name])
        with self._lock:
            self._cache[name] = (time.monotonic(), status)
        return status

    def _refresh(self, name: str) -> None:
        try:
            self._probe(name)
        finally:
            with self._lock:
                self._refreshing.discard(name)

    def _background(self) -> ThreadPoolExecutor:
        """This process's refresh threads, made on first use (never across a fork)."""
        with self._lock:
            if self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(len(self.clients), thread_name_prefix="refresh")
                self._pool_pid = os.getpid()
            assert self._pool is not None
            return self._pool

    def all_statuses(self) -> list[Status]:
        """Every model's status, probed concurrently (one slow model costs one timeout)."""
        names = list(self.clients)
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="probe") as pool:
            return list(pool.map(self.status, names))


class DefaultModelReadiness:
    """The gateway is ready when its default model is (webservice.api.Readiness)."""

    def __init__(self, availability: Availability, default: str) -> None:
        self.availability = availability
        self.default = default

    def warm_up(self, cores: int | None = None) -> None:
        """Nothing to load in a gateway worker: each model service warms itself up."""

    def not_ready_reason(self) -> str | None:
        status = self.availability.status(self.default)
        return None if status.available else f"default model {self.default}: {status.reason}"


def probe(client: ModelClient) -> Status:
    name = client.name
    try:
        ready = client.probe("/ready")
        if ready.status in (401, 403):
            return Status(name, False, client.refusal(ready.status))
        if ready.status != 200:
            return Status(name, False, f"model service not ready (HTTP {ready.status})")
        listed = client.probe("/models").json().get("models", [])
    except TransportError as exc:
        return Status(name, False, f"model service unreachable ({exc})")
    except (ValueError, AttributeError) as exc:
        return Status(name, False, f"model service unreachable: {type(exc).__name__}")
    entry = next((item for item in listed if item.get("name") == name), None)
    if entry is None:
        served = [item.get("name") for item in listed]
        return Status(name, False, f"the service routed as {name!r} serves {served} instead")
    if not entry.get("available", False):
        return Status(name, False, entry.get("reason", "weights unavailable"), entry)
    return Status(name, True, None, entry)
