"""The circuit breaker's states, driven by an explicit clock."""

from __future__ import annotations

import threading

import pytest

from v3_gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("resnet18", fail_max=3, reset_timeout=5, clock=clock)


def fail(breaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.admit()
        breaker.record_failure()


def test_opens_after_fail_max_failures_in_a_row(breaker):
    fail(breaker, 2)
    breaker.admit()
    breaker.record_success()  # a success resets the count
    fail(breaker, 2)
    assert breaker.state == CLOSED
    fail(breaker)
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_in == pytest.approx(5)
    assert refused.value.failures == 3


def test_half_open_lets_one_trial_through(breaker, clock):
    fail(breaker, 3)
    clock.now += 5
    assert breaker.state == HALF_OPEN
    breaker.admit()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.admit()  # everyone else still fails fast while it runs
    breaker.record_success()
    assert breaker.state == CLOSED
    breaker.admit()


def test_failed_trial_opens_again_for_a_full_period(breaker, clock):
    fail(breaker, 3)
    clock.now += 6
    fail(breaker)  # the trial fails
    assert breaker.state == OPEN
    assert breaker.retry_in() == pytest.approx(5)
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        breaker.admit()


def test_a_slow_call_does_not_block_the_others(breaker):
    """Unlike pybreaker's call(), admit() does not hold a lock during the call."""
    breaker.admit()  # a call that is still running...
    admitted = threading.Event()
    thread = threading.Thread(target=lambda: (breaker.admit(), admitted.set()))
    thread.start()
    thread.join(5)
    assert admitted.is_set()  # ...does not stop a second one from starting


def test_full_bulkheads_count_as_failures_and_open_the_circuit(breaker):
    """A hung model fills its slots before any of its calls times out."""
    breaker.record_busy()
    breaker.record_busy()
    assert breaker.state == CLOSED
    breaker.record_busy()
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpen):
        breaker.refuse_if_open()


def test_a_success_in_between_resets_the_busy_count(breaker):
    breaker.record_busy()
    breaker.record_busy()
    breaker.admit()
    breaker.record_success()
    breaker.record_busy()
    assert breaker.state == CLOSED


def test_refuse_if_open_never_takes_the_trial(breaker, clock):
    fail(breaker, 3)
    clock.now += 5
    assert breaker.state == HALF_OPEN
    breaker.refuse_if_open()  # half-open is not open: no error, and no trial taken
    breaker.admit()  # the trial is still there to take
    with pytest.raises(CircuitOpen):
        breaker.admit()


def test_a_full_bulkhead_while_half_open_opens_again(breaker, clock):
    fail(breaker, 3)
    clock.now += 5
    breaker.admit()  # the trial, still running
    breaker.record_busy()
    assert breaker.state == OPEN
    breaker.record_success()  # the trial's own end decides
    assert breaker.state == CLOSED


def test_an_abandoned_trial_leaves_the_next_call_to_try(breaker, clock):
    fail(breaker, 3)
    clock.now += 5
    breaker.admit()
    breaker.record_abandoned()  # its caller left: it says nothing about the model
    assert breaker.state == HALF_OPEN
    breaker.admit()  # the next call is the trial
    breaker.record_success()
    assert breaker.state == CLOSED
