"""Run rubric items against a grading context and turn outcomes into results.

The pytest plugin runs each item as a test (timeouts, selection, reporting);
`grade()` runs them all in-process, for the self-tests and for tools that
want a Grade without pytest. Both produce the same ItemResults.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.checks import load_checks
from autograder.context import GradingContext
from autograder.feedback import CheckFailed, Pending
from autograder.rubric import Item, Rubric, load_rubric, verify
from autograder.sandbox import SandboxError

PASSED, FAILED, PENDING, ERROR, GRADED = "passed", "failed", "pending", "error", "graded"
# Not graded: the grading machine failed (its sandbox could not start). Never the
# student's doing, so never a verdict on their work: the instructor regrades.
ENVIRONMENT = "environment"


@dataclass
class ItemResult:
    item: Item
    status: str
    score: float
    message: str = ""

    @property
    def lost(self) -> float:
        return self.item.points - self.score


def checked_rubric() -> Rubric:
    rubric = load_rubric()
    verify(rubric, set(load_checks()))
    return rubric


def run_check(ctx: GradingContext, item: Item) -> str | None:
    """Run one item's check; returns an optional note, raises CheckFailed/Pending."""
    return load_checks()[item.check](ctx, item.target)


def internal_error(exc: BaseException) -> str:
    return (
        f"The grader could not finish this check ({type(exc).__name__}: {str(exc)[:200]}). "
        "This is a problem in the grader or an unusual file, not a verdict on your work: "
        "tell your instructor, and include this message."
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
    if isinstance(outcome, Pending):
        return ItemResult(item, PENDING, 0.0, str(outcome))
    return ItemResult(item, ERROR, 0.0, internal_error(outcome))


def evaluate(ctx: GradingContext, item: Item) -> ItemResult:
    try:
        note = run_check(ctx, item)
    except Exception as exc:  # every outcome becomes a result; none escapes
        return result_for(item, exc)
    return result_for(item, None, note)


def manual_result(item: Item, manual: dict[str, float] | None) -> ItemResult:
    if manual is not None and item.id in manual:
        return ItemResult(item, GRADED, manual[item.id], "graded by hand")
    return ItemResult(
        item, PENDING, 0.0, "graded by hand from the short-answer file (not graded yet)"
    )


def grade(ctx: GradingContext, manual: dict[str, float] | None = None) -> list[ItemResult]:
    """Every rubric item's result, in rubric order."""
    rubric = checked_rubric()
    ctx.prefetch()
    return [
        manual_result(item, manual) if item.kind == "manual" else evaluate(ctx, item)
        for item in rubric.items
    ]
