"""The student release `make handout` generates: what it holds, what it never names,
and the README it gives students.

Most tests check the generated tree itself, from this master repository. The
`release` test (`make test-release`, which CI runs) unzips the release into an
empty folder and runs the release's own `make test` there, as a student would.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import assignment
from autograder.rubric import QUESTION_MAXIMA
from tests.support.servers import REPO_ROOT
from tools import handout

URL = re.compile(r"[a-z][a-z+.-]*://\S+")
# The release's whole `make test`: a fresh .venv (uv's cache makes it minutes, not a
# download of gigabytes), then the released suite.
RELEASE_TEST_TIMEOUT = 45 * 60
# Distinctive phrases of the reasoning the written questions ask for (as
# solution/answers.md, docs/design/ and docs/images.md put it): no document,
# template or file the questions send students to read may hold one.
ANSWERS = {
    "Q2": [
        "--cache-from",
        "|| exit 0",
        "BUILDKIT_INLINE_CACHE",
        "a few kilobytes",
        "rarely change",
    ],
    "Q4": ["never download", "downloads at start", "download at start"],
    "Q7": [
        "session affinity",
        "process-wide",
        "lost and inconsistent",
        "right for one instance",
        "serves a different caller",
    ],
    "Q8": ["scales, fails", "fails and deploys", "its own instances", "takes the others down"],
}
# The files the questions send students to read, besides every document and template.
READ_FOR_ANSWERS = [
    "backend_v1/app.py",
    "backend_v2/app.py",
    "webservice/sessions.py",
    "webservice/model_choice.py",
    "classifier/prefetch.py",
    "v3_gateway/__init__.py",
    "v3_gateway/app.py",
    "v3_gateway/gunicorn.conf.py",
    "deployment/Dockerfile.backend-base",
    "deployment/Dockerfile.frontend-base",
    "backend_v1/Dockerfile",
    "backend_v2/Dockerfile",
    "procfiles/v2",
    "procfiles/v3",
]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return handout.build_release(REPO_ROOT, tmp_path_factory.mktemp("build") / "handout")


def text_files(root):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_no_released_file_names_an_instructor_only_path(release):
    named = []
    for path, text in text_files(release):
        for number, line in enumerate(URL.sub("", text).splitlines(), start=1):
            if re.search(r"solution/|docs/|DEVELOPERS\.md|MASTER ONLY", line):
                named.append(f"{path.relative_to(release)}:{number}: {line.strip()}")
    assert named == []


def test_no_instructor_file_or_section_is_released(release):
    for left_out in ("solution", "docs", "DEVELOPERS.md", "bench", ".ci", "tools/handout.py"):
        assert not (release / left_out).exists(), left_out
    for path, text in text_files(release):
        if path.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", text, re.M)
            assert not [h for h in headings if re.search(r"instructor|reference solution", h, re.I)]


def test_the_release_refuses_a_file_that_names_an_instructor_path(tmp_path):
    source = tmp_path / "master"
    (source / "deployment").mkdir(parents=True)
    for template in set(assignment.TEMPLATES.values()) | {assignment.SHORT_ANSWER_FILE}:
        (source / template).write_text((REPO_ROOT / template).read_text())
    (source / "notes.py").write_text("# the answers are in solution/answers.md\n")
    with pytest.raises(SystemExit, match=r"notes\.py: solution/"):
        handout.build_release(source, tmp_path / "handout")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a\n<!-- BEGIN MASTER ONLY -->\nb\n<!-- END MASTER ONLY -->\nc\n", "a\nc\n"),
        ("a\n# BEGIN MASTER ONLY\nb\n# END MASTER ONLY\n", "a\n"),
        ("no block\n", "no block\n"),
    ],
)
def test_master_only_blocks_are_taken_out(text, kept):
    assert handout.strip_master_only(text, "f") == kept


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# BEGIN MASTER ONLY\nb\n", "never ends"),
        ("b\n# END MASTER ONLY\n", "never began"),
        ("# BEGIN MASTER ONLY\n# BEGIN MASTER ONLY\n", "inside another"),
    ],
)
def test_an_unbalanced_master_only_block_stops_the_build(text, problem):
    with pytest.raises(SystemExit, match=problem):
        handout.strip_master_only(text, "f")


def test_the_release_readme_keeps_the_scoring_table_and_both_quickstart_commands(release):
    readme = (release / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart") : readme.index("## Contents")]
    for command in ("make run", "make test", "pytest autograder"):
        assert command in quickstart
    rows = re.findall(r"^\| (Q\d) \| [^|]+ \| (\d+) \|$", readme, re.M)
    assert {q: int(points) for q, points in rows} == dict(QUESTION_MAXIMA)
    assert "| **total** | | **100** |" in readme
    for question in QUESTION_MAXIMA:
        assert f"**{question} (" in readme
    assert readme.count("## ") >= 9
    assert "For developers and instructors" not in readme
    assert "\n\n\n" not in readme  # no gap where a master-only block was


def test_the_release_readme_is_the_master_readme_without_its_master_only_blocks(release):
    master = (REPO_ROOT / "README.md").read_text()
    assert "BEGIN MASTER ONLY" in master
    expected = re.sub(r"\n{3,}", "\n\n", handout.strip_master_only(master, "README.md"))
    assert (release / "README.md").read_text() == expected


def documents_and_templates(root):
    for path, text in text_files(root):
        relative = path.relative_to(root).as_posix()
        if path.suffix == ".md" or "template" in path.name or relative in READ_FOR_ANSWERS:
            yield relative, text


def test_no_released_document_or_read_file_holds_an_answer(release):
    found = [
        f"{relative}: {question} {phrase!r}"
        for relative, text in documents_and_templates(release)
        for question, phrases in ANSWERS.items()
        for phrase in phrases
        if phrase in text
    ]
    assert found == []
    assert len(list(documents_and_templates(release))) > 15


# The old README's sections that answered written questions or spoke to instructors:
# old heading -> (the document under docs/ that holds it now, its heading there).
MOVED_SECTIONS = {
    "How the images are built": ("images.md", "## What each image holds"),  # Q2, Q4
    "How big the images are, and why CPU-only torch": (
        "images.md",
        "## Sizes, and why CPU-only torch",
    ),
    "For instructors": ("instructor-guide.md", "# Instructor guide"),
    "Rehearsing with the reference solution": (
        "instructor-guide.md",
        "## Rehearsing with the reference solution",
    ),
    "Sessions in v2": ("design/sessions.md", "# Design: sessions in v2"),  # Q7
    'No "current model" in the process': (
        "design/sessions.md",
        '## No "current model" in the process',
    ),
    "Why the local store breaks once Cloud Run runs two instances": (
        "design/sessions.md",
        "## Why the local store breaks once Cloud Run runs two instances",
    ),
    "v3: one service per model, behind an API gateway": (  # Q8
        "design/gateway.md",
        "# Design: v3, one service per model behind an API gateway",
    ),
    "Limits, and what a production setup would change": (
        "design/gateway.md",
        "## Limits, and what a production setup would change",
    ),
    "Performance": ("performance.md", "# Performance"),
}


@pytest.mark.parametrize(("section", "now"), MOVED_SECTIONS.items())
def test_each_moved_section_is_absent_from_the_release_and_held_by_the_docs(release, section, now):
    document, heading = now
    for path, text in text_files(release):
        if path.suffix == ".md":
            headings = [h.strip().lower() for h in re.findall(r"^#+ (.*)$", text, re.M)]
            assert section.lower() not in headings, path
    assert re.search(f"^{re.escape(heading)}$", (REPO_ROOT / "docs" / document).read_text(), re.M)


def test_the_answers_left_out_are_in_the_instructor_docs():
    docs = "\n".join(p.read_text() for p in (REPO_ROOT / "docs").rglob("*.md"))
    docs += (REPO_ROOT / "solution" / "answers.md").read_text()
    for phrases in ANSWERS.values():
        assert any(phrase in docs for phrase in phrases)
    for heading in ("## What each image holds", "## Why the local store breaks"):
        assert heading in docs
    assert "# Design: v3, one service per model" in docs


def test_the_released_template_has_no_finished_step_and_nothing_of_q2(release):
    import yaml

    template = (release / "deployment" / "cloudbuild_template.yaml").read_text()
    steps = yaml.safe_load(template)["steps"]
    assert steps
    assert all(step["args"] == ["FILL-ME"] for step in steps)
    assert "pull" not in template
    assert "cache-from" not in template


def test_only_the_listed_tests_are_released_and_none_reads_the_solution(release):
    released = {p.relative_to(release).as_posix() for p in (release / "tests").rglob("*.py")}
    assert released
    assert all(handout._released_test(path) for path in released)
    for path in released:
        assert "solution" not in (release / path).read_text(), path
    for left_out in ("tests/autograder", "tests/backend_v2", "tests/classifier", "tests/bench"):
        assert not (release / left_out).exists(), left_out
    for listed in handout.RELEASED_TESTS:
        assert (REPO_ROOT / listed).exists(), listed
    for path in released:  # and every test module a released one imports is released too
        text = (release / path).read_text()
        for module in re.findall(r"^from (tests(?:\.\w+)+) import", text, re.M):
            target = release / Path(*module.split("."))
            assert target.with_suffix(".py").is_file() or (target / "__init__.py").is_file(), (
                f"{path} imports {module}, which the release leaves out"
            )


def local_imports(path: Path) -> set[str]:
    """The modules of this repository's own packages that `path` imports, anywhere in it."""
    local = {entry.name for entry in REPO_ROOT.iterdir() if (entry / "__init__.py").is_file()}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in local}
    return found


