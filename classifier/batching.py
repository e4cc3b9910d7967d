"""Share a process's cores between concurrent requests: micro-batches and a thread budget.

Measured on a 2-core machine: a lone request is fastest
with every core on its one image (intra-op threads), but under load one
single-threaded forward pass per core, each on a small batch, gets the most
images through. The scheduler switches between the two on its own:

- request threads decode and preprocess in parallel, then queue their tensor;
- one engine thread per core runs forward passes; an engine that would run
  while nothing else is waiting, preparing or running gets every core,
  otherwise one core and a batch of up to `max_batch` queued images (it waits
  up to `gather_s` for the images it expects from requests still preparing);
- cores are counted, so engines never run more intra-op threads than cores;
- under load, a single engine on every core that has just answered requests
  waits up to `linger_s` for as many to come back (a user sends the next image
  once the last answer arrives): running a lone image first and the others
  behind it is slower, because a multi-threaded pass that shares the cores with
  other requests' decoding stalls whenever one of its threads is preempted
  (its OpenMP threads wait for each other), while a full batch runs alone;
- "alone" means no request overlapped another within the last
  `overlap_memory_s`: with two closed-loop users, the second request arrives
  just after the first has taken every core, and taking turns on all cores
  is slower for both than one single-threaded pass each (ResNet-18, measured).

PyTorch's intra-op thread count is per calling thread (OpenMP), so each engine
sets its own before every pass. Only engine 0 ever runs more than one thread,
and nothing else in the process does: GNU OpenMP keeps a pool of helper
threads per thread that opened a parallel region, and once the pools hold
more threads than there are cores it stops spinning between regions, which
made a two-thread ResNet-50 pass about 25% slower (measured here). So the
lone-request warm-up runs on engine 0 too, never on gunicorn's main thread.
No server library does this in-process on CPU (LitServe batches in separate
worker processes, which doubles the memory).
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
from PIL import Image

log = logging.getLogger(__name__)


def use_threads(count: int) -> None:
    """Set the calling thread's intra-op thread count (OpenMP keeps one per thread).

    Asking first also runs torch's once-per-thread set-up, which would otherwise
    overwrite this thread's count with the last one any thread set.
    """
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


# Measured on the 2-core benchmark machine: with
# eager convolutions, a large model such as ResNet-50 goes fastest as one forward pass
# on every core, batched, and a small one such as ResNet-18 as one single-threaded
# pass per core. On packed weights (classifier/packing.py) a single-threaded pass
# gains the most (ResNet-50 at batch 4: 313 -> 193 ms on one thread, 118 -> 99 ms
# on two), and one pass per core wins for both.
WIDE_ENGINE_MIN_PARAMETERS = 20_000_000


def default_engines(parameters: int, *, packed: bool) -> int | None:
    """The engine layout for a model of this size: 1 (one wide engine) or None (one per core)."""
    if packed:
        return None
    return 1 if parameters >= WIDE_ENGINE_MIN_PARAMETERS else None


@dataclass
class _Job:
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
        forward: Callable[[torch.Tensor], torch.Tensor],
        *,
        cores: int,
        max_batch: int = 4,
        gather_s: float = 0.005,
        engines: int | None = None,
        overlap_memory_s: float = 1.0,
        linger_s: float = 0.0,
    ) -> None:
        self._forward = forward
        self.cores = max(1, cores)
        # None: one engine per core. 1: a single engine that always uses every core.
        self.engines = engines
        self.max_batch = max(1, max_batch)
        self.gather_s = gather_s
        self.overlap_memory_s = overlap_memory_s
        self.linger_s = linger_s
        self._overlapped_at = -math.inf  # when a request last arrived while another was in
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._preparing = 0  # requests admitted but not queued yet (decoding, preprocessing)
        self._running_jobs = 0
        self._running_engines = 0
        self._busy_cores = 0
        self._engines: list[threading.Thread] = []
        # For lingering: requests admitted in all, and at the end of the last pass.
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

    def run(self, prepare: Callable[[], torch.Tensor]) -> Outcome:
        """Run `prepare()` (one image's tensor) here, then its forward pass on an engine."""
        self.start()
        with self._lock:
            if self._preparing or self._queue or self._running_jobs:
                self._overlapped_at = time.perf_counter()
            self._preparing += 1
            self._admitted += 1
        try:
            use_threads(1)  # preprocessing shares the cores with the engines
            job = _Job(prepare())
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

    def _engine(self, wide: bool) -> None:
        use_threads(1)
        while True:
            jobs, threads = self._next_batch(wide)
            started = time.perf_counter()
            for job in jobs:
                job.started_at, job.batch_size, job.threads = started, len(jobs), threads
            try:
                use_threads(threads)
                rows = self._forward(torch.stack([job.tensor for job in jobs]))
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

    def _next_batch(self, wide: bool) -> tuple[list[_Job], int]:
        """Wait for work and a free core; take a fair share of the queue and a thread count.

        `wide` marks engine 0, the only one that may use several threads.
        """
        with self._lock:
            while True:
                if not self._queue or self._busy_cores >= self.cores:
                    self._lock.wait()
                    continue
                idle_engines = len(self._engines) - self._running_engines
                expected = len(self._queue) + self._preparing
                share = min(self.max_batch, math.ceil(expected / max(1, idle_engines)))
                alone = not self._running_engines and (
                    len(self._engines) == 1 or (expected == 1 and not self._recently_shared())
                )
                if alone and not wide:
                    self._lock.wait()  # engine 0 is idle too: it takes the lone image
                    continue
                if len(self._queue) < share and (self._running_engines or self._preparing):
                    # More images are on their way (being preprocessed, or queued while
                    # the other engines are busy): gather them briefly.
                    remaining = self._queue[0].queued_at + self.gather_s - time.perf_counter()
                    if remaining > 0:
                        self._lock.wait(remaining)
                        continue
                if self._awaiting_returns():
                    remaining = self._freed_at + self.linger_s - time.perf_counter()
                    if remaining > 0:
                        self._lock.wait(remaining)
                        continue
                size = max(1, min(share, len(self._queue)))
                jobs = [self._queue.popleft() for _ in range(size)]
                threads = self.cores if alone else 1
                self._busy_cores += threads
                self._running_engines += 1
                self._running_jobs += size
                return jobs, threads

    def _awaiting_returns(self) -> bool:
        """Whether the single engine should wait for the users it just answered.

        Only under load (requests overlapped recently), only until as many
        requests have arrived as the last pass answered and all of them are
        prepared, never past a full batch, and at most `linger_s` after that
        pass. When the load drops to one user, its first request waits out
        `linger_s` once; from then on it is the one request awaited.
        """
        if not self.linger_s or len(self._engines) != 1:
            return False
        if len(self._queue) >= self.max_batch or not self._recently_shared():
            return False
        returned = self._admitted - self._admitted_at_free
        return self._preparing > 0 or returned < self._last_pass_size

    def _recently_shared(self) -> bool:
        return time.perf_counter() - self._overlapped_at < self.overlap_memory_s


class BatchedPredictor:
    """A Predictor whose forward passes go through a BatchScheduler; same classify() contract."""

    def __init__(self, predictor, scheduler: BatchScheduler) -> None:
        self.predictor = predictor
        self.scheduler = scheduler

    @property
    def name(self) -> str:
        return self.predictor.name

    @property
    def loaded(self):
        return self.predictor.loaded

    def classify(self, image, top_k: int = 5) -> tuple[list, dict]:
        prepared: list[float] = []

        def prepare() -> torch.Tensor:
            started = time.perf_counter()
            tensor = self.predictor.preprocess([image])[0]
            prepared.append((time.perf_counter() - started) * 1000)
            return tensor

        outcome = self.scheduler.run(prepare)
        predictions = self.predictor.top_k(outcome.row.unsqueeze(0), top_k)[0]
        timing = {
            "preprocess_ms": round(prepared[0], 2),
            "queue_ms": round(outcome.queue_ms, 2),
            "inference_ms": round(outcome.forward_ms, 2),
        }
        return predictions, timing

    def warm_up(self) -> None:
        """Start the engines and run one lone image: the every-core path, on engine 0.

        Batched shapes on one thread are set up by their first use: warming them
        all here would cost ResNet-50 about a second of cold start.
        """
        started = time.perf_counter()
        grey = Image.new("RGB", (256, 256), (127, 127, 127))
        self.scheduler.run(lambda: self.predictor.preprocess([grey])[0])
        log.info("%s warmed up in %.0f ms", self.name, (time.perf_counter() - started) * 1000)
