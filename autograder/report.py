"""From item results to what people read: the summary table and Gradescope's results.json.

results.json follows Gradescope's autograder specification (the specs page of
gradescope/autograder_samples): a top-level `score` (which overrides the tests'
total), tests with `score`/`max_score`/`status` ("passed" or "failed"), `output`
with `output_format`, and `visibility`. Gradescope has no "pending": a test with a
score below its maximum shows as failed, so an item not graded yet (a `--live`
probe in an offline run, an environment failure) is written as an informational
test with no score and no status; so is an item the grader did not finish (not
graded, to rerun). An item skipped because it depends on another file's mistake
keeps its points and shows as passed, its output saying what to fix first. The
written answers are Gradescope questions graded by hand, so a hand-graded item
appears among the tests only once a grade was merged (--manual-grades): the
autograder's maximum is its automatic points.
"""

from __future__ import annotations

import json
from pathlib import Path

from autograder.engine import (
    ENVIRONMENT,
    ERROR,
    FAILED,
    GRADED,
    NOT_GRADED,
    PASSED,
    PENDING,
    SKIPPED,
    UNDECIDED,
    ItemResult,
)
from autograder.rubric import Rubric


def question_scores(rubric: Rubric, results: list[ItemResult]) -> dict[str, dict[str, float]]:
    scores = {q: {"score": 0.0, "max_score": float(rubric.maximum(q))} for q in rubric.questions}
    for result in results:
        scores[result.item.question]["score"] += result.score
    return scores


def total(results: list[ItemResult]) -> float:
    return sum(r.score for r in results)


def _pending_points(results: list[ItemResult], question: str | None = None) -> float:
    """Points not decided yet: hand grading, live probes, checks to grade again."""
    return sum(
        r.item.points
        for r in results
        if r.status in UNDECIDED and (question is None or r.item.question == question)
    )


def _points(value: float) -> str:
    return f"{value:g}"


def _grouped(results: list[ItemResult]) -> list[str]:
    """One entry per distinct message: one cause often costs several items."""
    groups: dict[str, list[ItemResult]] = {}
    for result in results:
        groups.setdefault(result.message, []).append(result)
    lines = []
    for message, members in groups.items():
        points = sum(r.lost for r in members)
        questions = ", ".join(dict.fromkeys(r.item.question for r in members))
        label = f"{questions} -{_points(points)}" if points else questions
        lines.append(f"- [{label}] {members[0].item.title}")
        lines += [f"  [also] {r.item.title}" for r in members[1:]]
        lines += [f"    {line}" for line in message.splitlines()]
    return lines


def summary_text(rubric: Rubric, results: list[ItemResult], submission: str = "") -> str:
    scores = question_scores(rubric, results)
    lines = []
    if submission:
        lines.append(f"Submission: {submission}")
    lines += [
        f"{'Question':<10}{'Points':>8}{'Max':>6}  Pending",
        f"{'-' * 10}{'-' * 8}{'-' * 6}  {'-' * 7}",
    ]
    for question, score in scores.items():
        pending = _pending_points(results, question)
        lines.append(
            f"{question:<10}{_points(score['score']):>8}{_points(score['max_score']):>6}  "
            + (_points(pending) if pending else "")
        )
    lines.append(f"{'Total':<10}{_points(total(results)):>8}{_points(rubric.total):>6}  ")
    environment = [r for r in results if r.status == ENVIRONMENT]
    if environment:
        lines += [
            "",
            f"NOT GRADED ({_points(sum(r.item.points for r in environment))} points): the "
            "grading machine failed. Nothing here is about your work; grade again.",
        ]
        lines += [f"- [{r.item.question}] {r.item.title}: {r.message}" for r in environment]
    lost = [r for r in results if r.status == FAILED and r.item.points > 0]
    gates = [r for r in results if r.status == FAILED and r.item.points == 0]
    if lost:
        lines += ["", "What to fix (points lost):"]
        lines += _grouped(lost)
    if gates:
        lines += ["", "Also needed (no points by themselves):"]
        lines += _grouped(gates)
    skipped = [r for r in results if r.status == SKIPPED]
    if skipped:
        lines += ["", "Checked once the file they depend on is fixed (no points lost):"]
        lines += _grouped(skipped)
    unfinished = [r for r in results if r.status in (NOT_GRADED, ERROR)]
    if unfinished:
        lines += ["", "Not graded: the grader did not finish these (no points lost, to rerun):"]
        lines += _grouped(unfinished)
    pending = [r for r in results if r.status == PENDING]
    if pending:
        lines += ["", f"Pending ({_points(_pending_points(results))} points not awarded yet):"]
        for result in pending:
            lines.append(
                f"- [{result.item.question} {_points(result.item.points)}] {result.item.title}: "
                f"{result.message}"
            )
    if not lost and not gates and not environment and not unfinished:
        lines += ["", "Every automated check passes."]
    return "\n".join(lines)


def _gradescope_test(result: ItemResult) -> dict:
    test = {
        "name": result.item.title,
        "number": result.item.id,
        "output": result.message,
        "visibility": "visible",
        "tags": [result.item.question, result.item.kind],
    }
    if result.status == PENDING:
        test["name"] += " (pending)"
        test["output"] = f"PENDING, not graded yet: {result.message}"
    elif result.status in (ENVIRONMENT, NOT_GRADED, ERROR):
        test["name"] += " (not graded)"
    else:
        test["score"] = result.score
        test["max_score"] = result.item.points
        # A skipped item keeps its points; its output says which file to fix first.
        test["status"] = "passed" if result.status in (PASSED, GRADED, SKIPPED) else "failed"
    return test


def gradescope_tests(results: list[ItemResult]) -> list[dict]:
    """The tests Gradescope shows: automatic items, and hand grades once merged."""
    shown = [r for r in results if r.item.kind != "manual" or r.status == GRADED]
    return [_gradescope_test(result) for result in shown]


def results_json(
    rubric: Rubric,
    results: list[ItemResult],
    submission: str = "",
    extra: dict | None = None,
    preamble: str = "",
) -> dict:
    """Gradescope's results.json; per-question totals (of all 100 points) in extra_data."""
    automatic = [r for r in results if r.item.kind != "manual"]
    written = [r for r in results if r.item.kind == "manual"]
    summary = summary_text(rubric, results)
    output = (f"{preamble}\n\n" if preamble else "") + "```\n" + summary + "\n```"
    if any(r.status != GRADED for r in written):
        output += (
            f"\n\nThe written answers ({_points(sum(r.item.points for r in written))} points: "
            + ", ".join(dict.fromkeys(r.item.question for r in written))
            + ") are graded by hand, apart from this autograder."
        )
    extra_data = {
        "questions": question_scores(rubric, results),
        "pending": [r.item.id for r in results if r.status == PENDING],
        "not_graded": [r.item.id for r in results if r.status in (NOT_GRADED, ERROR)],
        "statuses": {r.item.id: r.status for r in results},
        "environment_errors": [r.item.id for r in results if r.status == ENVIRONMENT],
        "autograder_max": sum(r.item.points for r in automatic),
        "submission": submission,
        **(extra or {}),
    }
    return {
        "score": total([r for r in results if r.item.kind != "manual" or r.status == GRADED]),
        "output": output,
        "output_format": "md",
        "test_output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": gradescope_tests(results),
        "extra_data": extra_data,
    }


def write_results_json(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
