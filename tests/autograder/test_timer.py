"""The grader's own check timer: it stops a check's own work, never its waits for shared work."""

from __future__ import annotations

import threading
import time

import pytest

from autograder.checks import CHECKS, load_checks
from autograder.context import GradingContext, Options
from autograder.engine import NOT_GRADED, PASSED, evaluate
from autograder.rubric import load_rubric
from autograder.submission import load_submission
from autograder.timer import CheckTimedOut, run_with_limit
from tests.autograder.builders import solution_files


def test_a_check_that_works_too_long_is_stopped_with_the_graders_own_type():
    started = time.monotonic()
    with pytest.raises(CheckTimedOut) as stopped:
        run_with_limit(lambda: time.sleep(30), limit=0.3, wall_limit=60)
    assert time.monotonic() - started < 10
    assert stopped.value.seconds == 0.3


def test_results_and_exceptions_come_back_as_they_are():
    assert run_with_limit(lambda: 42, limit=5, wall_limit=5) == 42
    with pytest.raises(KeyError, match="boom"):
        run_with_limit(lambda: {}["boom"], limit=5, wall_limit=5)


@pytest.fixture
def context(grader):
    ctx = GradingContext(load_submission(grader.write(solution_files())), Options(use_gcloud=False))
    yield ctx
    ctx.close()


def test_waiting_for_work_another_thread_does_is_not_the_checks_time(context):
    """A check blocked on a memo entry another thread computes keeps running past its limit."""
    computing = threading.Event()

    def slow_shared_work():
        computing.set()
        time.sleep(1.5)
        return "shared"

    other = threading.Thread(target=lambda: context.memo(("shared",), slow_shared_work))
    other.start()
    computing.wait(5)
    value = run_with_limit(
        lambda: context.memo(("shared",), lambda: "never"), limit=0.3, wall_limit=30
    )
    other.join()
    assert value == "shared"


def test_a_stopped_check_is_not_graded_and_costs_nothing(context, monkeypatch):
    item = load_rubric().by_id("Q3.v1.deliverables")
    load_checks()  # registered first, so the stand-in replaces the real one
    monkeypatch.setitem(CHECKS, "deliverables", lambda ctx, target: time.sleep(30))
    result = evaluate(context, item, limit=0.3)
    assert result.status == NOT_GRADED, result.message
    assert result.score == 0
    assert result.lost == 0  # no points lost: to be graded again
    assert "stopped this check after 0.3 s" in result.message
    monkeypatch.undo()
    assert evaluate(context, load_rubric().by_id("Q6.v2.deliverables")).status == PASSED
