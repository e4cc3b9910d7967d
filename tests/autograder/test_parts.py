"""The grader's parts on their own: YAML safety, shell parsing, URLs, answers, rubric, sheets."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import answers, cloudbuild, deliverables, gcloud_cli
from autograder.checks.common import gcloud_words as recorded_words
from autograder.checks.deploy import (
    MEMORY_HEADROOM,
    backend_peak_mib,
    memory_mib,
    required_memory_mib,
)
from autograder.engine import ERROR, result_for
from autograder.feedback import CheckFailed
from autograder.oracle import FALLBACK_NOTE, Oracle
from autograder.report import summary_text
from autograder.rubric import RUBRIC_FILE, RubricError, load_rubric, parse_rubric, verify
from autograder.safe_yaml import load_yaml_text
from autograder.script_runner import RecordedCall
from autograder.shell_words import (
    GCLOUD_VALUE_FLAGS,
    failure_tolerated,
    gcloud_key_values,
    gcloud_words,
    sets_errexit,
    split_commands,
)
from autograder.similarity import similarity
from tests.autograder.builders import FILLED_ANSWERS, REPO_ROOT


def test_duplicate_keys_and_alias_bombs_are_refused_with_a_message():
    with pytest.raises(CheckFailed, match="`steps` appears twice") as duplicate:
        load_yaml_text("steps: []\nsteps: [1]\n", "x.yaml")
    assert "lines 1 and 2" in duplicate.value.found
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    for level in "bcdef":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(CheckFailed, match="expand into an enormous document"):
        load_yaml_text(bomb, "x.yaml")
    assert load_yaml_text("a: &x [1]\nb: *x\n", "x.yaml") == {"a": [1], "b": [1]}


def test_python_tags_are_refused_not_executed():
    with pytest.raises(CheckFailed, match="not valid YAML"):
        load_yaml_text("a: !!python/object/apply:os.system ['true']\n", "x.yaml")


@pytest.mark.parametrize(
    ("script", "tolerated"),
    [
        ("docker pull x || exit 0", True),
        ("docker pull x || true", True),
        ("docker pull x", False),
        ("docker pull x\necho pulled", True),
        ("set -e\ndocker pull x\necho pulled", False),
        ("if docker pull x; then echo ok; fi", True),
        ("docker pull x && echo ok || echo none", True),
        ("docker pull x && echo ok", False),
    ],
)
def test_a_failing_pull_is_tolerated_only_when_bash_would_go_on(script, tolerated):
    commands = split_commands(script)
    index = next(i for i, c in enumerate(commands) if c.words[:2] == ["docker", "pull"])
    assert failure_tolerated(commands, index, sets_errexit(commands)) is tolerated


@pytest.mark.parametrize(
    "argv",
    [
        ["--project", "P", "builds", "submit", "src", "--config", "c.yaml"],
        ["builds", "submit", "src", "--config", "c.yaml", "--project", "P"],
        ["--project=P", "beta", "builds", "submit", "--config=c.yaml", "src"],
        ["builds", "submit", "--async", "src", "--substitutions", "_A=1,_B=2"],
    ],
)
def test_gcloud_words_are_read_wherever_the_flags_are(argv):
    assert gcloud_words(argv) == ["builds", "submit", "src"]


def test_the_grader_reads_every_flag_gcloud_gives_a_value_and_the_recorder_no_other():
    """One splitter: the checks and the oracle pass it gcloud's own value flags (all of
    them); the recorder's short list, used beside the scripts, names only such flags."""
    call = RecordedCall("gcloud", ("run", "deploy", "--remove-labels", "team", "backend-v1"), "/")
    assert recorded_words(call) == ["run", "deploy", "backend-v1"]
    assert gcloud_cli.command_words(call.command) == ["run", "deploy", "backend-v1"]
    assert gcloud_cli.value_flags() >= GCLOUD_VALUE_FLAGS
    for command in ("builds submit", "run deploy", "run services describe"):
        flags = gcloud_cli.reference()["commands"][command]["flags"]
        used = {"--config", "--substitutions", "--image", "--region", "--format", "--memory"}
        assert {name for name in used if name in flags} <= GCLOUD_VALUE_FLAGS


