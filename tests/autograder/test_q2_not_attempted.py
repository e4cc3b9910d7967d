"""A submission that did Q1 and not yet Q2 loses exactly Q2's automatic points, and the
messages point at Q2 without spelling out its step; one that tried Q2 gets the fix.

The Q1-only configs are the reference configs without Q2's work: no pull step, no
--cache-from, no BUILDKIT_INLINE_CACHE, nothing waiting for the pull. That is what
a student who followed deployment/cloudbuild_template.yaml to the letter hands in.
"""

from __future__ import annotations

import pytest
import yaml

from autograder import assignment
from tests.autograder.builders import solution_files
from tests.autograder.conftest import automated_points, failed

Q2_ITEMS = {
    f"Q2.{c}.{check}" for c in assignment.COMPONENTS for check in ("pull_base", "cache_from")
}
# What Q2's step is: no message or title may say it to someone who has not tried.
Q2_ANSWER = ("docker pull", "|| exit 0", "exit 0", "cache-from", "allowFailure", "BUILDKIT")


def without_q2(config_text: str) -> str:
    config = yaml.safe_load(config_text)
    steps = [step for step in config["steps"] if step["id"] != "pull-base"]
    for step in steps:
        step["args"] = [
            arg
            for arg in step["args"]
            if not arg.startswith(("--cache-from", "--build-arg=BUILDKIT_INLINE_CACHE"))
        ]
        if step.get("waitFor") == ["pull-base"]:
            del step["waitFor"]
    config["steps"] = steps
    return yaml.safe_dump(config, sort_keys=False)


def q1_only_files() -> dict[str, str]:
    files = solution_files()
    for component in assignment.COMPONENTS:
        logical = assignment.cloudbuild_file(component)
        files[logical] = without_q2(files[logical])
    return files


def plain_pull_files() -> dict[str, str]:
    """Q1-only, except backend_v1 tried Q2 with a plain `docker pull` step and --cache-from."""
    files = q1_only_files()
    logical = assignment.cloudbuild_file("backend_v1")
    config = yaml.safe_load(files[logical])
    base = next(s for s in config["steps"] if s["id"] == "build-base")
    image = next(a.split("=", 1)[1] for a in base["args"] if a.startswith("--tag="))
    pull = {"id": "pull-base", "name": "gcr.io/cloud-builders/docker", "args": ["pull", image]}
    config["steps"].insert(0, pull)
    base["args"].insert(1, f"--cache-from={image}")
    files[logical] = yaml.safe_dump(config, sort_keys=False)
    return files


@pytest.fixture(scope="module")
def graded(grader):
    return grader.grade_many({"q1_only": q1_only_files(), "plain_pull": plain_pull_files()})


@pytest.fixture(scope="module")
def q1_only(graded):
    return graded["q1_only"]


def test_the_q1_only_configs_hold_nothing_of_q2():
    for component in assignment.COMPONENTS:
        text = q1_only_files()[assignment.cloudbuild_file(component)]
        assert "pull" not in text
        assert "cache-from" not in text


def test_only_q2s_automatic_points_are_lost(q1_only):
    assert {k for k, r in failed(q1_only).items() if r.item.points > 0} == Q2_ITEMS
    assert sum(q1_only[item].item.points for item in Q2_ITEMS) == 8
    awarded, possible = automated_points(q1_only)
    assert (awarded, possible) == (74 - 8, 74)


def test_each_message_points_at_q2_without_its_answer(q1_only):
    for item in Q2_ITEMS:
        result = q1_only[item]
        assert "this config does not have Q2's cache step yet" in result.message, result.message
        assert "read Q2 in the README" in result.message
        for answer in Q2_ANSWER:
            assert answer not in result.message, (item, answer)
            assert answer not in result.item.title, (item, answer)


@pytest.mark.gcloud
def test_gcloud_accepts_the_q1_only_configs(grader):
    results = grader.grade(q1_only_files(), gcloud=True)
    for component in assignment.COMPONENTS:
        assert results[f"Q1.{component}.config_valid"].status == "passed"


def test_a_pull_that_fails_the_first_build_is_told_the_fix(graded):
    """A student who tried Q2 with a plain pull is told how to tolerate a missing image."""
    results = graded["plain_pull"]
    lost = {k for k, r in failed(results).items() if r.item.points > 0}
    assert lost == Q2_ITEMS - {"Q2.backend_v1.cache_from"}
    message = results["Q2.backend_v1.pull_base"].message
    assert "fails the whole build when the base image does not exist yet" in message
    assert "|| exit 0" in message
