"""The short-answer file: who wrote it, and the answer under each `## Q<n>` heading.

The machine only judges whether each question is answered (not the template
text); the points come from the instructor's grading sheet.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignment

PLACEHOLDER = "_Write your answer here._"
_HEADING = re.compile(r"^\s{0,3}#{1,3}\s*(Q\d+)\b.*$", re.IGNORECASE)
_FIELD = re.compile(r"^\s*(?:\*\*)?(name|student id)(?:\*\*)?\s*:\s*(.*?)\s*$", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass
class ShortAnswers:
    name: str = ""
    student_id: str = ""
    answers: dict[str, str] = field(default_factory=dict)  # question -> answer text ("" if none)
    headings: set[str] = field(default_factory=set)  # the Q<n> headings the file has


def _field_value(value: str) -> str:
    return "" if assignment.find_placeholders(value) else value.strip()


def parse(text: str) -> ShortAnswers:
    result = ShortAnswers()
    current: str | None = None
    bodies: dict[str, list[str]] = {}
    for line in _COMMENT.sub("", text).splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(1).upper()
            result.headings.add(current)
            bodies.setdefault(current, [])
            continue
        field_match = _FIELD.match(line) if current is None else None
        if field_match:
            value = _field_value(field_match.group(2))
            if field_match.group(1).lower() == "name":
                result.name = value
            else:
                result.student_id = value
            continue
        if current is not None and not line.lstrip().startswith(">"):
            bodies[current].append(line)
    for question in assignment.WRITTEN_QUESTIONS:
        body = "\n".join(bodies.get(question, [])).replace(PLACEHOLDER, "").strip()
        result.answers[question] = body
    return result


def unanswered(parsed: ShortAnswers, template: ShortAnswers | None) -> list[str]:
    """Written questions with no answer, or with the template's own text left in."""
    missing = []
    for question in assignment.WRITTEN_QUESTIONS:
        answer = normalize(parsed.answers.get(question, ""))
        template_text = normalize(template.answers.get(question, "")) if template else ""
        if not answer or (template_text and answer == template_text):
            missing.append(question)
    return missing


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[*_`>#]", " ", text).lower().split())


SHEET_FIELDS = ("submission", "name", "student_id")


def sheet_header() -> list[str]:
    header = list(SHEET_FIELDS)
    for question in assignment.WRITTEN_QUESTIONS:
        header += [f"{question}_answer", f"{question}_points"]
    return [*header, "comment"]


def sheet_row(
    submission: str, parsed: ShortAnswers | None, points: dict[str, float] | None = None
) -> dict[str, str]:
    """One submission's row; `points` ({"Q2.written": 3, ...}) fills hand grades already given."""
    row = {"submission": submission, "name": "", "student_id": "", "comment": ""}
    for question in assignment.WRITTEN_QUESTIONS:
        row[f"{question}_answer"] = parsed.answers.get(question, "") if parsed else ""
        given = (points or {}).get(f"{question}.written")
        row[f"{question}_points"] = "" if given is None else f"{given:g}"
    if parsed:
        row["name"], row["student_id"] = parsed.name, parsed.student_id
    return row


def write_sheet(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=sheet_header())
        writer.writeheader()
        writer.writerows(rows)
