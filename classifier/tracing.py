"""torch.fx tracing, kept apart from every other module call of the process.

While `fx.symbolic_trace` runs, it patches `torch.nn.Module.__call__` for the
whole process, not for its own thread. A model loaded while the service answers
requests (backend_v2 loads a model the first time someone chooses it) is traced
on one request thread while the engines and the other request threads call
their own modules, and those calls then fail inside the tracer ("module is not
installed as a submodule"): a 500 for unrelated callers.

So tracing takes a process-wide lock alone, and every module call that may
overlap a trace (the scheduler's preprocessing and forward passes) shares it.
The standard library has no read-write lock and the few packages that do are
not worth a dependency for twenty lines; this one prefers the writer, so a
trace waits only for the calls already running, never for a stream of new ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from torch import fx, nn


class _TraceLock:
    """Many module callers at once, or one tracer alone; a waiting tracer goes first."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._callers = 0
        self._tracing = False
        self._tracers_waiting = 0
        self._held = threading.local()  # this thread's depth of calling()

    @contextmanager
    def calling(self) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth:  # nested in this thread: already counted (waiting here would deadlock)
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        with self._condition:
            while self._tracing or self._tracers_waiting:
                self._condition.wait()
            self._callers += 1
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._condition:
                self._callers -= 1
                if not self._callers:
                    self._condition.notify_all()

    @contextmanager
    def tracing(self) -> Iterator[None]:
        if getattr(self._held, "depth", 0):
            raise RuntimeError("a model cannot be traced from inside calling_modules()")
        with self._condition:
            self._tracers_waiting += 1
            while self._tracing or self._callers:
                self._condition.wait()
            self._tracers_waiting -= 1
            self._tracing = True
        try:
            yield
        finally:
            with self._condition:
                self._tracing = False
                self._condition.notify_all()


_LOCK = _TraceLock()

# Around any code that calls torch modules while a model may be traced elsewhere.
calling_modules = _LOCK.calling


def symbolic_trace(module: nn.Module) -> fx.GraphModule:
    """fx.symbolic_trace(module), while no other thread of this process calls a module."""
    with _LOCK.tracing():
        return fx.symbolic_trace(module)
