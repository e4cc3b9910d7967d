"""Run rubric items against a grading context and turn outcomes into results.

The pytest plugin runs each item as a test (selection, reporting); `grade()`
runs them all in-process, for the self-tests and for tools that want a Grade
without pytest. Both go through `evaluate`, so both produce the same
ItemResults, and both warm the context up with `prefetch` first.

Statuses:
  passed      the check passed: full points
  failed      the check found a mistake in this item's own file: no points
  skipped     what it checks depends on another file that fails its own checks:
              full points here, the other file is charged (one mistake, one charge)
  pending     not decided in this run (live probes without --live, hand grading)
  graded      given by hand
  not_graded  the grader did not finish it (stopped by its timer, or the batch's
              timeout): no points yet and no verdict, to be rerun
  error       the grader failed on it (a bug or a very unusual file): no verdict
  environment the grading machine failed (its sandbox could not start): no verdict
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder import assignment
from autograder.checks import load_checks
from autograder.checks.build import usable_config
from autograder.checks.common import working_script
from autograder.context import GradingContext, Options
from autograder.feedback import CheckFailed, Pending, Skipped
from autograder.rubric import Item, Rubric, load_rubric, verify
from autograder.sandbox import SandboxError
from autograder.timer import CheckTimedOut, run_with_limit

PASSED, FAILED, PENDING, ERROR, GRADED = "passed", "failed", "pending", "error", "graded"
SKIPPED, NOT_GRADED = "skipped", "not_graded"
# Not graded: the grading machine failed (its sandbox could not start). Never the
# student's doing, so never a verdict on their work: the instructor regrades.
ENVIRONMENT = "environment"
# Points that are not decided yet: still to come, never counted as lost.
UNDECIDED = (PENDING, NOT_GRADED, ERROR, ENVIRONMENT)
DEFAULT_CHECK_TIMEOUT = 300.0


@dataclass
class ItemResult:
    item: Item
    status: str
    score: float
    message: str = ""

    @property
    def lost(self) -> float:
        return 0.0 if self.status in UNDECIDED else self.item.points - self.score


def checked_rubric() -> Rubric:
    rubric = load_rubric()
    verify(rubric, set(load_checks()))
    return rubric


def check_limits(options: Options, item: Item, limit: float | None = None) -> tuple[float, float]:
    """(working-time limit, wall-clock limit) for one check.

    The working limit is well above anything a check does by itself (a script
    has its own timeout); the wall limit also covers waiting for shared work.
    """
    if limit is None:
        if item.kind == "live":
            limit = options.probe_timeout * 8 + 60
        else:
            limit = max(DEFAULT_CHECK_TIMEOUT, options.script_timeout * 4 + 120)
    return limit, limit + 2 * options.script_timeout + 180


def run_check(ctx: GradingContext, item: Item, limit: float | None = None) -> str | None:
    """Run one item's check under the grader's timer.

    Returns an optional note; raises CheckFailed, Skipped, Pending, CheckTimedOut.
    """
    check = load_checks()[item.check]
    working, wall = check_limits(ctx.options, item, limit)
    return run_with_limit(lambda: check(ctx, item.target), working, wall)


def internal_error(exc: BaseException) -> str:
    return (
        f"The grader could not finish this check ({type(exc).__name__}: {str(exc)[:200]}). "
        "This is a problem in the grader or an unusual file, not a verdict on your work: "
        "tell your instructor, and include this message."
    )


def timed_out_message(seconds: float) -> str:
    return (
        f"The grader stopped this check after {seconds:g} s of work, before it reached a "
        "verdict (a slow or overloaded grading machine, not your work: your scripts have a "
        "timeout of their own). No points are counted either way: your instructor will "
        "grade it again."
    )


def environment_error(exc: BaseException) -> str:
    return (
        f"Not graded: the grading machine failed ({str(exc)[:300]}). This says nothing "
        "about your work and costs you nothing: your instructor has to grade it again."
    )


def result_for(item: Item, outcome: BaseException | None, note: str | None = None) -> ItemResult:
    if isinstance(outcome, SandboxError):
        return ItemResult(item, ENVIRONMENT, 0.0, environment_error(outcome))
    if outcome is None:
        return ItemResult(item, PASSED, item.points, note or "")
    if isinstance(outcome, CheckFailed):
        return ItemResult(item, FAILED, 0.0, outcome.render())
    if isinstance(outcome, Skipped):
        return ItemResult(item, SKIPPED, item.points, outcome.render())
    if isinstance(outcome, Pending):
        return ItemResult(item, PENDING, 0.0, str(outcome))
    if isinstance(outcome, CheckTimedOut):
        return ItemResult(item, NOT_GRADED, 0.0, timed_out_message(outcome.seconds))
    return ItemResult(item, ERROR, 0.0, internal_error(outcome))


def evaluate(ctx: GradingContext, item: Item, limit: float | None = None) -> ItemResult:
    try:
        note = run_check(ctx, item, limit)
    except Exception as exc:  # every outcome becomes a result; none escapes
        return result_for(item, exc)
    return result_for(item, None, note)


def manual_result(item: Item, manual: dict[str, float] | None) -> ItemResult:
    if manual is not None and item.id in manual:
        return ItemResult(item, GRADED, manual[item.id], "graded by hand")
    return ItemResult(
        item, PENDING, 0.0, "graded by hand from the short-answer file (not graded yet)"
    )


def prefetch(ctx: GradingContext, workers: int = 3, wait: bool = True) -> None:
    """Run the slow parts (scripts, gcloud verdicts) a few at a time, ahead of the checks.

    Only what the checks will ask for. With wait=False it runs in the
    background; a check that needs a result meanwhile waits for that result
    only (the memo's lock), so a slow script costs time only to the checks
    that depend on it.
    """

    def config(component: str) -> None:
        usable_config(ctx, component)
        ctx.config_verdict(component)

    def script(logical: str) -> None:
        working_script(ctx, logical)
        ctx.command_verdicts(logical)

    tasks = [lambda c=c: config(c) for c in assignment.COMPONENTS]
    for component in assignment.COMPONENTS:
        for logical in (assignment.submit_script(component), assignment.deploy_script(component)):
            tasks.append(lambda s=logical: script(s))
    ctx.background(tasks, workers, wait)


def grade(ctx: GradingContext, manual: dict[str, float] | None = None) -> list[ItemResult]:
    """Every rubric item's result, in rubric order."""
    rubric = checked_rubric()
    prefetch(ctx)
    return [
        manual_result(item, manual) if item.kind == "manual" else evaluate(ctx, item)
        for item in rubric.items
    ]
