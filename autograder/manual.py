"""Hand-given points for the written questions, read from a CSV, so that none is lost.

Two shapes are accepted:
  - the grading sheet the grader writes (one row per submission: submission,
    name, student_id, Q2_answer, Q2_points, ...), with the *_points filled in.
    Rows are keyed by the `submission` column (the submission's folder name)
    and by nothing else: a row applies to its own submission only;
  - a short one for grading a single submission: rows of `question,points`.

A blank points cell means "not graded yet" (the item stays pending). A cell
that cannot be used (not a number, "3,5", more than the question's points, a
row whose submission is unknown or repeated) is reported on its own with its
line and column and changes nothing else: that item stays pending, every
other cell still counts. Only a file that is not a grading sheet at all is an
error.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from autograder.rubric import Item, Rubric

SUBMISSION_COLUMN = "submission"


class ManualGradesError(ValueError):
    """The CSV is not a grading sheet at all; the message says why."""


@dataclass(frozen=True)
class CellProblem:
    line: int  # the line of the CSV file (the header is line 1)
    column: str
    value: str
    reason: str
    submission: str = ""

    def __str__(self) -> str:
        if not self.line:  # about the sheet as a whole, not one of its cells
            return f"{self.column} {self.value!r} {self.reason}"
        who = f" ({self.submission})" if self.submission else ""
        return (
            f"line {self.line}{who}, column {self.column}: {self.value!r} {self.reason}; "
            "nothing was taken from this cell (the item stays pending)"
        )


@dataclass
class ManualGrades:
    path: Path
    by_submission: dict[str, dict[str, float]] = field(default_factory=dict)
    single: dict[str, float] | None = None  # the short shape: for one submission only
    problems: list[CellProblem] = field(default_factory=list)

    def for_submission(self, submission: str) -> dict[str, float]:
        """{manual item id: points} of this submission (empty when it has no row)."""
        if self.single is not None:
            return dict(self.single)
        return dict(self.by_submission.get(submission, {}))

    def unknown_submissions(self, known: set[str]) -> list[str]:
        """Sheet rows whose submission is not one of `known` (a typo, or another class)."""
        return sorted(set(self.by_submission) - known)


def _manual_items(rubric: Rubric) -> dict[str, Item]:
    return {item.question: item for item in rubric.items if item.kind == "manual"}


def _points(raw: str, item: Item) -> tuple[float | None, str | None]:
    """(points, None), (None, None) for a blank cell, or (None, why it cannot be used)."""
    raw = (raw or "").strip()
    if not raw:
        return None, None
    try:
        value = float(raw)
    except ValueError:
        hint = f" (write {raw.replace(',', '.')})" if raw.count(",") == 1 else ""
        return None, f"is not a number{hint}"
    if not math.isfinite(value):
        return None, "is not a number of points"
    if value < 0:
        return None, "is below 0"
    if value > item.points:
        return None, f"is more than {item.question}'s {item.points:g} points"
    return value, None


def read_manual_grades(path: Path, rubric: Rubric) -> ManualGrades:
    """Every usable hand grade in the CSV, and a problem for every cell that is not."""
    path = Path(path)
    items = _manual_items(rubric)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        rows = list(reader)
    grades = ManualGrades(path)
    if {"question", "points"} <= set(header):
        grades.single = _short_shape(rows, items, grades.problems)
        return grades
    point_columns = [f"{question}_points" for question in items]
    if not set(point_columns) & set(header):
        raise ManualGradesError(
            f"{path} is not a grading sheet: it needs the columns "
            f"{SUBMISSION_COLUMN}, {', '.join(point_columns)} (the sheet the grader writes), "
            "or `question,points` for a single submission"
        )
    if SUBMISSION_COLUMN not in header:
        raise ManualGradesError(
            f"{path} has points but no `{SUBMISSION_COLUMN}` column: without it no row can be "
            "matched to its submission. Fill in the sheet the grader writes."
        )
    lines: dict[str, list[int]] = {}
    for line, row in enumerate(rows, start=2):
        lines.setdefault((row.get(SUBMISSION_COLUMN) or "").strip(), []).append(line)
    for line, row in enumerate(rows, start=2):
        submission = (row.get(SUBMISSION_COLUMN) or "").strip()
        cells = {question: (row.get(f"{question}_points") or "").strip() for question in items}
        given = {question: raw for question, raw in cells.items() if raw}
        if not given:
            continue
        if not submission:
            grades.problems.append(
                CellProblem(line, SUBMISSION_COLUMN, "", "is empty, so the row's points belong "
                "to no submission")
            )  # fmt: skip
            continue
        if len(lines[submission]) > 1:
            others = ", ".join(str(n) for n in lines[submission] if n != line)
            grades.problems.append(
                CellProblem(line, SUBMISSION_COLUMN, submission, f"also has line {others}: "
                "neither row is used until one is removed", submission)
            )  # fmt: skip
            continue
        points = grades.by_submission.setdefault(submission, {})
        for question, raw in given.items():
            value, problem = _points(raw, items[question])
            if problem:
                column = f"{question}_points"
                grades.problems.append(CellProblem(line, column, raw, problem, submission))
            elif value is not None:
                points[items[question].id] = value
    return grades


def _short_shape(rows: list[dict], items: dict[str, Item], problems: list) -> dict[str, float]:
    single: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        question = (row.get("question") or "").strip().upper()
        if question not in items:
            problems.append(
                CellProblem(line, "question", row.get("question") or "",
                            f"is not a hand-graded question ({', '.join(items)})")
            )  # fmt: skip
            continue
        value, problem = _points(row.get("points") or "", items[question])
        if problem:
            problems.append(CellProblem(line, "points", row.get("points") or "", problem))
        elif value is not None:
            single[items[question].id] = value
    return single


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file (so writing one would overwrite the other)."""
    try:
        first, second = Path(first), Path(second)
        if first.exists() and second.exists():
            return first.samefile(second)
        return first.resolve() == second.resolve()
    except OSError:
        return False
