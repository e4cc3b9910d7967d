"""Build submissions for the autograder's self-tests from solution/ and the templates.

A submission is a dict {logical student file name: text}; `write_submission`
lays it out as a repo copy (files at their paths) or a flat upload (all files
in one folder, as Gradescope delivers them).
"""

from __future__ import annotations

from pathlib import Path

from autograder import assignment

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTION = REPO_ROOT / "solution"

FILLED_ANSWERS = """# Short answers

Name: Ada Lovelace
Student ID: 20251234

## Q2

The base image changes rarely, so pulling the last one and building with
--cache-from reuses every unchanged layer.

## Q4

Cloud Run scales each service separately, so the frontend and the backend
are two services.

## Q5

Underscores are not allowed in Cloud Run service names.

## Q7

A server-side session keeps each user's model choice apart from others'.

## Q8

Cold starts load the model; min-instances keeps one instance warm.
"""


def solution_files() -> dict[str, str]:
    files = {}
    for logical in assignment.STUDENT_FILES:
        if logical == assignment.SHORT_ANSWER_FILE:
            continue
        files[logical] = (SOLUTION / Path(logical).name).read_text(encoding="utf-8")
    files[assignment.SHORT_ANSWER_FILE] = FILLED_ANSWERS
    return files


TEMPLATE_DELIVERABLES = """# Your deployed services' URLs (copy them from `gcloud run deploy`).
services:
  v1:
    back_end: FILL-ME
    front_end: FILL-ME
  v2:
    back_end: FILL-ME
    front_end: FILL-ME
"""


def template_files() -> dict[str, str]:
    """Every student file as the untouched template it starts from."""
    files = {
        logical: (REPO_ROOT / template).read_text(encoding="utf-8")
        for logical, template in assignment.TEMPLATES.items()
    }
    root_deliverables = REPO_ROOT / "deliverables.yaml"
    files["deliverables.yaml"] = (
        root_deliverables.read_text(encoding="utf-8")
        if root_deliverables.is_file()
        else TEMPLATE_DELIVERABLES
    )
    files[assignment.SHORT_ANSWER_FILE] = (REPO_ROOT / assignment.SHORT_ANSWER_FILE).read_text(
        encoding="utf-8"
    )
    return files


def replace(files: dict[str, str], logical: str, old: str, new: str, count: int = -1) -> dict:
    """A copy of `files` with `old` replaced in one file (which must contain it)."""
    text = files[logical]
    assert old in text, f"{old!r} is not in {logical}"
    changed = dict(files)
    changed[logical] = text.replace(old, new, count)
    return changed


def write_submission(root: Path, files: dict[str, str], layout: str = "repo") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for logical, text in files.items():
        target = root / (logical if layout == "repo" else Path(logical).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if target.suffix == ".sh":
            target.chmod(0o755)
    return root
