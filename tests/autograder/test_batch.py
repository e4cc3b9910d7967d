"""`python -m autograder batch`: a generated class graded in parallel, gradebook and report."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.batch import BatchOptions, grade_one, gradebook_row
from tests.autograder.builders import (
    FILLED_ANSWERS,
    REPO_ROOT,
    solution_files,
    template_files,
    write_submission,
)
from tests.autograder.test_mistakes import MISTAKES

_VOCABULARY = (
    "layer cache image build push registry region service scale cold start model "
    "session memory port request latency replica revision traffic container base "
    "weights tag pull deploy frontend backend url health network timeout"
)
WORDS = _VOCABULARY.split(" ")


def _own_answers(seed: int) -> str:
    """Answers different enough between students (no false similarity flags)."""
    rng = random.Random(seed)
    text = FILLED_ANSWERS.replace("Ada Lovelace", f"Student {seed}").replace(
        "20251234", f"2025{seed:04d}"
    )
    for question in ("Q2", "Q4", "Q5", "Q7", "Q8"):
        sentence = " ".join(rng.choice(WORDS) for _ in range(18))
        text = text.replace(f"## {question}\n\n", f"## {question}\n\n{sentence}.\n", 1)
    return text


MISTAKEN: dict = {}  # student -> the mistake in their files (None: the untouched templates)


def _class() -> dict[str, tuple[dict[str, str], str, float]]:
    """name -> (files, layout, expected total)."""
    students = {}
    plain = [m for m in MISTAKES if not m.gcloud and m.lost]
    for index in range(32):
        if index % 8 == 0:
            files, expected = template_files(), 0.0
            MISTAKEN[f"student-{index:02d}"] = None
        elif index % 8 in (1, 2):
            files, expected = solution_files(), 74.0
        else:
            mistake = plain[index % len(plain)]
            MISTAKEN[f"student-{index:02d}"] = mistake
            files = mistake.files()
            expected = None  # checked against the in-process grade below
        if index % 8:
            files["SHORT_ANSWER_TEMPLATE.md"] = _own_answers(index)
        layout = "flat" if index % 3 == 0 else "repo"
        students[f"student-{index:02d}"] = (files, layout, expected)
    # Two students hand in the same written answers.
    copied = _own_answers(100)
    students["student-01"][0]["SHORT_ANSWER_TEMPLATE.md"] = copied
    students["student-02"][0]["SHORT_ANSWER_TEMPLATE.md"] = copied.replace("Student 100", "Eve")
    return students


@pytest.mark.slow
@pytest.mark.timeout(1800)  # as long as the batch's own subprocess timeout below
def test_a_class_of_32_is_graded_in_parallel(tmp_path):
    students = _class()
    class_dir = tmp_path / "class"
    for name, (files, layout, _) in students.items():
        write_submission(class_dir / name, files, layout)
    csv_path = tmp_path / "grades.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "batch",
            class_dir,
            "--jobs",
            "3",
            "--csv",
            csv_path,
            "--no-gcloud",
            "--timeout",
            "600",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "graded 32 of 32 submissions" in result.stdout
    assert "submission/s" in result.stderr  # tqdm's progress bar

    with csv_path.open() as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert len(rows) == 32
    header = list(next(iter(rows.values())))
    assert header[3:14] == [f"Q{i}" for i in range(1, 9)] + ["total", "pending", "final"]
    for name, (_, _, expected) in students.items():
        row = rows[name]
        assert row["status"] == "graded"
        assert float(row["grading_seconds"]) > 0
        assert row["final"] == "no"  # hand grades and live probes are still to come
        total = float(row["total"])
        assert total == sum(float(row[f"Q{i}"]) for i in range(1, 9))
        assert float(row["pending"]) == 26  # 22 by hand, 4 live: pending, never zeros
        if expected is not None:
            assert total == expected, name
        else:
            assert 0 < total < 74, name
    assert rows["student-03"]["name"] == "Student 3"

    report = (tmp_path / "grades-report.md").read_text()
    assert (
        "Submissions: 32 (graded 32, timed out 0 (their finished checks kept), crashed 0)" in report
    )
    invalid = sum(m is None or "Q1.backend_v1.config_valid" in m.lost for m in MISTAKEN.values())
    passed = 32 - invalid
    assert (
        f"| cloudbuild_backend_v1.yaml is a valid Cloud Build config | Q1 | 2 | {passed}/32 "
        in report
    )
    assert "| Q7 | 8 | 0/32 | - | - | 0.0 | 8.0 |" in report  # all by hand: nothing final yet
    assert "| student-01 | student-02 | Q2 |" in report
    pair_rows = [line for line in report.splitlines() if line.startswith("| student-")]
    assert len(pair_rows) == 5  # that pair only, once per written question
    sheet = (tmp_path / "grades-output" / "grading_sheet.csv").read_text()
    assert "Q7_points" in sheet


def test_a_submission_that_times_out_or_crashes_is_reported_not_raised(tmp_path):
    folder = write_submission(tmp_path / "slow", solution_files())
    options = BatchOptions(out=tmp_path / "out", timeout=0.2, no_gcloud=True)
    outcome = grade_one(folder, options)
    assert outcome.status == "timeout"
    assert "stopped after 0.2 s" in outcome.detail
    assert "no points lost" in outcome.detail
    # Stopped before any check ran: nothing is lost, everything is still to come.
    row = gradebook_row(outcome)
    assert (row.total, row.pending_total) == (0, 100)

    crashed = grade_one(tmp_path / "does-not-exist", BatchOptions(out=tmp_path / "out"))
    assert crashed.status == "crashed"
    assert "without results" in crashed.detail
    assert (
        "does not exist"
        in (tmp_path / "out" / "submissions" / "does-not-exist" / "log.txt").read_text()
    )


@pytest.mark.slow
def test_a_batch_timeout_keeps_the_checks_that_finished(tmp_path):
    """A script that hangs past the batch's timeout: what finished counts, the rest is
    "not graded" (to rerun), and nothing is charged for the stop."""
    files = solution_files()
    marker = f"hung-script-{tmp_path.name}"
    files["deployment/deploy_frontend_v2.sh"] = f"#!/bin/bash\nexec -a {marker} sleep 3600\n"
    folder = write_submission(tmp_path / "hangs", files)
    options = BatchOptions(out=tmp_path / "out", timeout=45, no_gcloud=True, script_timeout=600)
    outcome = grade_one(folder, options)
    assert outcome.status == "timeout"
    # The hung script, in a session of its own, ended with the grading process.
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if _runs(p, marker)]
    statuses = outcome.results["extra_data"]["statuses"]
    assert statuses["Q6.frontend_v2.deploy_runs"] == "not_graded"
    assert statuses["Q1.backend_v1.config_valid"] == "passed"  # the first check, long done
    tests = {t["number"]: t for t in outcome.results["tests"]}
    assert "rerun" in tests["Q6.frontend_v2.deploy_runs"]["output"]
    assert set(statuses.values()) <= {"passed", "not_graded", "pending"}
    row = gradebook_row(outcome)
    assert row.total == sum(t.get("score", 0) for t in tests.values())  # not graded: no score
    assert row.total + row.pending_total == 100  # nothing lost: given or still to come
    saved = (tmp_path / "out" / "submissions" / "hangs" / "results.json").read_text()
    assert '"timed_out": true' in saved


def _runs(cmdline: Path, marker: str) -> bool:
    try:
        return cmdline.read_bytes().startswith(marker.encode())
    except OSError:
        return False
