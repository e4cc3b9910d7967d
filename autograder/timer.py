"""The grader's own clock for a check: a limit on the time the check itself works.

Checks share work: a script's run or gcloud's verdict is computed once (the
context's memo, often ahead of time by the engine's prefetch) and every check
that needs it waits for it. Time spent waiting for that shared work is not the
waiting check's own: the work has its own limits (a script's timeout, gcloud's),
and on a loaded machine the wait can be long. So a check's clock stops while
it waits, and `run_with_limit` stops a check whose *working* time passes its
limit, with a `CheckTimedOut` (a type of its own, so no caller has to
recognise a timeout by its text). A wall-clock cap still bounds everything.

A stopped check's thread is left to end on its own: everything a check does
(scripts, gcloud, file reads) has a timeout of its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

_POLL_SECONDS = 0.05
_current = threading.local()


class CheckTimedOut(Exception):
    """A check worked longer than its limit and was stopped (not a verdict on the student)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the check was stopped after {seconds:g} s")
        self.seconds = seconds


@dataclass
class CheckClock:
    limit: float
    started: float = field(default_factory=time.monotonic)
    waited: float = 0.0
    waiting_since: float | None = None

    def working_seconds(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        waiting = now - self.waiting_since if self.waiting_since is not None else 0.0
        return now - self.started - self.waited - waiting


@contextlib.contextmanager
def waiting_for_shared_work() -> Iterator[None]:
    """Stop the calling check's clock while the block runs (nested waits count once)."""
    clock: CheckClock | None = getattr(_current, "clock", None)
    if clock is None or clock.waiting_since is not None:
        yield
        return
    clock.waiting_since = time.monotonic()
    try:
        yield
    finally:
        clock.waited += time.monotonic() - clock.waiting_since
        clock.waiting_since = None


def run_with_limit(function: Callable[[], object], limit: float, wall_limit: float):
    """function() in a thread of its own; its result or exception, or CheckTimedOut.

    CheckTimedOut when its working time (waits for shared work left out) passes
    `limit`, or its wall-clock time passes `wall_limit`.
    """
    clock = CheckClock(limit)
    outcome: dict = {}
    done = threading.Event()

    def target() -> None:
        _current.clock = clock
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller's thread as is
            outcome["error"] = exc
        finally:
            _current.clock = None
            done.set()

    threading.Thread(target=target, name="check", daemon=True).start()
    while not done.wait(_POLL_SECONDS):
        now = time.monotonic()
        if clock.working_seconds(now) > limit:
            raise CheckTimedOut(limit)
        if now - clock.started > wall_limit:
            raise CheckTimedOut(wall_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
