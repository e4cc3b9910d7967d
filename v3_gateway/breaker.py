"""A circuit breaker per model: a dead model fails fast, and is tried again by itself.

Why not pybreaker: its CircuitBreaker.call() holds one lock for the whole
guarded call (danielfm/pybreaker issue #55), so every request to a model
would wait for the one before it, and one hung request would block all the
others until its read timeout. Here the lock guards only the counters.

closed     calls pass; `fail_max` failures in a row open the circuit.
open       calls fail at once until `reset_timeout` has passed since opening.
half-open  one trial call passes (the others still fail fast): success closes
           the circuit, failure opens it for another `reset_timeout`.

A call refused because the model's slots were all taken counts as a failure too
(record_busy): a hung model fills its slots long before its calls time out.
A call whose caller left before it ended counts as nothing (record_abandoned).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitOpen(Exception):
    def __init__(self, name: str, retry_in: float, failures: int) -> None:
        super().__init__(f"circuit of {name} is open")
        self.name = name
        self.retry_in = retry_in
        self.failures = failures


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a trial call through (0 when not open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def refuse_if_open(self) -> None:
        """Raise CircuitOpen if the circuit is open (not half-open); change nothing."""
        with self._lock:
            if self._state() != OPEN:
                return
            assert self._opened_at is not None
            retry_in = max(0.0, self._opened_at + self.reset_timeout - self._clock())
            raise CircuitOpen(self.name, retry_in, self._failures)

    def admit(self) -> None:
        """Let a call through or raise CircuitOpen. Every admitted call must end in
        exactly one record_success(), record_failure() or record_abandoned()."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return
            if state == HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return
            assert self._opened_at is not None  # open or half-open: it was opened
            retry_in = max(0.0, self._opened_at + self.reset_timeout - self._clock())
            raise CircuitOpen(self.name, retry_in, self._failures)

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.fail_max:
                self._opened_at = self._clock()
            self._trial_running = False

    def record_busy(self) -> None:
        """A call refused before admission because every slot of the model was taken."""
        with self._lock:
            self._failures += 1
            if self._opened_at is not None or self._failures >= self.fail_max:
                self._opened_at = self._clock()  # a trial still running ends it as it ends

    def record_abandoned(self) -> None:
        """An admitted call whose caller left before it ended: it says nothing of the model."""
        with self._lock:
            self._trial_running = False

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at < self.reset_timeout:
            return OPEN
        return HALF_OPEN
