"""Share a process's cores between concurrent requests: micro-batches and a thread budget.

A lone request is fastest with every core on its one image (intra-op threads);
under load, one single-threaded forward pass per core, each on a small batch,
gets the most images through (the performance notes have the measurements). The
scheduler switches between the two on its own:

- request threads decode and preprocess in parallel, then queue their tensor
  with the forward pass it needs (one scheduler serves every model a worker
  holds; a batch holds one model's images);
- one engine thread per core runs forward passes; an engine that would run
  while nothing else is waiting, preparing or running gets every core,
  otherwise one core and a batch of up to `max_batch` queued images (it waits
  up to `gather_s` for the images it expects from requests still preparing);
- cores are counted, so engines never run more intra-op threads than cores;
- under load, a single engine on every core that has just answered requests
  waits up to `answered_users_wait_s` for as many to come back (a user sends
  the next image once the last answer arrives): running a lone image first and
  the others behind it is slower, because a multi-threaded pass that shares the
  cores with other requests' decoding stalls whenever one of its threads is
  preempted (its OpenMP threads wait for each other), while a full batch runs
  alone;
- a lone request gets every core only if no request overlapped another within
  the last `overlap_memory_s`: with two closed-loop users, the second request
  arrives just after the first has taken every core, and taking turns on all
  cores is slower for both than one single-threaded pass each.

PyTorch's intra-op thread count is per calling thread (OpenMP), so each engine
sets its own before every pass. Only engine 0 ever runs more than one thread,
and nothing else in the process does: GNU OpenMP keeps a pool of helper
threads per thread that opened a parallel region, and once the pools hold
more threads than there are cores it stops spinning between regions, which
slows every multi-threaded pass. So the lone-request warm-up runs on engine 0
too, never on gunicorn's main thread, and a worker that holds several models
runs them all on this one scheduler. No server library does this in-process
on CPU (LitServe batches in separate worker processes, which doubles the memory).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from classifier.tracing import calling_modules

log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]


def use_threads(count: int) -> None:
    """Set the calling thread's intra-op thread count (OpenMP keeps one per thread).

    Asking first also runs torch's once-per-thread set-up, which would otherwise
    overwrite this thread's count with the last one any thread set.
    """
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


# With eager convolutions a large model such as ResNet-50 went fastest as one
# batched forward pass on every core, and a small one such as ResNet-18 as one
# single-threaded pass per core; on packed weights (classifier/packing.py) a
# single-threaded pass gains the most, and one pass per core won for both
# (the performance notes).
SINGLE_ENGINE_MIN_PARAMETERS = 20_000_000


def default_engines(parameters: int, *, packed: bool) -> int | None:
    """The engines for a model of this size: 1 (a single engine on every core) or None
    (one single-threaded engine per core, a lone request still on every core)."""
    if packed:
        return None
    return 1 if parameters >= SINGLE_ENGINE_MIN_PARAMETERS else None


@dataclass
class _Job:
    forward: Forward
    tensor: torch.Tensor
    queued_at: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    result: torch.Tensor | None = None
    error: BaseException | None = None
    batch_size: int = 0
    threads: int = 1
    started_at: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One image's output row and how it was run."""

    row: torch.Tensor
    queue_ms: float
    forward_ms: float
    batch_size: int
    threads: int


