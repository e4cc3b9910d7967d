"""The reference solution gets every automated point; the untouched templates get none."""

from __future__ import annotations

import pytest

from autograder.engine import FAILED, PASSED, PENDING
from tests.autograder.builders import solution_files, template_files
from tests.autograder.conftest import automated_points, failed


def _assert_full_marks(results):
    assert failed(results) == {}, {k: r.message for k, r in failed(results).items()}
    awarded, possible = automated_points(results)
    assert possible == 74  # 100 minus 4 live and 22 hand-graded points
    assert awarded == possible
    assert {r.status for r in results.values() if r.item.kind == "live"} == {PENDING}
    assert {r.status for r in results.values() if r.item.kind == "manual"} == {PENDING}


def test_solution_gets_every_automated_point(grader):
    _assert_full_marks(grader.grade(solution_files()))


@pytest.mark.gcloud
def test_solution_gets_every_automated_point_from_the_real_gcloud(solution_gcloud_results):
    _assert_full_marks(solution_gcloud_results)


def test_solution_as_a_flat_upload_gets_every_automated_point(grader):
    _assert_full_marks(grader.grade(solution_files(), layout="flat"))


@pytest.mark.parametrize("gcloud", [False, pytest.param(True, marks=pytest.mark.gcloud)])
def test_templates_get_no_point_and_a_message_for_each(grader, gcloud):
    results = grader.grade(template_files(), gcloud=gcloud)
    assert sum(r.score for r in results.values()) == 0
    for result in results.values():
        if result.item.kind == "auto":
            assert result.status == FAILED, result.item.id
            assert "expected:" in result.message
            assert "how to fix:" in result.message
            assert "Traceback" not in result.message
    build = results["Q1.backend_v1.config_valid"].message
    assert "untouched template" in build
    assert "FILL-ME" in build
    assert "placeholder" in results["Q3.v1.deliverables"].message


def test_a_missing_file_is_named_in_the_message(grader):
    files = solution_files()
    del files["deployment/deploy_frontend_v2.sh"]
    results = grader.grade(files)
    lost = {k for k, r in failed(results).items() if r.item.points}
    assert lost == {
        "Q6.frontend_v2.deploy_runs",
        "Q6.frontend_v2.deploy_service",
        "Q6.frontend_v2.deploy_access",
        "Q6.frontend_v2.serving_url",
    }
    message = results["Q6.frontend_v2.deploy_runs"].message
    assert "deployment/deploy_frontend_v2.sh: the file is missing" in message
    assert results["Q6.backend_v2.deploy_runs"].status == PASSED


def test_a_solution_folder_in_an_upload_is_never_graded(grader, tmp_path):
    """Only files at the student's own places count: a copied solution/ is skipped."""
    upload = grader.write({}, layout="flat", name="only-a-solution-copy")
    (upload / "solution").mkdir()
    for name, text in solution_files().items():
        (upload / "solution" / name.split("/")[-1]).write_text(text)
    results = grader.grade_path(upload)
    assert sum(r.score for r in results.values()) == 0
