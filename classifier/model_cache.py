"""A thread-safe, bounded cache of loaded models, shared by a worker's request threads.

- Single flight: concurrent first requests for one model wait for one load
  instead of each reading the weights.
- Bounded: at most `max_loaded` entries; the least recently used is evicted.
- Eviction only drops the cache's reference. A request that already holds the
  model keeps using it, and Python frees it when the last such request ends,
  so eviction never breaks a request in flight.
- A failed load is not cached: its error goes to every caller waiting on that
  load, and the next request tries again (the weights may have appeared).

Why not a library: cachetools' LRU needs its own single-flight layer on top
for this, and `functools.lru_cache` neither single-flights nor evicts in a way
we can observe; an OrderedDict and one Future per pending load are shorter
than either and add no dependency to the serving image.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class CacheStats:
    loads: int  # loads that finished and were cached
    failed_loads: int
    hits: int  # gets answered from the cache or by joining a load in progress
    evictions: int
    loaded: tuple[str, ...]  # cached names, least recently used first


class ModelCache(Generic[T]):
    """name -> loaded model, at most `max_loaded` of them; `load(name)` makes a missing one."""

    def __init__(self, load: Callable[[str], T], max_loaded: int) -> None:
        if max_loaded < 1:
            raise ValueError("max_loaded must be at least 1")
        self._load = load
        self.max_loaded = max_loaded
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, T] = OrderedDict()
        self._pending: dict[str, Future[T]] = {}
        self._loads = self._failed_loads = self._hits = self._evictions = 0

    def get(self, name: str) -> T:
        """The model called `name`, loading it (once, however many ask) if it is not cached."""
        with self._lock:
            if name in self._entries:
                self._entries.move_to_end(name)
                self._hits += 1
                return self._entries[name]
            joined = self._pending.get(name)
            if joined is None:
                pending: Future[T] = Future()
                self._pending[name] = pending
            else:
                self._hits += 1
        if joined is not None:
            return joined.result()  # the leader's model, or its exception raised here
        try:
            value = self._load(name)
        except BaseException as exc:
            with self._lock:
                del self._pending[name]
                self._failed_loads += 1
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[name]
            self._loads += 1
            self._insert(name, value)
        pending.set_result(value)
        return value

    def put(self, name: str, value: T) -> None:
        """Cache a model loaded elsewhere (the default model, loaded before gunicorn forks)."""
        with self._lock:
            self._insert(name, value)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._loads,
                self._failed_loads,
                self._hits,
                self._evictions,
                tuple(self._entries),
            )

    def _insert(self, name: str, value: T) -> None:
        # Caller holds the lock.
        self._entries[name] = value
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_loaded:
            evicted, _ = self._entries.popitem(last=False)
            self._evictions += 1
            log.info("evicted %s (MAX_LOADED_MODELS=%d)", evicted, self.max_loaded)
