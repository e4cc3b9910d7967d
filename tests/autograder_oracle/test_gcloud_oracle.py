"""autograder/gcloud_oracle: the real gcloud, isolated, as a parser of configs and commands."""

from __future__ import annotations

import pytest
import yaml

from autograder import gcloud_oracle
from autograder.gcloud_oracle import (
    ACCEPTED_OFFLINE,
    INCONCLUSIVE,
    NEEDS_CREDENTIALS,
    NOT_RUN,
    REJECTED,
    classify,
    isolated_env,
)

needs_gcloud = [
    pytest.mark.gcloud,
    pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed"),
]
DOCKER = "gcr.io/cloud-builders/docker"


def write_config(tmp_path, config) -> str:
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


# --- without gcloud: the environment and the verdicts ----------------------------------


def test_isolated_env_passes_nothing_of_the_callers(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/home/me/key.json")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "/home/me/token")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    env = isolated_env(tmp_path / "config", tmp_path / "home")
    assert set(env) == {
        "PATH",
        "HOME",
        "LANG",
        "CLOUDSDK_CONFIG",
        "CLOUDSDK_CORE_PROJECT",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA",
        "CLOUDSDK_CORE_DISABLE_PROMPTS",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK",
        "CLOUDSDK_CORE_SHOW_STRUCTURED_LOGS",
    }
    assert env["CLOUDSDK_CONFIG"] == str(tmp_path / "config")
    assert env["CLOUDSDK_CORE_CHECK_GCE_METADATA"] == "false"
    assert env["PATH"] == "/usr/bin:/bin"  # gcloud runs confined: the system's folders only


@pytest.mark.parametrize(
    ("returncode", "stderr", "kind"),
    [
        (
            1,
            "ERROR: (gcloud.run.deploy) You do not currently have an active account selected.",
            NEEDS_CREDENTIALS,
        ),
        (0, "", ACCEPTED_OFFLINE),
        (2, "ERROR: (gcloud.run.deploy) unrecognized arguments: --bogus", REJECTED),
        (1, "Traceback (most recent call last):\n  ...", INCONCLUSIVE),
    ],
)
def test_classify(returncode, stderr, kind):
    verdict = classify(("gcloud", "x"), returncode, "", stderr)
    assert verdict.kind == kind
    assert verdict.accepted == (kind in (NEEDS_CREDENTIALS, ACCEPTED_OFFLINE))


def test_rejected_message_starts_at_gcloud_error_line():
    stderr = (
        "WARNING: something\nERROR: (gcloud.builds.submit) interpreting x: .steps[0].foo: unused\n"
    )
    verdict = classify(("gcloud",), 1, "", stderr)
    assert verdict.message == "ERROR: (gcloud.builds.submit) interpreting x: .steps[0].foo: unused"


@pytest.mark.parametrize(
    "argv",
    [
        ["gcloud", "auth", "login"],
        ["gcloud", "--quiet", "components", "install", "beta"],
        ["gcloud", "init"],
        ["docker", "push", "x"],
        [],
    ],
)
def test_commands_that_could_log_in_install_or_are_not_gcloud_never_run(argv):
    verdict = gcloud_oracle.check_command(argv)
    assert verdict.kind == NOT_RUN
    assert not verdict.accepted


def test_missing_config_file_is_inconclusive(tmp_path):
    verdict = gcloud_oracle.validate_build_config(tmp_path / "nope.yaml")
    assert verdict.kind == INCONCLUSIVE
    assert "no such file" in verdict.message


# --- with the real gcloud -------------------------------------------------------------


VALID = {
    "steps": [
        {
            "id": "pull",
            "name": DOCKER,
            "entrypoint": "bash",
            "args": ["-c", "docker pull x || exit 0"],
        },
        {"id": "build", "name": DOCKER, "args": ["build", "-t", "x", "."], "waitFor": ["pull"]},
    ],
    "substitutions": {"_REPOSITORY": "ml-deploy"},
    "timeout": "1200s",
}


def gcloud_test(function):
    """Mark a test as running the real gcloud, and skip it where there is none."""
    for mark in needs_gcloud:
        function = mark(function)
    return function


@gcloud_test
def test_valid_config_is_accepted_at_the_credentials_step(tmp_path):
    verdict = gcloud_oracle.validate_build_config(write_config(tmp_path, VALID))
    assert verdict.kind == NEEDS_CREDENTIALS, verdict.message
    assert verdict.accepted


@gcloud_test
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["steps"][0].update(foo=1), ".steps[0].foo: unused"),
        (lambda c: c.update(step=c.pop("steps")), ".step: unused"),
        (lambda c: c["steps"][1].update(args=3), "Expected type <class 'str'> for field args"),
    ],
    ids=["unknown-step-key", "misspelt-top-key", "wrong-type"],
)
def test_invalid_config_is_rejected_with_gcloud_message(tmp_path, change, expected):
    config = yaml.safe_load(yaml.safe_dump(VALID))
    change(config)
    verdict = gcloud_oracle.validate_build_config(write_config(tmp_path, config))
    assert verdict.kind == REJECTED, verdict
    assert expected in verdict.message


