"""Fixtures for the autograder's self-tests: submissions and an in-process grader."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.context import GradingContext, Options
from autograder.engine import ItemResult, grade
from autograder.oracle import Oracle
from autograder.submission import load_submission
from tests.autograder.builders import write_submission

_counter = itertools.count()


@pytest.fixture(scope="session")
def oracle_cache(tmp_path_factory) -> Path:
    """gcloud verdicts shared by every self-test (and the subprocess runs they start)."""
    return tmp_path_factory.mktemp("oracle-cache")


@pytest.fixture(scope="session")
def oracles(oracle_cache):
    """One cached Oracle with the real gcloud, one without (the schema fallback)."""
    return {True: Oracle(oracle_cache, use_gcloud=True), False: Oracle(None, use_gcloud=False)}


class Grader:
    """Grades submissions in-process, several at a time (they are mostly subprocesses)."""

    def __init__(self, root: Path, oracles) -> None:
        self.root = root
        self.oracles = oracles

    def write(self, files: dict[str, str], layout: str = "repo", name: str = "") -> Path:
        folder = self.root / f"{name or 'submission'}-{next(_counter)}"
        return write_submission(folder, files, layout)

    def grade_path(self, path: Path, *, gcloud: bool = False, **options) -> dict[str, ItemResult]:
        context = GradingContext(
            load_submission(path),
            Options(use_gcloud=gcloud, **options),
            oracle=self.oracles[gcloud],
        )
        try:
            return {result.item.id: result for result in grade(context)}
        finally:
            context.close()

    def grade(self, files, *, layout="repo", gcloud=False, **options) -> dict[str, ItemResult]:
        return self.grade_path(self.write(files, layout), gcloud=gcloud, **options)

    def grade_many(self, submissions: dict, *, gcloud=False, workers=3, **options) -> dict:
        """{key: results} for {key: files}, graded in parallel."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                key: pool.submit(self.grade, files, gcloud=gcloud, **options)
                for key, files in submissions.items()
            }
            return {key: future.result() for key, future in futures.items()}


@pytest.fixture(scope="session")
def grader(tmp_path_factory, oracles) -> Grader:
    return Grader(tmp_path_factory.mktemp("submissions"), oracles)


@pytest.fixture(scope="session")
def solution_gcloud_results(grader):
    """The reference solution graded with the real gcloud, once per session.

    Besides being a test subject, it fills the verdict cache with every command
    the solution runs, so graders of variations of it only ask gcloud about
    what changed.
    """
    from tests.autograder.builders import solution_files

    return grader.grade(solution_files(), gcloud=True)


def failed(results: dict[str, ItemResult]) -> dict[str, ItemResult]:
    return {k: r for k, r in results.items() if r.status in ("failed", "error")}


def automated_points(results: dict[str, ItemResult]) -> tuple[float, float]:
    """(awarded, possible) over the items checked offline (not live, not by hand)."""
    offline = [r for r in results.values() if r.item.kind == "auto"]
    return sum(r.score for r in offline), sum(r.item.points for r in offline)
