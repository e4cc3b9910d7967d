"""The inference scheduler: same answers as one-by-one, cores never oversubscribed."""

import threading
import time

import pytest
import torch
import torchvision

from classifier.batching import BatchedPredictor, BatchScheduler, default_engines
from classifier.inference import Predictor
from classifier.models import WeightsSource, load_model
from tests.support.images import sample_photo


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


def run_concurrently(scheduler, values):
    results = {}

    def one(value):
        results[value] = scheduler.run(lambda: torch.full((3,), float(value)))

    threads = [threading.Thread(target=one, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_lone_request_gets_every_core():
    forward = RecordingForward()
    scheduler = BatchScheduler(forward, cores=2, max_batch=4)
    outcome = scheduler.run(lambda: torch.ones(3))
    assert torch.equal(outcome.row, torch.full((3,), 2.0))
    assert forward.calls == [(1, 2)]
    assert (outcome.batch_size, outcome.threads) == (1, 2)


def test_one_request_after_another_always_gets_every_core():
    forward = RecordingForward(seconds=0.005)
    scheduler = BatchScheduler(forward, cores=2, max_batch=4)
    for _ in range(5):
        scheduler.run(lambda: torch.ones(3))
    assert forward.calls == [(1, 2)] * 5


def test_after_requests_overlapped_a_lone_one_gets_one_core_for_a_while():
    """Two users taking turns: the second arrives while the first runs, so neither
    should take every core, until no request has overlapped another for a while."""
    forward = RecordingForward(seconds=0.05)
    scheduler = BatchScheduler(forward, cores=2, max_batch=4, overlap_memory_s=0.3)
    run_concurrently(scheduler, range(2))
    assert scheduler.run(lambda: torch.ones(3)).threads == 1
    time.sleep(0.4)
    assert scheduler.run(lambda: torch.ones(3)).threads == 2


def test_concurrent_requests_are_batched_one_core_per_engine():
    forward = RecordingForward(seconds=0.05)
    scheduler = BatchScheduler(forward, cores=2, max_batch=4)
    results = run_concurrently(scheduler, range(12))
    for value, outcome in results.items():
        assert torch.equal(outcome.row, torch.full((3,), 2.0 * value))
    assert max(size for size, _ in forward.calls) > 1
    assert all(size <= 4 for size, _ in forward.calls)
    assert sum(size for size, _ in forward.calls) == 12
    assert forward.most_threads <= 2


def closed_loop_batch_sizes(linger_s: float) -> list[int]:
    """Two users, each sending its next image as soon as the last answer is back, on
    one engine over two cores: the batch size of every pass after the first two."""
    forward = RecordingForward(seconds=0.03)
    scheduler = BatchScheduler(forward, cores=2, max_batch=4, engines=1, linger_s=linger_s)

    def decoded() -> torch.Tensor:
        time.sleep(0.01)  # decoding and preprocessing, on the request's own thread
        return torch.ones(3)

    def user(start_after: float) -> None:
        time.sleep(start_after)
        for _ in range(6):
            scheduler.run(decoded)
            time.sleep(0.005)  # the answer travels back, the next upload arrives

    users = [threading.Thread(target=user, args=(delay,)) for delay in (0, 0.015)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(30)
    return [size for size, _ in forward.calls[2:]]


def test_one_engine_under_load_waits_for_the_users_it_just_answered():
    """The second user arrives while the first one's image runs. Without lingering
    they then take turns, one image per pass; lingering for the user just
    answered puts both images in one pass."""
    assert closed_loop_batch_sizes(linger_s=0).count(1) > 4
    with_linger = closed_loop_batch_sizes(linger_s=1.0)
    assert with_linger.count(2) >= len(with_linger) - 1


def test_lingering_ends_when_the_answered_users_do_not_come_back():
    forward = RecordingForward(0.01)
    scheduler = BatchScheduler(forward, cores=2, engines=1, gather_s=1.0, linger_s=1.0)
    arrived = threading.Barrier(4)

    def decoded() -> torch.Tensor:
        arrived.wait(10)  # all four are in before any is queued
        return torch.ones(3)

    users = [threading.Thread(target=scheduler.run, args=(decoded,)) for _ in range(4)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(10)
    assert forward.calls == [(4, 2)]
    # One of the four goes on alone: its first image waits for the others, but
    # not forever; its next ones are the only images awaited, so they do not wait.
    first, *then = [scheduler.run(lambda: torch.ones(3)) for _ in range(3)]
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

    scheduler = BatchScheduler(fails_once, cores=1, max_batch=4)
    with pytest.raises(RuntimeError, match="boom"):
        scheduler.run(lambda: torch.ones(3))
    assert torch.equal(scheduler.run(lambda: torch.ones(3)).row, torch.full((3,), 2.0))


def test_a_failed_preprocessing_does_not_block_the_others():
    scheduler = BatchScheduler(RecordingForward(0), cores=2, max_batch=4)

    def broken():
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        scheduler.run(broken)
    assert scheduler.run(lambda: torch.ones(3)).batch_size == 1


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.mark.slow
def test_batched_served_predictions_equal_plain_ones(resnet18_file):
    """Batched, channels_last and BatchNorms folded, as backend_v1 serves."""
    source = WeightsSource.parse(str(resnet18_file))
    plain = Predictor(load_model("resnet18", source))
    fast = Predictor(load_model("resnet18", source), channels_last=True, fold_batch_norm=True)
    batched = BatchedPredictor(fast, BatchScheduler(fast.forward, cores=2, max_batch=4))
    batched.warm_up()
    photos = ["cat", "coffee", "rocket"] * 2
    outcomes = {}

    def classify(index):
        outcomes[index] = batched.classify(sample_photo(photos[index]), top_k=5)

    threads = [threading.Thread(target=classify, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for index, photo in enumerate(photos):
        expected, _ = plain.classify(sample_photo(photo), top_k=5)
        got, timing = outcomes[index]
        assert [p.index for p in got] == [p.index for p in expected]
        for mine, reference in zip(got, expected, strict=True):
            assert mine.probability == pytest.approx(reference.probability, abs=1e-5)
        assert {"preprocess_ms", "queue_ms", "inference_ms"} == set(timing)


def test_the_engine_layout_follows_model_size_unless_the_weights_are_packed():
    resnet50, resnet18 = 25_557_032, 11_689_512
    assert default_engines(resnet50, packed=False) == 1  # one wide engine
    assert default_engines(resnet18, packed=False) is None  # one per core
    assert default_engines(resnet50, packed=True) is None
    assert default_engines(resnet18, packed=True) is None
