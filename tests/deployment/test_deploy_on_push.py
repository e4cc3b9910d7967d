"""The GitHub Actions template for deploy on push: actionlint, and gcloud on its commands."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
import yaml

from autograder import gcloud_oracle
from tests.deployment import kit

TEMPLATE = kit.REPO_ROOT / "deployment" / "deploy_on_push_workflow_template.yml"
BIN = kit.REPO_ROOT / ".venv" / "bin"
# What a student fills in, shaped like the real values.
FILLED = {
    "PROJECT_ID": "student-project-123",
    "WORKLOAD_IDENTITY_PROVIDER": (
        "projects/123456789012/locations/global/workloadIdentityPools/github/providers/github"
    ),
    "SERVICE_ACCOUNT": "github-actions@student-project-123.iam.gserviceaccount.com",
    "BUILD_SERVICE_ACCOUNT": "cloudbuild-deployer@student-project-123.iam.gserviceaccount.com",
    "BUILD_CONFIG": "deployment/extensions/cloudbuild_deploy_backend_v1.yaml",
}


def actionlint(path) -> subprocess.CompletedProcess:
    # With shellcheck given, actionlint also checks each `run:` script.
    return subprocess.run(
        [str(BIN / "actionlint"), "-shellcheck", str(BIN / "shellcheck"), str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_template_passes_actionlint():
    result = actionlint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_mistyped_input_and_a_bad_permission(tmp_path):
    broken = tmp_path / "deploy.yml"
    text = TEMPLATE.read_text()
    broken.write_text(
        text.replace("workload_identity_provider:", "workload_identity_providr:").replace(
            "id-token: write", "id-token: writ"
        )
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'input "workload_identity_providr" is not defined' in result.stdout
    assert '"writ" is invalid as permission of scope "id-token"' in result.stdout


def test_it_signs_in_without_a_key_and_is_not_active_here():
    workflow = yaml.safe_load(TEMPLATE.read_text())
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    assert workflow[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    steps = workflow["jobs"]["deploy"]["steps"]
    [auth] = [s for s in steps if s.get("uses", "").startswith("google-github-actions/auth@")]
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    assert "credentials_json" not in TEMPLATE.read_text()
    assert set(FILLED) <= {k for k, v in workflow["env"].items() if v == "FILL-ME"}
    assert not (kit.REPO_ROOT / ".github" / "workflows").exists()


def gcloud_commands(workflow: dict, env: dict[str, str]) -> list[list[str]]:
    """The gcloud commands of the `run:` steps, with the workflow's variables filled in."""
    commands = []
    for step in workflow["jobs"]["deploy"]["steps"]:
        script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
        for line in script.splitlines():
            words = shlex.split(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], line))
            if words[:1] == ["gcloud"]:
                commands.append(words)
    return commands


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_real_gcloud_accepts_its_commands_once_filled_in(tmp_path):
    workflow = yaml.safe_load(TEMPLATE.read_text())
    env = {**workflow["env"], **FILLED}
    commands = gcloud_commands(workflow, env)
    assert [c[:3] for c in commands] == [
        ["gcloud", "builds", "submit"],
        ["gcloud", "run", "services"],
    ]
    config = tmp_path / FILLED["BUILD_CONFIG"]
    config.parent.mkdir(parents=True)
    config.write_text("steps:\n- name: gcr.io/cloud-builders/docker\n  args: [version]\n")
    for verdict in gcloud_oracle.check_commands(commands, cwd=tmp_path):
        assert verdict.accepted, f"{' '.join(verdict.argv)}\n{verdict.message}"


def test_the_template_follows_githubs_workflow_schema():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(TEMPLATE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
