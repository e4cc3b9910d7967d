"""The gradebook and the class report: pending points are pending, hand grades never lost.

The class here is made of saved results (what `batch` leaves under --out), so
`python -m autograder merge` rebuilds everything from them in a moment.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autograder import answers
from autograder.__main__ import main
from autograder.batch import Outcome, class_report, gradebook_row
from autograder.engine import NOT_GRADED, PASSED, PENDING, ItemResult
from autograder.report import results_json
from autograder.rubric import load_rubric
from tests.autograder.builders import FILLED_ANSWERS, write_submission

AUTOMATED = 74.0  # the reference solution's automated points
TO_COME = 26.0  # 22 by hand + 4 live


def _results(name: str, not_graded: tuple[str, ...] = ()) -> dict:
    items = []
    for item in load_rubric().items:
        if item.kind == "auto" and item.id not in not_graded:
            items.append(ItemResult(item, PASSED, item.points))
        elif item.kind == "auto":
            items.append(ItemResult(item, NOT_GRADED, 0.0, "not graded"))
        else:
            items.append(ItemResult(item, PENDING, 0.0, "pending"))
    return results_json(load_rubric(), items, name, {"complete": True})


@pytest.fixture
def saved_class(tmp_path):
    """Three graded submissions as a batch leaves them: alice, bob, carol."""
    out = tmp_path / "grades-output"
    for name in ("alice", "bob", "carol"):
        submission = write_submission(
            tmp_path / "class" / name,
            {"SHORT_ANSWER_TEMPLATE.md": FILLED_ANSWERS.replace("Ada Lovelace", name)},
        )
        folder = out / "submissions" / name
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(_results(name)))
        saved = {"submission": str(submission), "status": "graded", "detail": "", "seconds": 12.5}
        (folder / "outcome.json").write_text(json.dumps(saved))
    return tmp_path


def _merge(root, *args: str) -> dict[str, dict[str, str]]:
    csv_path = root / "grades.csv"
    assert main(["merge", "--csv", str(csv_path), "--no-progress", *args]) == 0
    with csv_path.open() as handle:
        return {row["submission"]: row for row in csv.DictReader(handle)}


def _fill(sheet, points: dict[str, dict[str, str]]) -> None:
    with sheet.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.update(points.get(row["submission"], {}))
    answers.write_sheet(sheet, rows)


def test_pending_points_are_pending_not_zeros(saved_class):
    rows = _merge(saved_class)
    alice = rows["alice"]
    assert alice["total"] == "74"
    assert alice["pending"] == "26"
    assert alice["final"] == "no"
    assert alice["pending_by_question"] == "Q2:4 Q3:2 Q4:3 Q5:2 Q6:2 Q7:8 Q8:5"
    assert alice["status"] == "graded"
    assert alice["grading_seconds"] == "12.5"
    report = (saved_class / "grades-report.md").read_text()
    # Q7 is all by hand: no mean or full marks until it is graded.
    assert "| Q7 | 8 | 0/3 | - | - | 0.0 | 8.0 |" in report
    assert "| Q1 | 46 | 3/3 | 46.0 | 3/3 | 46.0 | 0.0 |" in report
    assert "Not final yet: 3 submissions, 78 points still to come" in report
    assert "Final totals" not in report


def test_filling_the_sheet_in_place_and_merging_keeps_every_hand_point(saved_class):
    """The sheet the batch wrote, filled where it is, merged with the default --out."""
    _merge(saved_class)
    sheet = saved_class / "grades-output" / "grading_sheet.csv"
    _fill(sheet, {"alice": {"Q2_points": "4", "Q7_points": "6.5"}, "bob": {"Q4_points": "3"}})
    filled = sheet.read_bytes()
    rows = _merge(saved_class, "--manual-grades", str(sheet))
    assert sheet.read_bytes() == filled  # the input is never overwritten
    alice = rows["alice"]
    assert (alice["Q2"], alice["Q7"], alice["total"]) == ("12", "6.5", "84.5")  # Q2: 8 + 4
    assert float(alice["pending"]) == TO_COME - 4 - 8
    assert rows["bob"]["Q4"] == "3"
    assert rows["carol"]["total"] == "74"
    new_sheets = [p for p in sheet.parent.glob("grading_sheet-*.csv")]
    assert len(new_sheets) == 1
    with new_sheets[0].open() as handle:
        carried = {row["submission"]: row for row in csv.DictReader(handle)}
    assert carried["alice"]["Q7_points"] == "6.5"  # the new sheet carries the points given
    # Merging again from the new sheet gives the same gradebook.
    assert _merge(saved_class, "--manual-grades", str(new_sheets[0])) == rows


def test_a_one_row_sheet_applies_to_its_submission_only(saved_class, tmp_path):
    sheet = tmp_path / "one.csv"
    row = answers.sheet_row("bob", None)
    row["Q8_points"] = "5"
    answers.write_sheet(sheet, [row])
    rows = _merge(saved_class, "--manual-grades", str(sheet))
    assert rows["bob"]["Q8"] == "5"
    assert rows["alice"]["Q8"] == rows["carol"]["Q8"] == "0"
    stranger = tmp_path / "stranger.csv"
    row["submission"] = "dave"
    answers.write_sheet(stranger, [row])
    rows = _merge(saved_class, "--manual-grades", str(stranger))
    assert {r["Q8"] for r in rows.values()} == {"0"}
    report = (saved_class / "grades-report.md").read_text()
    assert "submission 'dave' has points in the sheet but is not in this class" in report


def test_a_bad_cell_is_reported_and_the_rest_of_the_row_counts(saved_class, tmp_path, capsys):
    sheet = tmp_path / "graded.csv"
    rows = [answers.sheet_row(name, None) for name in ("alice", "bob", "carol")]
    for row in rows:
        row.update({"Q2_points": "4", "Q4_points": "3", "Q5_points": "2", "Q7_points": "8"})
        row["Q8_points"] = "5"
    rows[0]["Q2_points"] = "3,5"
    rows[1]["Q4_points"] = "5"
    answers.write_sheet(sheet, rows)
    book = _merge(saved_class, "--manual-grades", str(sheet))
    assert book["alice"]["status"] == "graded"
    assert (book["alice"]["total"], book["alice"]["pending"]) == ("92", "8")  # Q2 4 + live 4
    assert (book["bob"]["total"], book["bob"]["pending"]) == ("93", "7")  # Q4 3 + live 4
    assert (book["carol"]["total"], book["carol"]["pending"]) == ("96", "4")  # live only
    printed = capsys.readouterr().out
    assert "line 2 (alice), column Q2_points: '3,5' is not a number (write 3.5)" in printed
    assert "line 3 (bob), column Q4_points: '5' is more than Q4's 3 points" in printed


def test_final_totals_once_nothing_is_pending():
    rubric = load_rubric()
    probed = [  # the live probes passed too (a --live run)
        ItemResult(item, PASSED, item.points)
        if item.kind != "manual"
        else ItemResult(item, PENDING, 0.0)
        for item in rubric.items
    ]
    results = results_json(rubric, probed, "x")
    hand = {item.id: item.points for item in rubric.items if item.kind == "manual"}
    row = gradebook_row(Outcome(Path("x"), "graded", results), hand)
    assert row.final()
    assert row.total == 100
    report = class_report([row], [])
    assert "Final totals: 1 of 1 submissions, mean 100.0 / 100, full marks 1." in report
    assert "| Q7 | 8 | 1/1 | 8.0 | 1/1 |" in report


def test_checks_not_graded_count_as_to_come_and_a_crash_as_all_to_come(tmp_path):
    stopped = Outcome(tmp_path / "slow", "timeout", _results("slow", ("Q6.v2.deliverables",)))
    row = gradebook_row(stopped)
    assert row.total == AUTOMATED - 1
    assert row.pending["Q6"] == 3  # 2 live + 1 not graded
    crashed = gradebook_row(Outcome(tmp_path / "broken", "crashed"))
    assert crashed.total == 0
    assert crashed.pending_total == 100
    assert not crashed.final()
