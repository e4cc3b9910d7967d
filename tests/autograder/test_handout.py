"""`make handout`: the student release and Gradescope zip, and grading from inside them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile

import pytest

from autograder import assignment
from tests.autograder.builders import REPO_ROOT, solution_files, write_submission
from tools import handout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    assert handout.main(["--out", str(out)]) == 0
    return out


def test_the_release_has_no_instructor_file_and_every_student_file_as_template(built):
    release = built / "handout"
    assert not (release / "solution").exists()
    assert not (release / "tests" / "autograder").exists()
    for path in release.rglob("*.py"):
        if path.is_relative_to(release / "tests"):
            assert '"solution/' not in path.read_text(), path
    solution_texts = {p.read_text() for p in (REPO_ROOT / "solution").rglob("*") if p.is_file()}
    for logical in assignment.STUDENT_FILES:
        text = (release / logical).read_text()
        assert text not in solution_texts, logical
        assert assignment.find_placeholders(text) or logical == assignment.SHORT_ANSWER_FILE
    with zipfile.ZipFile(built / "handout.zip") as bundle:
        assert not [n for n in bundle.namelist() if n.startswith("handout/solution/")]


def test_the_gradescope_zip_has_setup_run_autograder_and_the_grader(built):
    with zipfile.ZipFile(built / "gradescope_autograder.zip") as bundle:
        names = set(bundle.namelist())
        for script in ("setup.sh", "run_autograder"):
            mode = bundle.getinfo(script).external_attr >> 16
            assert mode & stat.S_IXUSR, script
            checked = subprocess.run(
                ["bash", "-n"], input=bundle.read(script), capture_output=True, check=False
            )
            assert checked.returncode == 0, checked.stderr
        run_autograder = bundle.read("run_autograder").decode()
    assert "--results-json /autograder/results/results.json" in run_autograder
    # Gradescope extracts the zip into /autograder/source: setup.sh reads
    # /autograder/source/autograder/requirements.txt, so the release is at the root.
    assert {"autograder/rubric.yaml", "autograder/conftest.py", "autograder_args"} <= names
    assert "autograder/requirements.txt" in names
    assert not [n for n in names if n.startswith(("solution/", "source/"))]


def _grade_in(release, *args, tmp_path):
    results = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "autograder", "-p", "no:cacheprovider"]  # noqa: RUF005
        + ["--no-gcloud", "--results-json", str(results), *map(str, args)],
        cwd=release,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return json.loads(results.read_text())


def test_from_the_release_templates_score_zero_and_the_solution_full_marks(built, tmp_path):
    release = built / "handout"
    templates = _grade_in(release, tmp_path=tmp_path)  # the release's own root
    assert templates["score"] == 0
    assert templates["extra_data"]["submission"] == release.name
    submission = write_submission(tmp_path / "solution-upload", solution_files(), "flat")
    solution = _grade_in(release, "--submission", submission, tmp_path=tmp_path)
    automated = [t for t in solution["tests"] if "auto" in t["tags"]]
    assert sum(t["score"] for t in automated) == sum(t["max_score"] for t in automated) == 74
