"""A student's own clone, graded where it stands: files filled in place count."""

import shutil
import subprocess
import sys

import pytest

from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def student_clone(tmp_path):
    """The tracked files of this repository, as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    clone = tmp_path / "clone"
    for name in listed:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, clone / name)
    return clone


def grade(clone):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "autograder", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_answers_written_in_the_template_file_count_as_answers(student_clone):
    template = student_clone / "SHORT_ANSWER_TEMPLATE.md"
    text = template.read_text()
    assert grade(student_clone).stdout.count("is not answered") == 5
    template.write_text(text.replace("_Write your answer here._", "Two images: a base and an app."))
    result = grade(student_clone)
    assert "autograder summary" in result.stdout
    assert "is not answered" not in result.stdout


def test_the_reference_files_copied_in_place_get_every_automated_point(student_clone):
    for pattern in ("cloudbuild_*.yaml", "submit_build_*.sh", "deploy_*.sh"):
        for source in (student_clone / "solution").glob(pattern):
            shutil.copy2(source, student_clone / "deployment" / source.name)
    shutil.copy2(student_clone / "solution" / "deliverables.yaml", student_clone)
    shutil.copy2(
        student_clone / "solution" / "answers.md", student_clone / "SHORT_ANSWER_TEMPLATE.md"
    )
    result = grade(student_clone)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Every automated check passes." in result.stdout
