"""A model traced on one thread must not break the module calls of the others.

The tracing thread stops in the middle of its trace (inside a module fx runs
through) and lets another thread call an unrelated module there. Unguarded,
that call fails inside the tracer; through calling_modules() it waits for the
trace and then answers.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import fx, nn

from classifier import tracing
from classifier.batching import BatchScheduler


class _PausesWhileTraced(nn.Module):
    """Traced through (not a leaf): its forward runs during the trace, and waits there."""

    def __init__(self, reached: threading.Event, resume: threading.Event) -> None:
        super().__init__()
        self.reached, self.resume = reached, resume

    def forward(self, x):
        self.reached.set()
        self.resume.wait(timeout=1.0)  # the guarded caller waits for the trace: go on
        return x + 1


class _Traced(nn.Module):
    def __init__(self, reached, resume) -> None:
        super().__init__()
        self.pause = _PausesWhileTraced(reached, resume)
        self.linear = nn.Linear(3, 3)

    def forward(self, x):
        return self.linear(self.pause(x))


def _call_during_a_trace(trace, call_other_module) -> BaseException | torch.Tensor:
    """What `call_other_module()` gave (or raised) when run in the middle of `trace`."""
    reached, resume = threading.Event(), threading.Event()
    model = _Traced(reached, resume)
    tracer = threading.Thread(target=trace, args=(model,))
    tracer.start()
    assert reached.wait(timeout=10)
    outcome: list = []

    def other() -> None:
        try:
            outcome.append(call_other_module())
        except BaseException as exc:
            outcome.append(exc)
        resume.set()

    caller = threading.Thread(target=other)
    caller.start()
    caller.join(timeout=10)
    tracer.join(timeout=10)
    assert not caller.is_alive()
    assert not tracer.is_alive()
    return outcome[0]


def test_unguarded_calls_fail_inside_another_threads_trace():
    """The hazard itself, so the guard's test below can fail."""
    other = nn.Linear(3, 3)
    got = _call_during_a_trace(fx.symbolic_trace, lambda: other(torch.ones(1, 3)))
    assert isinstance(got, NameError)
    assert "not installed as a submodule" in str(got)


def test_guarded_calls_wait_for_the_trace_and_then_answer():
    other = nn.Linear(3, 3)
    expected = other(torch.ones(1, 3))

    def guarded():
        with tracing.calling_modules():
            return other(torch.ones(1, 3))

    got = _call_during_a_trace(tracing.symbolic_trace, guarded)
    assert isinstance(got, torch.Tensor)
    assert torch.equal(got, expected)


def test_the_scheduler_guards_preprocessing_and_forward_passes():
    """A model loaded while the scheduler serves another: both of its steps wait."""
    scheduler = BatchScheduler(cores=1)
    other = nn.Linear(3, 3)
    expected = other(torch.ones(3))

    def through_the_scheduler():
        return scheduler.run(other, lambda: torch.ones(3)).row

    got = _call_during_a_trace(tracing.symbolic_trace, through_the_scheduler)
    assert isinstance(got, torch.Tensor), got
    assert torch.allclose(got, expected)


def test_a_trace_inside_a_module_call_is_refused_not_deadlocked():
    with tracing.calling_modules():
        with tracing.calling_modules():  # nested calls in one thread are fine
            pass
        with pytest.raises(RuntimeError, match="cannot be traced"):
            tracing.symbolic_trace(nn.Linear(2, 2))
