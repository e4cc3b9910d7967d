"""The README tells the truth: its paths exist, its make targets and commands work,
and its scoring table is the autograder's rubric."""

import re
import subprocess

import pytest

from autograder import assignment
from autograder.rubric import QUESTION_MAXIMA
from tests.support.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
# The instructor and developer documents moved out of the README are held to the same truth.
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCED = re.compile(r"^```(?:bash)?\n(.*?)^```", re.S | re.M)
TOP_LEVEL = {path.name for path in REPO_ROOT.iterdir() if not path.name.startswith(".git")}
# Made by a command the README shows, so absent from a fresh clone.
GENERATED = ("build/", "grades-output/", ".venv/")
# Made by students for the optional "Going further" exercises.
STUDENT_MADE = ("deployment/extensions/",)


def mentioned_paths() -> set[str]:
    """Repository paths in the documents' code spans: words starting with a top-level entry."""
    paths = set()
    texts = [document.read_text() for document in DOCUMENTS]
    spans = [span for text in texts for span in CODE_SPAN.findall(text) + FENCED.findall(text)]
    for span in spans:
        for word in re.split(r"[\s\"'=(),]+", span):
            word = word.rstrip(".:;").split(":", 1)[0]  # `file.py:function` names a file
            first = word.split("/", 1)[0]
            if "/" not in word and "." not in word:
                continue
            if first in TOP_LEVEL and not re.search(r"[<>*${}]|\.\.\.", word):
                paths.add(word)
    # Paths a command makes, and the files students write, are checked elsewhere.
    return {
        p
        for p in paths
        if not p.startswith(GENERATED + STUDENT_MADE) and p not in assignment.STUDENT_FILES
    }


def test_the_readme_mentions_many_paths():
    assert len(mentioned_paths()) > 30


@pytest.mark.parametrize("path", sorted(mentioned_paths()))
def test_every_mentioned_path_exists(path):
    assert (REPO_ROOT / path).exists(), f"a document mentions {path}, which does not exist"


def make_targets() -> set[str]:
    makefile = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))


def mentioned_targets() -> set[str]:
    texts = [document.read_text() for document in DOCUMENTS]
    spans = [span for text in texts for span in CODE_SPAN.findall(text) + FENCED.findall(text)]
    return {target for span in spans for target in re.findall(r"\bmake ([a-z][a-z-]*)", span)}


def test_the_readme_mentions_the_main_targets():
    assert {"run", "test", "serve", "grade", "handout", "bench"} <= mentioned_targets()


@pytest.mark.parametrize("target", sorted(mentioned_targets()))
def test_every_make_target_exists(target):
    assert target in make_targets()


def test_the_two_commands_are_at_the_top():
    quickstart = README[README.index("## Quickstart") : README.index("## Contents")]
    assert "make run" in quickstart
    assert "make test" in quickstart
    assert "pytest autograder" in quickstart


def scoring_table() -> dict[str, int]:
    rows = re.findall(r"^\| (Q\d) \| [^|]+ \| (\d+) \|$", README, re.M)
    return {question: int(points) for question, points in rows}


def test_scoring_table_sums_to_100_and_matches_the_rubric():
    table = scoring_table()
    assert sum(table.values()) == 100
    assert table == dict(QUESTION_MAXIMA)
    assert "| **total** | | **100** |" in README


def test_every_question_is_asked():
    for question in QUESTION_MAXIMA:
        assert f"**{question} (" in README


def test_the_short_answer_template_has_one_heading_per_written_question():
    template = (REPO_ROOT / assignment.SHORT_ANSWER_FILE).read_text()
    headings = re.findall(r"^## (Q\d)\s*$", template, re.M)
    assert tuple(headings) == assignment.WRITTEN_QUESTIONS
    assert "Name:" in template
    assert "Student ID:" in template


def test_contents_links_point_at_headings():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", README, re.M)
    }
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links
    assert [link for link in links if link not in anchors] == []


def run(command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("make help", "make run"),
        (".venv/bin/python -m autograder batch --help", "--jobs"),
        (".venv/bin/python -m tools.handout --help", "--out"),
        (".venv/bin/python -m classifier.prefetch --help", "catalog"),
    ],
)
def test_offline_commands_run(command, expected):
    assert command.split()[0] in README or command in README or command.startswith(".venv")
    result = run(command)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.slow
def test_grading_the_repo_root_explains_every_missing_file():
    result = run(".venv/bin/python -m pytest autograder -q -p no:cacheprovider", timeout=300)
    assert "autograder summary" in result.stdout
    assert "Traceback" not in result.stdout
    assert "how to fix: create deployment/cloudbuild_backend_v1.yaml" in result.stdout


@pytest.mark.slow
def test_grading_the_solution_gives_every_automated_point():
    result = run(
        ".venv/bin/python -m pytest autograder -q -p no:cacheprovider --submission solution",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Every automated check passes." in result.stdout
