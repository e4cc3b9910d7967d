"""`pytest autograder` end to end, as students and Gradescope run it (a subprocess each)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib

import pytest

from autograder.rubric import QUESTION_MAXIMA
from tests.autograder.builders import REPO_ROOT, solution_files, template_files


def run_grader(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "autograder", "-p", "no:cacheprovider", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def solution_run(grader, oracle_cache, tmp_path_factory):
    folder = grader.write(solution_files(), name="e2e-solution")
    out = tmp_path_factory.mktemp("e2e")
    result = run_grader(
        "--submission",
        folder,
        "--results-json",
        out / "results.json",
        "--grading-sheet",
        out / "sheet.csv",
        "--oracle-cache",
        oracle_cache,
        "--no-gcloud",
    )
    return folder, out, result


def test_the_solution_passes_with_a_summary_and_gradescope_results(solution_run):
    _, out, result = solution_run
    assert result.returncode == 0, result.stdout[-3000:]
    assert "autograder summary" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["score"] == 74
    questions = data["extra_data"]["questions"]
    assert {q: v["max_score"] for q, v in questions.items()} == QUESTION_MAXIMA
    assert questions["Q1"]["score"] == 46
    assert questions["Q3"]["score"] == 10  # 2 live points pending
    # Gradescope's format: automatic items only (the written answers are Gradescope
    # questions); an item not graded yet shows as neutral, never as failed.
    graded = [t for t in data["tests"] if "status" in t]
    for test in graded:
        assert set(test) >= {"name", "number", "score", "max_score", "output", "visibility", "tags"}
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
    assert sum(t["max_score"] for t in graded) == 74
    pending = [t for t in data["tests"] if "status" not in t]
    assert {t["number"] for t in pending} == {
        "Q3.v1.live_backend",
        "Q3.v1.live_frontend",
        "Q6.v2.live_backend",
        "Q6.v2.live_frontend",
    }
    assert all("score" not in t and "max_score" not in t for t in pending)
    assert not [t for t in data["tests"] if "manual" in t["tags"]]
    assert data["extra_data"]["autograder_max"] == 78
    assert data["output_format"] == "md"
    assert "Confinement: " in data["output"]
    assert data["extra_data"]["confinement"]["level"] in ("bwrap", "user", "none")
    assert "Q3.v1.live_backend" in data["extra_data"]["pending"]
    assert data["extra_data"]["name"] == "Ada Lovelace"


def test_the_grading_sheet_and_manual_grades_complete_the_score(solution_run, oracle_cache):
    folder, out, _ = solution_run
    with (out / "sheet.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert "--cache-from reuses every unchanged layer" in rows[0]["Q2_answer"]
    rows[0].update({"Q2_points": "4", "Q4_points": "3", "Q5_points": "2", "Q7_points": "6"})
    with (out / "graded.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run_grader(
        "--submission",
        folder,
        "--manual-grades",
        out / "graded.csv",
        "--results-json",
        out / "graded.json",
        "--oracle-cache",
        oracle_cache,
        "--no-gcloud",
        "-k",
        "Q1.backend_v1.config_valid",  # only one check: the manual points still merge
    )
    data = json.loads((out / "graded.json").read_text())
    questions = data["extra_data"]["questions"]
    assert questions["Q7"]["score"] == 6
    assert questions["Q2"]["score"] == 4  # the automated Q2 checks were not selected
    assert "Q8.written" in data["extra_data"]["pending"]  # left blank: still pending
    assert "only some checks were selected" in result.stdout


def test_a_bad_hand_grade_is_reported_and_the_rest_still_counts(solution_run, tmp_path):
    folder, _, _ = solution_run
    sheet = tmp_path / "bad.csv"
    sheet.write_text("question,points\nQ4,9\nQ7,6\n")
    result = run_grader(
        "--submission",
        folder,
        "--manual-grades",
        sheet,
        "--results-json",
        tmp_path / "r.json",
        "--no-gcloud",
        "-k",
        "Q1.backend_v1.config_valid",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "line 2, column points: '9' is more than Q4's 3 points" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["extra_data"]["questions"]["Q7"]["score"] == 6
    assert "Q4.written" in data["extra_data"]["pending"]
    assert data["extra_data"]["manual_grade_problems"]
    assert "Traceback" not in result.stdout + result.stderr


def test_the_grading_sheet_never_overwrites_the_hand_grades(solution_run, tmp_path):
    folder, _, _ = solution_run
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("question,points\nQ4,2\n")
    result = run_grader(
        "--submission", folder, "--manual-grades", sheet, "--grading-sheet", sheet, "--no-gcloud"
    )
    assert result.returncode == 4  # pytest's usage error, before any check runs
    assert "would overwrite the hand grades" in result.stderr
    assert sheet.read_text() == "question,points\nQ4,2\n"


def test_the_templates_score_zero_with_messages(grader, oracle_cache, tmp_path):
    folder = grader.write(template_files(), name="e2e-templates")
    result = run_grader(
        "--submission",
        folder,
        "--results-json",
        tmp_path / "r.json",
        "--oracle-cache",
        oracle_cache,
    )
    assert result.returncode == 1
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 0
    assert "What to fix (points lost):" in result.stdout
    assert "this is still the untouched template" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_script_that_hangs_costs_its_own_check_and_the_rest_is_graded(grader, tmp_path):
    """The hung script is stopped at the script timeout; waiting for it is no check's own
    time, so a short --check-timeout stops nothing else, however loaded the machine."""
    files = solution_files()
    files["deployment/deploy_frontend_v2.sh"] = "#!/bin/bash\nwhile true; do sleep 0.2; done\n"
    folder = grader.write(files, name="e2e-hang")
    result = run_grader(
        "--submission",
        folder,
        "--results-json",
        tmp_path / "r.json",
        "--progress-file",
        tmp_path / "progress.jsonl",
        "--no-gcloud",
        "--script-timeout",
        "6",
        "--check-timeout",
        "3",
        "-k",
        "Q6 or Q1.backend_v1",
    )
    data = json.loads((tmp_path / "r.json").read_text())
    tests = {t["number"]: t for t in data["tests"]}
    hung = tests["Q6.frontend_v2.deploy_runs"]
    assert hung["score"] == 0
    assert "the script did not finish within 6 s" in hung["output"]
    for item in ("Q6.backend_v2.deploy_runs", "Q6.backend_v2.deploy_service"):
        # (an item not graded has no score on Gradescope: it would show here)
        assert tests[item].get("score") == tests[item].get("max_score", -1), tests[item]["output"]
    assert tests["Q1.backend_v1.config_valid"]["score"] == 2
    assert "Traceback" not in result.stdout
    recorded = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert {entry["id"] for entry in recorded} == {
        t["number"]
        for t in data["tests"]
        if t["number"].startswith(("Q6.", "Q1.backend_v1")) and "written" not in t["number"]
    }


def test_the_repo_root_is_graded_by_default_and_the_test_suite_never_grades_it(tmp_path):
    # The master repo holds solution/ but no student files: that is worth nothing.
    graded = run_grader("--no-gcloud", "--results-json", tmp_path / "r.json", timeout=300)
    assert f"Submission: {REPO_ROOT}" in graded.stdout
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 0
    # `make test` runs pytest on testpaths = ["tests"]; there the grading
    # plugin is never loaded, so its options do not even exist.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--co",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "--submission",
            str(REPO_ROOT),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "unrecognized arguments: --submission" in collected.stderr
    assert "autograder summary" not in collected.stdout