def test_the_grading_tree_leaves_out_the_masters_caches(tmp_path):
    """Tools' caches in the master (mypy's) are never copied for scripts and gcloud."""
    from autograder.context import GradingContext, Options
    from autograder.submission import load_submission

    master = tmp_path / "master"
    for cache in (".mypy_cache", ".ruff_cache", ".pytest_cache"):
        (master / cache).mkdir(parents=True)
        (master / cache / "entry.json").write_text("{}")
    (master / "deployment").mkdir()
    (master / "deployment" / "Dockerfile.base").write_text("FROM python:3.11-slim\n")
    (tmp_path / "student").mkdir()
    submission = load_submission(tmp_path / "student", assignment_root=master)
    context = GradingContext(submission, Options(use_gcloud=False), Oracle(None, use_gcloud=False))
    try:
        tree = context.grading_tree()
        assert (tree / "deployment" / "Dockerfile.base").is_file()
        assert not any(path.name.endswith("_cache") for path in tree.iterdir())
    finally:
        context.close()


def test_gcloud_key_value_lists_and_their_delimiter_form():
    assert gcloud_key_values("_A=1,_B=x=y") == {"_A": "1", "_B": "x=y"}
    assert gcloud_key_values("^;^URLS=a,b;MODE=fast") == {"URLS": "a,b", "MODE": "fast"}


def test_substitutions_and_image_names():
    text = "$PROJECT_ID/${_REPO}/x:$BUILD_ID $$HOME ${_UNSET}"
    assert (
        cloudbuild.expand(text, {"_REPO": "r"}) == "${PROJECT_ID}/r/x:${BUILD_ID} $HOME ${_UNSET}"
    )
    assert cloudbuild.normalize_image("host:5000/a/b") == "host:5000/a/b:latest"
    assert cloudbuild.split_image("h/a/b@sha256:00") == ("h/a/b", "@sha256:00")