class BatchScheduler:
    """Runs `forward(batch) -> rows` for many request threads on a fixed number of cores."""

    def __init__(
        self,
        *,
        cores: int,
        max_batch: int = 4,
        gather_s: float = 0.005,
        engines: int | None = None,
        overlap_memory_s: float = 1.0,
        answered_users_wait_s: float = 0.0,
    ) -> None:
        self.cores = max(1, cores)
        # None: one engine per core. 1: a single engine that always uses every core.
        self.engines = engines
        self.max_batch = max(1, max_batch)
        self.gather_s = gather_s
        self.overlap_memory_s = overlap_memory_s
        self.answered_users_wait_s = answered_users_wait_s
        self._overlapped_at = -math.inf  # when a request last arrived while another was in
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._preparing = 0  # requests admitted but not queued yet (decoding, preprocessing)
        self._running_jobs = 0
        self._running_engines = 0
        self._busy_cores = 0
        self._engines: list[threading.Thread] = []
        # For waiting on answered users: requests admitted in all, and at the end of
        # the last pass.
        self._admitted = 0
        self._admitted_at_free = 0
        self._freed_at = -math.inf
        self._last_pass_size = 0

    def start(self) -> None:
        """Start the engine threads (after a fork: threads do not survive one)."""
        with self._lock:
            if self._engines:
                return
            for number in range(max(1, min(self.engines or self.cores, self.cores))):
                engine = threading.Thread(
                    target=self._engine,
                    args=(number == 0,),
                    name=f"inference-engine-{number}",
                    daemon=True,
                )
                engine.start()
                self._engines.append(engine)
        log.info(
            "inference scheduler: %d core(s), %d engine(s), batches of up to %d",
            self.cores,
            len(self._engines),
            self.max_batch,
        )

    def run(self, forward: Forward, prepare: Callable[[], torch.Tensor]) -> Outcome:
        """Run `prepare()` (one image's tensor) here, then `forward` on it on an engine,
        batched with other images queued for the same `forward`."""
        self.start()
        with self._lock:
            if self._preparing or self._queue or self._running_jobs:
                self._overlapped_at = time.perf_counter()
            self._preparing += 1
            self._admitted += 1
        try:
            use_threads(1)  # preprocessing shares the cores with the engines
            with calling_modules():  # transforms are modules too (classifier/tracing.py)
                job = _Job(forward, prepare())
        except BaseException:
            with self._lock:
                self._preparing -= 1
                self._lock.notify_all()
            raise
        with self._lock:
            self._preparing -= 1
            self._queue.append(job)
            self._lock.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        finished = time.perf_counter()
        return Outcome(
            row=job.result,
            queue_ms=(job.started_at - job.queued_at) * 1000,
            forward_ms=(finished - job.started_at) * 1000,
            batch_size=job.batch_size,
            threads=job.threads,
        )

    def _engine(self, may_use_every_core: bool) -> None:
        use_threads(1)
        while True:
            jobs, threads = self._next_batch(may_use_every_core)
            started = time.perf_counter()
            for job in jobs:
                job.started_at, job.batch_size, job.threads = started, len(jobs), threads
            try:
                use_threads(threads)
                with calling_modules():
                    rows = jobs[0].forward(torch.stack([job.tensor for job in jobs]))
                for job, row in zip(jobs, rows, strict=True):
                    job.result = row
            except BaseException as exc:  # handed to the waiting request threads
                for job in jobs:
                    job.error = exc
            finally:
                with self._lock:
                    self._busy_cores -= threads
                    self._running_engines -= 1
                    self._running_jobs -= len(jobs)
                    self._freed_at = time.perf_counter()
                    self._admitted_at_free = self._admitted
                    self._last_pass_size = len(jobs)
                    self._lock.notify_all()
                for job in jobs:
                    job.done.set()

    def _next_batch(self, may_use_every_core: bool) -> tuple[list[_Job], int]:
        """Wait for work and a free core; take a fair share of the queue and a thread count.

        `may_use_every_core` marks engine 0, the only one that may use several threads.
        """
        with self._lock:
            while True:
                if not self._queue or self._busy_cores >= self.cores:
                    self._lock.wait()
                    continue
                idle_engines = len(self._engines) - self._running_engines
                expected = len(self._queue) + self._preparing
                share = min(self.max_batch, math.ceil(expected / max(1, idle_engines)))
                gets_every_core = not self._running_engines and (
                    len(self._engines) == 1 or (expected == 1 and not self._recently_shared())
                )
                if gets_every_core and not may_use_every_core:
                    self._lock.wait()  # engine 0 is idle too: it takes the lone image
                    continue
                if len(self._queue) < share and (self._running_engines or self._preparing):
                    # More images are on their way (being preprocessed, or queued while
                    # the other engines are busy): gather them briefly.
                    remaining = self._queue[0].queued_at + self.gather_s - time.perf_counter()
                    if remaining > 0:
                        self._lock.wait(remaining)
                        continue
                if self._waiting_for_answered_users():
                    remaining = self._freed_at + self.answered_users_wait_s - time.perf_counter()
                    if remaining > 0:
                        self._lock.wait(remaining)
                        continue
                jobs = self._take(max(1, min(share, len(self._queue))))
                threads = self.cores if gets_every_core else 1
                self._busy_cores += threads
                self._running_engines += 1
                self._running_jobs += len(jobs)
                return jobs, threads

    def _take(self, size: int) -> list[_Job]:
        """Up to `size` queued jobs for the forward pass at the head of the queue, oldest
        first; jobs for other models keep their places. Caller holds the lock."""
        forward = self._queue[0].forward
        jobs: list[_Job] = []
        others: list[_Job] = []
        while self._queue and len(jobs) < size:
            job = self._queue.popleft()
            (jobs if job.forward == forward else others).append(job)
        self._queue.extendleft(reversed(others))
        return jobs

    def _waiting_for_answered_users(self) -> bool:
        """Whether the single engine should wait for the users it just answered.

        Only under load (requests overlapped recently), only until as many
        requests have arrived as the last pass answered and all of them are
        prepared, never past a full batch, and at most `answered_users_wait_s`
        after that pass. When the load drops to one user, its first request
        waits that long once; from then on it is the one request awaited.
        """
        if not self.answered_users_wait_s or len(self._engines) != 1:
            return False
        if len(self._queue) >= self.max_batch or not self._recently_shared():
            return False
        returned = self._admitted - self._admitted_at_free
        return self._preparing > 0 or returned < self._last_pass_size

    def _recently_shared(self) -> bool:
        return time.perf_counter() - self._overlapped_at < self.overlap_memory_s
