"""Is each model servable right now? Short probes of the model services, cached briefly.

/ready and /models ask every few seconds at most, however often they are
called, so a burst of health checks never becomes a burst on the models.
"""

from __future__ import annotations

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
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        status = probe(client)
        with self._lock:
            self._cache[name] = (time.monotonic(), status)
        return status

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
