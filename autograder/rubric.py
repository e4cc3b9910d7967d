"""The rubric: rubric.yaml expanded into items, with its totals verified.

Verification runs whenever the rubric is loaded (the plugin loads it at
collection), so a rubric whose points drift from the published per-question
maxima stops the grader before any submission is graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from autograder import assignment

RUBRIC_FILE = Path(__file__).with_name("rubric.yaml")
# The published scoring table (README); rubric.yaml must add up to it.
QUESTION_MAXIMA = {"Q1": 46, "Q2": 12, "Q3": 12, "Q4": 3, "Q5": 2, "Q6": 12, "Q7": 8, "Q8": 5}
KINDS = ("auto", "live", "manual")
_TARGET_SETS = {"components": assignment.COMPONENTS, "versions": assignment.VERSIONS}


class RubricError(ValueError):
    """rubric.yaml is inconsistent (an instructor's mistake, not a student's)."""


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    points: float
    kind: str
    check: str | None
    target: str | None
    title: str


@dataclass(frozen=True)
class Rubric:
    questions: dict[str, dict]
    items: tuple[Item, ...]

    def by_id(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def for_question(self, question: str) -> list[Item]:
        return [item for item in self.items if item.question == question]

    def maximum(self, question: str) -> float:
        return self.questions[question]["max"]

    @property
    def total(self) -> float:
        return sum(q["max"] for q in self.questions.values())


def _expand(raw: dict) -> list[Item]:
    targets = _TARGET_SETS.get(raw.get("targets"))
    if raw.get("targets") and targets is None:
        raise RubricError(f"{raw.get('id')}: unknown targets {raw['targets']!r}")
    chosen = targets or [raw.get("target")]
    items = []
    for target in chosen:
        item_id = str(raw["id"]).replace("{target}", str(target))
        items.append(
            Item(
                id=item_id,
                question=item_id.split(".", 1)[0],
                points=float(raw["points"]),
                kind=raw.get("kind", "auto"),
                check=raw.get("check"),
                target=target,
                title=str(raw["title"]).replace("{target}", str(target)),
            )
        )
    return items


def verify(rubric: Rubric, known_checks: set[str] | None = None) -> None:
    """Raise RubricError unless every total matches and every item is well formed."""
    problems = []
    if {q: v["max"] for q, v in rubric.questions.items()} != QUESTION_MAXIMA:
        problems.append(f"question maxima {rubric.questions} differ from {QUESTION_MAXIMA}")
    ids = [item.id for item in rubric.items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"duplicate item ids: {duplicates}")
    for question, maximum in QUESTION_MAXIMA.items():
        total = sum(item.points for item in rubric.for_question(question))
        if total != maximum:
            problems.append(f"{question}: items add up to {total:g}, the table says {maximum}")
    for item in rubric.items:
        if item.question not in QUESTION_MAXIMA:
            problems.append(f"{item.id}: unknown question {item.question}")
        if item.kind not in KINDS:
            problems.append(f"{item.id}: unknown kind {item.kind!r}")
        if item.kind != "manual" and not item.check:
            problems.append(f"{item.id}: an {item.kind} item needs a `check`")
        if known_checks is not None and item.check and item.check not in known_checks:
            problems.append(f"{item.id}: no check named {item.check!r}")
        if item.points < 0:
            problems.append(f"{item.id}: negative points")
    if sum(QUESTION_MAXIMA.values()) != 100:
        problems.append("the question maxima do not add up to 100")
    if problems:
        raise RubricError("rubric.yaml is inconsistent:\n  " + "\n  ".join(problems))


def parse_rubric(text: str) -> Rubric:
    data = yaml.safe_load(text)
    items = tuple(item for raw in data["items"] for item in _expand(raw))
    return Rubric(questions=dict(data["questions"]), items=items)


@cache
def load_rubric(path: Path = RUBRIC_FILE) -> Rubric:
    rubric = parse_rubric(path.read_text(encoding="utf-8"))
    verify(rubric)
    return rubric
