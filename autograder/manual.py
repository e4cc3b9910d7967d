"""Hand-given points for the written questions, read from a CSV.

Two shapes are accepted:
  - the grading sheet the grader writes (one row per submission: submission,
    name, student_id, Q2_answer, Q2_points, ...), with the *_points filled in;
  - a short one for a single submission: rows of `question,points`.
A blank points cell means "not graded yet" (the item stays pending).
"""

from __future__ import annotations

import csv
from pathlib import Path

from autograder.rubric import Rubric


class ManualGradesError(ValueError):
    """The CSV cannot be used as it is; the message says which row and why."""


def _manual_items(rubric: Rubric) -> dict[str, object]:
    return {item.question: item for item in rubric.items if item.kind == "manual"}


def _points(raw: str, question: str, maximum: float, where: str) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ManualGradesError(f"{where}: {question} points {raw!r} is not a number") from None
    if not 0 <= value <= maximum:
        raise ManualGradesError(f"{where}: {question} points {value:g} outside 0..{maximum:g}")
    return value


def read_manual_grades(
    path: Path, rubric: Rubric, submission: str = "", student_id: str = ""
) -> dict[str, float]:
    """{manual item id: points} for this submission (empty if its row is not there)."""
    items = _manual_items(rubric)
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    header = set(rows[0])
    if {"question", "points"} <= header:
        grades = {}
        for number, row in enumerate(rows, start=2):
            question = (row.get("question") or "").strip().upper()
            if question not in items:
                raise ManualGradesError(
                    f"{path}:{number}: {question!r} is not a hand-graded question "
                    f"({', '.join(items)})"
                )
            value = _points(row.get("points", ""), question, items[question].points, path)
            if value is not None:
                grades[items[question].id] = value
        return grades
    row = _matching_row(rows, submission, student_id)
    if row is None:
        return {}
    grades = {}
    for question, item in items.items():
        value = _points(row.get(f"{question}_points", ""), question, item.points, str(path))
        if value is not None:
            grades[item.id] = value
    return grades


def _matching_row(rows: list[dict], submission: str, student_id: str) -> dict | None:
    for key, wanted in (("submission", submission), ("student_id", student_id)):
        if wanted:
            matches = [r for r in rows if (r.get(key) or "").strip() == wanted]
            if matches:
                return matches[0]
    return rows[0] if len(rows) == 1 else None
