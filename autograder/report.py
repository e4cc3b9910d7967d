"""From item results to what people read: the summary table and Gradescope's results.json."""

from __future__ import annotations

import json
from pathlib import Path

from autograder.engine import (
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
    if not lost and not gates and not unfinished:
        lines += ["", "Every automated check passes."]
    return "\n".join(lines)


def results_json(
    rubric: Rubric,
    results: list[ItemResult],
    submission: str = "",
    extra: dict | None = None,
) -> dict:
    """Gradescope's results.json; per-question totals in extra_data.questions."""
    tests = []
    for result in results:
        status_word = {
            PASSED: "passed",
            GRADED: "passed",
            SKIPPED: "passed",  # its points are kept; the output says what to fix first
            FAILED: "failed",
            ERROR: "failed",
            PENDING: "pending",
            NOT_GRADED: "pending",
        }[result.status]
        output = result.message
        if result.status in (PENDING, NOT_GRADED):
            output = f"{result.status.replace('_', ' ').upper()}: {result.message}"
        tests.append(
            {
                "name": result.item.title,
                "number": result.item.id,
                "score": result.score,
                "max_score": result.item.points,
                "output": output,
                "visibility": "visible",
                "tags": [result.item.question, result.item.kind],
                # Gradescope knows passed/failed; "pending" is ours, also in extra_data.
                **({"status": status_word} if status_word != "pending" else {}),
            }
        )
    extra_data = {
        "questions": question_scores(rubric, results),
        "pending": [r.item.id for r in results if r.status == PENDING],
        "not_graded": [r.item.id for r in results if r.status in (NOT_GRADED, ERROR)],
        "statuses": {r.item.id: r.status for r in results},
        "submission": submission,
        **(extra or {}),
    }
    return {
        "score": total(results),
        "output": summary_text(rubric, results),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": extra_data,
    }


def write_results_json(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