@gcloud_test
def test_yaml_that_does_not_parse_is_rejected(tmp_path):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text("steps:\n  - name: x\n   args: [oops\n")
    verdict = gcloud_oracle.validate_build_config(path)
    assert verdict.kind == REJECTED


@gcloud_test
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["gcloud", "run", "deploy", "backend_v1", "--image=x"],
            "Invalid resource name [backend_v1]",
        ),
        (
            ["gcloud", "run", "deploy", "backend-v1", "--image=x", "--bogus"],
            "unrecognized arguments: --bogus",
        ),
        (["gcloud", "run", "deploy", "backend-v1", "--image=x", "--port=http"], "--port"),
        (["gcloud", "builds", "sumbit"], "Invalid choice: 'sumbit'"),
    ],
)
def test_usage_errors_are_rejected_with_gcloud_message(argv, expected):
    verdict = gcloud_oracle.check_command(argv)
    assert verdict.kind == REJECTED, verdict
    assert expected in verdict.message


@gcloud_test
def test_well_formed_deploy_stops_only_for_credentials():
    verdict = gcloud_oracle.check_command(
        [
            "gcloud", "run", "deploy", "frontend-v1",
            "--image=northamerica-northeast1-docker.pkg.dev/p/ml-deploy/frontend-v1:latest",
            "--region=northamerica-northeast1", "--port=8080", "--memory=512Mi", "--cpu=1",
            "--allow-unauthenticated", "--set-env-vars=SERVING_URL=https://backend-v1-x-nn.a.run.app",
        ]
    )  # fmt: skip
    assert verdict.kind == NEEDS_CREDENTIALS, verdict.message


@gcloud_test
def test_check_commands_applies_config_set_first_and_keeps_order():
    verdicts = gcloud_oracle.check_commands(
        [
            ["gcloud", "config", "get-value", "run/region"],
            ["gcloud", "run", "deploy", "bad_name", "--image=x"],
            ["gcloud", "config", "set", "run/region", "northamerica-northeast1"],
        ]
    )
    assert [v.kind for v in verdicts] == [ACCEPTED_OFFLINE, REJECTED, ACCEPTED_OFFLINE]
    # The `config set` took effect for the other commands, as in the script that ran them.
    assert verdicts[0].message == "northamerica-northeast1"


@gcloud_test
def test_list_files_for_upload_applies_gcloudignore(tmp_path):
    for relative in ("app/main.py", ".venv/lib/x.py", "tests/test_x.py", "key.json"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    (tmp_path / ".gcloudignore").write_text(".venv/\ntests/\n*.json\n")
    assert gcloud_oracle.list_files_for_upload(tmp_path) == [".gcloudignore", "app/main.py"]
