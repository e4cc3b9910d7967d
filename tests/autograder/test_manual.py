"""Hand grades: keyed by submission, every bad cell reported alone, nothing else changed."""

from __future__ import annotations

import pytest

from autograder import answers
from autograder.manual import ManualGradesError, read_manual_grades, same_file
from autograder.rubric import load_rubric


def _sheet(path, rows: list[dict[str, str]]):
    filled = []
    for row in rows:
        base = answers.sheet_row(row["submission"], None)
        base.update(row)
        filled.append(base)
    answers.write_sheet(path, filled)
    return path


def test_the_short_shape_is_for_one_submission(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("question,points\nQ4,2.5\nQ7,\n")
    grades = read_manual_grades(short, load_rubric())
    assert grades.for_submission("anyone") == {"Q4.written": 2.5}
    assert grades.problems == []


def test_rows_apply_to_their_own_submission_only(tmp_path):
    """A one-row sheet is never applied to another submission."""
    sheet = _sheet(tmp_path / "sheet.csv", [{"submission": "alice", "Q2_points": "4"}])
    grades = read_manual_grades(sheet, load_rubric())
    assert grades.for_submission("alice") == {"Q2.written": 4.0}
    assert grades.for_submission("bob") == {}
    assert grades.unknown_submissions({"bob", "carol"}) == ["alice"]


def test_each_bad_cell_is_reported_and_changes_nothing_else(tmp_path):
    sheet = _sheet(
        tmp_path / "sheet.csv",
        [
            {"submission": "alice", "Q2_points": "3,5", "Q4_points": "2", "Q7_points": "6"},
            {"submission": "bob", "Q4_points": "5", "Q5_points": "2", "Q8_points": "nan"},
            {"submission": "carol", "Q2_points": "-1", "Q7_points": "8"},
        ],
    )
    grades = read_manual_grades(sheet, load_rubric())
    assert grades.for_submission("alice") == {"Q4.written": 2.0, "Q7.written": 6.0}
    assert grades.for_submission("bob") == {"Q5.written": 2.0}
    assert grades.for_submission("carol") == {"Q7.written": 8.0}
    problems = [str(p) for p in grades.problems]
    assert problems == [
        "line 2 (alice), column Q2_points: '3,5' is not a number (write 3.5); nothing was "
        "taken from this cell (the item stays pending)",
        "line 3 (bob), column Q4_points: '5' is more than Q4's 3 points; nothing was taken "
        "from this cell (the item stays pending)",
        "line 3 (bob), column Q8_points: 'nan' is not a number of points; nothing was taken "
        "from this cell (the item stays pending)",
        "line 4 (carol), column Q2_points: '-1' is below 0; nothing was taken from this cell "
        "(the item stays pending)",
    ]


def test_a_repeated_or_missing_submission_id_uses_neither_row(tmp_path):
    sheet = _sheet(
        tmp_path / "sheet.csv",
        [
            {"submission": "alice", "Q2_points": "4"},
            {"submission": "alice", "Q2_points": "1"},
            {"submission": "", "Q4_points": "3"},
            {"submission": "bob", "Q4_points": "3"},
        ],
    )
    grades = read_manual_grades(sheet, load_rubric())
    assert grades.for_submission("alice") == {}
    assert grades.for_submission("bob") == {"Q4.written": 3.0}
    reasons = [(p.line, p.column) for p in grades.problems]
    assert reasons == [(2, "submission"), (3, "submission"), (4, "submission")]


def test_a_file_that_is_no_grading_sheet_is_refused(tmp_path):
    not_a_sheet = tmp_path / "x.csv"
    not_a_sheet.write_text("name,score\nada,3\n")
    with pytest.raises(ManualGradesError, match="is not a grading sheet"):
        read_manual_grades(not_a_sheet, load_rubric())
    no_ids = tmp_path / "y.csv"
    no_ids.write_text("name,Q2_points\nada,3\n")
    with pytest.raises(ManualGradesError, match="no `submission` column"):
        read_manual_grades(no_ids, load_rubric())


def test_same_file_sees_through_other_spellings(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("x")
    assert same_file(sheet, tmp_path / "." / "sheet.csv")
    (tmp_path / "link.csv").symlink_to(sheet)
    assert same_file(tmp_path / "link.csv", sheet)
    assert not same_file(sheet, tmp_path / "other.csv")