def test_the_build_reader_sees_buildx_push_and_cache_refs():
    config = cloudbuild.read_config(
        {
            "steps": [
                {
                    "name": "gcr.io/cloud-builders/docker",
                    "args": [
                        *("buildx", "build", "--push", "--tag=h/p/r/i:latest"),
                        *("--cache-from=type=registry,ref=h/p/r/i:latest", "."),
                    ],
                }
            ]
        },
        "x.yaml",
    )
    (build,) = config.builds
    assert build.cache_from == ["h/p/r/i:latest"]
    assert config.pushed_images() == {"h/p/r/i:latest"}


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("https://backend-v1-abcdefghij-nn.a.run.app", "backend-v1"),
        ("https://backend-v1-abcdefghij-nn.a.run.app/", "backend-v1"),
        ("https://frontend-v2-123456789012.northamerica-northeast1.run.app", "frontend-v2"),
    ],
)
def test_both_cloud_run_url_forms_are_accepted(url, service):
    assert deliverables.check_url(url, "x", allow_local=False).service_name == service


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://backend-v1-abcdefghij-uc.a.run.app", "another region"),
        ("https://backend-v1-1234567.us-central1.run.app", "another region"),
        ("http://127.0.0.1:8080", "not an https URL"),
        ("https://backend-v1-abcdefghij-nn.a.run.app/predict", "more than the service"),
        ("https://<your backend>", "placeholder"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(CheckFailed, match=message):
        deliverables.check_url(url, "x", allow_local=False)


def test_loopback_urls_count_only_when_allowed():
    assert deliverables.check_url("http://127.0.0.1:8080", "x", allow_local=True).url


def test_short_answers_are_extracted_and_template_text_is_not_an_answer():
    template = answers.parse((REPO_ROOT / "SHORT_ANSWER_TEMPLATE.md").read_text())
    filled = answers.parse(FILLED_ANSWERS)
    assert (filled.name, filled.student_id) == ("Ada Lovelace", "20251234")
    assert template.name == ""  # "<your name>" is a placeholder
    assert answers.unanswered(template, template) == ["Q2", "Q4", "Q5", "Q7", "Q8"]
    assert answers.unanswered(filled, template) == []
    assert filled.answers["Q5"] == "Underscores are not allowed in Cloud Run service names."


def test_similarity_ignores_case_markup_and_spacing():
    assert similarity("The *cache* works", "the cache   works") == pytest.approx(1.0)
    assert similarity("layers are reused", "sessions keep state apart") < 0.2


def test_the_rubric_adds_up_and_a_drifted_rubric_is_refused():
    rubric = load_rubric()
    assert rubric.total == 100
    drifted = parse_rubric(RUBRIC_FILE.read_text().replace("points: 8\n", "points: 7\n"))
    with pytest.raises(RubricError, match="Q7: items add up to 7"):
        verify(drifted)


def test_an_internal_error_becomes_a_message_and_the_summary_groups_causes():
    rubric = load_rubric()
    item = rubric.by_id("Q1.backend_v1.config_valid")
    crashed = result_for(item, ZeroDivisionError("boom"))
    assert crashed.status == ERROR
    assert "could not finish this check (ZeroDivisionError: boom)" in crashed.message
    cause = CheckFailed("the file is missing", "x", "y", "z", where="f")
    results = [result_for(rubric.by_id(i), cause) for i in ("Q1.backend_v1.base_build",)]
    results.append(result_for(rubric.by_id("Q1.backend_v1.app_build"), cause))
    text = summary_text(rubric, results)
    assert "- [Q1 -4] cloudbuild_backend_v1.yaml builds the base image" in text
    assert "  [also] cloudbuild_backend_v1.yaml builds the backend_v1 image" in text
    assert text.count("the file is missing") == 1


def test_without_gcloud_the_vendored_rules_check_the_config_and_say_so(tmp_path):
    oracle = Oracle(None, use_gcloud=False)
    good = oracle.validate_config(REPO_ROOT / "solution" / "cloudbuild_backend_v1.yaml")
    assert good.accepted
    assert good.message == FALLBACK_NOTE
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: {name: x}\nstepz: []\n")
    verdict = oracle.validate_config(Path(bad))
    assert verdict.rejected
    assert "`.stepz`: unused" in verdict.message


def test_the_recorder_reads_a_global_flag_before_the_command_group(tmp_path):
    """The recording gcloud splits words as the checks do, also run in isolated mode."""
    log = tmp_path / "calls.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(REPO_ROOT / "autograder" / "recording_cli.py"),
            *("gcloud", "--project", "my-proj", "run", "services", "describe", "backend-v1"),
            *("--format", "value(status.url)"),
        ],
        env={"RECORDER_LOG": str(log), "RECORDER_SERVICE_URLS": "{}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("https://backend-v1-")
    assert result.stdout.strip().endswith("-nn.a.run.app")
    assert json.loads(log.read_text())["argv"][:2] == ["--project", "my-proj"]


@pytest.mark.parametrize(
    ("value", "mib"),
    [("512Mi", 512), ("2Gi", 2048), ("4gi", 4096), ("2G", 1e9 * 2 / 2**20), ("1073741824", 1024)],
)
def test_memory_sizes_are_read_as_cloud_run_reads_them(value, mib):
    assert memory_mib(value) == pytest.approx(mib)


def test_the_memory_a_torch_backend_needs_comes_from_its_measured_peak():
    for component in ("backend_v1", "backend_v2"):
        peak = backend_peak_mib()[component]
        assert peak > 512  # the reason Cloud Run's default does not do
        assert required_memory_mib(component) == math.ceil(peak * MEMORY_HEADROOM)
    assert memory_mib("lots") is None


def test_an_environment_failure_is_not_graded_and_costs_nothing():
    from autograder.engine import ENVIRONMENT
    from autograder.report import results_json
    from autograder.sandbox import SandboxError

    rubric = load_rubric()
    item = rubric.by_id("Q3.backend_v1.deploy_runs")
    result = result_for(item, SandboxError("the bwrap sandbox did not start: out of pids"))
    assert result.status == ENVIRONMENT
    assert "costs you nothing" in result.message
    assert "NOT GRADED (1 points)" in summary_text(rubric, [result])
    data = results_json(rubric, [result])
    (test,) = data["tests"]
    assert "score" not in test
    assert "status" not in test  # neither passed nor failed on Gradescope
    assert data["extra_data"]["environment_errors"] == ["Q3.backend_v1.deploy_runs"]


def test_substitution_values_are_strings_not_base64():
    """`_REGION: northamerica-northeast1` is no base64, and gcloud accepts it."""
    from autograder import cloudbuild_schema

    config = load_yaml_text(
        "steps:\n- name: ubuntu\n  args: [echo, $_REGION]\n"
        "substitutions:\n  _REGION: northamerica-northeast1\n  _UNUSED: x\n",
        "cloudbuild.yaml",
    )
    assert cloudbuild_schema.check(config) is None