def test_every_released_module_imports_only_what_is_released(release):
    """A released file that imports bench/ or solution/ breaks in the students' hands
    (make loadtest once imported the benchmarks' photos)."""
    missing = []
    for path in sorted(release.rglob("*.py")):
        for module in local_imports(path):
            target = release / Path(*module.split("."))
            if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
                missing.append(f"{path.relative_to(release)} imports {module}")
    assert missing == []


def student_environment() -> dict[str, str]:
    """This process's environment without what ties it to the master repository: its
    virtual environment, make's inherited flags and variables, pytest's own settings."""
    master_venv = str(REPO_ROOT / ".venv")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
        and not name.startswith(("PYTEST_", "MAKEOVERRIDES"))
    }
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(entry for entry in path if not entry.startswith(master_venv))
    return env


@pytest.mark.release
@pytest.mark.timeout(RELEASE_TEST_TIMEOUT)
def test_the_unzipped_release_passes_its_own_make_test(tmp_path):
    """What CI proves for every commit: the release a student downloads, unzipped into an
    empty folder with nothing else, passes the README's test command (a fresh .venv
    from `make setup`, the linters, the released tests, `make run` up to a prediction)."""
    unzip = shutil.which("unzip")
    assert unzip, "this test unzips the release as a student does: install unzip (Debian: unzip)"
    built = subprocess.run(
        [sys.executable, "-m", "tools.handout", "--out", str(tmp_path / "build")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    student = tmp_path / "student"
    student.mkdir()
    # unzip, not zipfile: it restores the scripts' executable bits, as on a student's machine.
    subprocess.run([unzip, "-q", str(tmp_path / "build" / "handout.zip")], cwd=student, check=True)
    release = student / "handout"
    assert not (release / ".venv").exists()
    log_path = tmp_path / "release-make-test.log"
    try:
        with log_path.open("w") as log:
            result = subprocess.run(
                ["make", "test"],
                cwd=release,
                env=student_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=RELEASE_TEST_TIMEOUT - 120,
            )
    finally:  # pytest keeps the last runs' folders: not several GB of .venv each
        shutil.rmtree(release / ".venv", ignore_errors=True)
    output = log_path.read_text()
    assert result.returncode == 0, f"the release's make test failed ({log_path}):\n{output[-6000:]}"
    summary = re.search(r"=+ (\d+) passed(?:, (\d+) skipped)?.* in ", output)
    assert summary, output[-3000:]
    assert int(summary[1]) > 100  # the released tests ran, not an empty collection
    assert re.search(r"^setup: ", output, re.M)  # its own .venv, made by its own Makefile
