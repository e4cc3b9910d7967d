"""The README tells the truth: its paths exist, its make targets and commands work,
and its scoring table is the autograder's rubric.

It runs in the master repository and in the student release alike (the
release's README is the master's without its master-only parts).
"""

import re
import shutil
import subprocess

import pytest

from autograder import assignment
from autograder.rubric import QUESTION_MAXIMA
from tests.support.servers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
# The documents that stay with the master repository are held to the same truth.
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
    assert len(mentioned_paths()) > 20


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
    assert {"run", "test", "serve", "grade", "setup", "clean"} <= mentioned_targets()


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


def section(heading: str) -> str:
    """The README's text under `heading`, up to the next heading of the same level."""
    level = heading.split(" ", 1)[0]
    start = README.index(heading + "\n")
    end = README.find(f"\n{level} ", start + len(heading))
    return README[start : end if end != -1 else None]


def test_the_sections_come_in_the_order_a_student_needs_them():
    headings = re.findall(r"^## (.+)$", README, re.M)
    student = [
        "Quickstart",
        "Contents",
        "What you build, and why",
        "Set-up",
        "Running the app locally",
        "Questions and scoring",
        "Deploying to Google Cloud",
        "Checking your work with the autograder",
        "Troubleshooting",
    ]
    assert headings[: len(student)] == student


def test_set_up_states_what_it_downloads_and_stores_in_each_case():
    setup = section("## Set-up")
    rows = re.findall(r"^\| ([^|]+) \| ([^|]*GB) \| ([^|]*GB) \|$", setup, re.M)
    assert [row[0] for row in rows] == [
        "the PyTorch CPU index (when it answers)",
        "the default index (the fallback)",
    ]
    assert "measured" in setup


def copy_loop() -> str:
    [loop] = [block for block in FENCED.findall(README) if " cp " in block]
    return loop


def test_the_copy_loop_fills_in_missing_files_and_never_overwrites_one(tmp_path):
    (tmp_path / "deployment").mkdir()
    for template in sorted(set(assignment.TEMPLATES.values())):
        shutil.copy2(REPO_ROOT / template, tmp_path / template)
    script = tmp_path / "loop.sh"
    script.write_text("set -eu\n" + copy_loop())
    run_loop = ["bash", str(script)]
    subprocess.run(run_loop, cwd=tmp_path, check=True, timeout=30)
    for logical, template in assignment.TEMPLATES.items():
        assert (tmp_path / logical).read_text() == (REPO_ROOT / template).read_text(), logical
    finished = tmp_path / assignment.cloudbuild_file("backend_v1")
    finished.write_text("steps: []  # a student's work\n")
    (tmp_path / assignment.deploy_script("frontend_v2")).unlink()
    subprocess.run(run_loop, cwd=tmp_path, check=True, timeout=30)
    assert finished.read_text() == "steps: []  # a student's work\n"
    assert (tmp_path / assignment.deploy_script("frontend_v2")).is_file()


def run(command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


OFFLINE_COMMANDS = [
    ("make help", "make run"),
    (".venv/bin/python -m autograder batch --help", "--jobs"),
    (".venv/bin/python -m classifier.prefetch --help", "catalog"),
]
if (REPO_ROOT / "tools" / "handout.py").is_file():  # the master repository's own tool
    OFFLINE_COMMANDS.append((".venv/bin/python -m tools.handout --help", "--out"))


@pytest.mark.parametrize(("command", "expected"), OFFLINE_COMMANDS)
def test_offline_commands_run(command, expected):
    result = run(command)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.slow
def test_grading_the_repo_root_explains_every_student_file():
    """In the master the student files are missing; in the release they are templates."""
    result = run(".venv/bin/python -m pytest autograder -q -p no:cacheprovider", timeout=300)
    assert "autograder summary" in result.stdout
    assert "Traceback" not in result.stdout
    config = assignment.cloudbuild_file("backend_v1")
    if (REPO_ROOT / config).exists():
        assert "this is still the untouched template" in result.stdout
    else:
        assert f"how to fix: create {config}" in result.stdout
