"""The inference scheduler: same answers as one-by-one, cores never oversubscribed."""

import threading
import time

import pytest
import torch

from classifier.batching import BatchScheduler, default_engines


class RecordingForward:
    """A real (tiny) forward pass that records each call's batch size and thread count."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.calls: list[tuple[int, int]] = []
        self.threads_now = 0
        self.most_threads = 0
        self._lock = threading.Lock()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        threads = torch.get_num_threads()  # this engine thread's own intra-op budget
        with self._lock:
            self.calls.append((batch.shape[0], threads))
            self.threads_now += threads
            self.most_threads = max(self.most_threads, self.threads_now)
        time.sleep(self.seconds)
        with self._lock:
            self.threads_now -= threads
        return batch * 2


def run_concurrently(scheduler, forward, values):
    results = {}

    def one(value):
        results[value] = scheduler.run(forward, lambda: torch.full((3,), float(value)))

    threads = [threading.Thread(target=one, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_lone_request_gets_every_core():
    forward = RecordingForward()
    scheduler = BatchScheduler(cores=2, max_batch=4)
    outcome = scheduler.run(forward, lambda: torch.ones(3))
    assert torch.equal(outcome.row, torch.full((3,), 2.0))
    assert forward.calls == [(1, 2)]
    assert (outcome.batch_size, outcome.threads) == (1, 2)


def test_one_request_after_another_always_gets_every_core():
    forward = RecordingForward(seconds=0.005)
    scheduler = BatchScheduler(cores=2, max_batch=4)
    for _ in range(5):
        scheduler.run(forward, lambda: torch.ones(3))
    assert forward.calls == [(1, 2)] * 5


def test_after_requests_overlapped_a_lone_one_gets_one_core_for_a_while():
    """Two users taking turns: the second arrives while the first runs, so neither
    should take every core, until no request has overlapped another for a while."""
    forward = RecordingForward(seconds=0.05)
    scheduler = BatchScheduler(cores=2, max_batch=4, overlap_memory_s=0.3)
    run_concurrently(scheduler, forward, range(2))
    assert scheduler.run(forward, lambda: torch.ones(3)).threads == 1
    time.sleep(0.4)
    assert scheduler.run(forward, lambda: torch.ones(3)).threads == 2


def test_concurrent_requests_are_batched_one_core_per_engine():
    forward = RecordingForward(seconds=0.05)
    scheduler = BatchScheduler(cores=2, max_batch=4)
    results = run_concurrently(scheduler, forward, range(12))
    for value, outcome in results.items():
        assert torch.equal(outcome.row, torch.full((3,), 2.0 * value))
    assert max(size for size, _ in forward.calls) > 1
    assert all(size <= 4 for size, _ in forward.calls)
    assert sum(size for size, _ in forward.calls) == 12
    assert forward.most_threads <= 2


# The time unit of the closed-loop test below. Every margin it relies on is several
# units, far longer than a busy machine's scheduling hiccups.
UNIT_S = 0.02


def closed_loop_batch_sizes(answered_users_wait_s: float) -> list[int]:
    """Two users on one engine over two cores, each sending its next image a little
    after its last answer is back: the batch size of every pass after the first two.

    A pass takes 12 units and preparing an image 4. User A comes back 2 units
    after its answer, user B 3 units after: a batch that a hiccup put together
    splits again, as two real users' would, instead of staying in step forever.
    """
    forward = RecordingForward(seconds=12 * UNIT_S)
    scheduler = BatchScheduler(
        cores=2, max_batch=4, engines=1, answered_users_wait_s=answered_users_wait_s
    )

    def decoded() -> torch.Tensor:
        time.sleep(4 * UNIT_S)  # decoding and preprocessing, on the request's own thread
        return torch.ones(3)

    def user(start_after: float, comes_back_after: float) -> None:
        time.sleep(start_after)
        for _ in range(6):
            scheduler.run(forward, decoded)
            time.sleep(comes_back_after)  # the answer travels back, the next upload arrives

    # B's first image is ready at 10 units, while A's first pass runs (4 to 16).
    timings = [(0.0, 2 * UNIT_S), (6 * UNIT_S, 3 * UNIT_S)]
    users = [threading.Thread(target=user, args=timing) for timing in timings]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(60)
    return [size for size, _ in forward.calls[2:]]


def test_one_engine_under_load_waits_for_the_users_it_just_answered():
    """The second user arrives while the first one's image runs. Without waiting they
    then take turns, one image per pass (each comes back 6 or 7 units into the
    other's 12-unit pass); waiting for the user just answered puts both images in
    one pass."""
    assert closed_loop_batch_sizes(answered_users_wait_s=0).count(1) > 4
    waiting = closed_loop_batch_sizes(answered_users_wait_s=1.0)
    assert waiting.count(2) >= len(waiting) - 1


def test_waiting_ends_when_the_answered_users_do_not_come_back():
    forward = RecordingForward(0.01)
    scheduler = BatchScheduler(cores=2, engines=1, gather_s=1.0, answered_users_wait_s=1.0)
    arrived = threading.Barrier(4)

    def decoded() -> torch.Tensor:
        arrived.wait(10)  # all four are in before any is queued
        return torch.ones(3)

    users = [threading.Thread(target=scheduler.run, args=(forward, decoded)) for _ in range(4)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(10)
    assert forward.calls == [(4, 2)]
    # One of the four goes on alone: its first image waits for the others, but
    # not forever; its next ones are the only images awaited, so they do not wait.
    first, *then = [scheduler.run(forward, lambda: torch.ones(3)) for _ in range(3)]
    assert first.batch_size == 1
    assert first.queue_ms >= 500
    assert all(outcome.queue_ms < 500 for outcome in then)


def test_an_error_reaches_the_request_and_the_engine_survives():
    calls = []

    def fails_once(batch):
        calls.append(batch.shape[0])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return batch * 2

    scheduler = BatchScheduler(cores=1, max_batch=4)
    with pytest.raises(RuntimeError, match="boom"):
        scheduler.run(fails_once, lambda: torch.ones(3))
    assert torch.equal(scheduler.run(fails_once, lambda: torch.ones(3)).row, torch.full((3,), 2.0))


def test_a_failed_preprocessing_does_not_block_the_others():
    forward = RecordingForward(0)
    scheduler = BatchScheduler(cores=2, max_batch=4)

    def broken():
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        scheduler.run(forward, broken)
    assert scheduler.run(forward, lambda: torch.ones(3)).batch_size == 1


def test_each_batch_holds_one_models_images():
    """One scheduler runs every model a worker holds; a batch never mixes two."""
    first, second = RecordingForward(0.05), RecordingForward(0.05)
    scheduler = BatchScheduler(cores=1, max_batch=8)
    results = {}

    def one(value):
        forward = first if value % 2 else second
        results[value] = scheduler.run(forward, lambda: torch.full((3,), float(value)))

    threads = [threading.Thread(target=one, args=(value,)) for value in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for value, outcome in results.items():
        assert torch.equal(outcome.row, torch.full((3,), 2.0 * value))
    assert sum(size for size, _ in first.calls) == sum(size for size, _ in second.calls) == 5
    assert max(size for size, _ in first.calls + second.calls) > 1  # still batched
    assert len(results) == 10


def test_the_engine_layout_follows_model_size_unless_the_weights_are_packed():
    resnet50, resnet18 = 25_557_032, 11_689_512
    assert default_engines(resnet50, packed=False) == 1  # a single engine on every core
    assert default_engines(resnet18, packed=False) is None  # one per core
    assert default_engines(resnet50, packed=True) is None
    assert default_engines(resnet18, packed=True) is None
