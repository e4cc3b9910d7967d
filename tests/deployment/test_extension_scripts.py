"""solution/extensions: the reference "Going further" scripts and the deploy-on-push config.

Each script runs with the recording gcloud (autograder/script_runner), its
commands are checked for what the exercise needs, and every gcloud command is
replayed through the real gcloud's parser offline (marked `gcloud`).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from autograder import gcloud_oracle
from autograder.script_runner import run_script
from tests.deployment import kit

EXTENSIONS = kit.REPO_ROOT / "solution" / "extensions"
SCRIPTS = sorted(p.relative_to(kit.REPO_ROOT).as_posix() for p in EXTENSIONS.glob("*.sh"))
DEPLOY_CONFIG = EXTENSIONS / "cloudbuild_deploy_backend_v1.yaml"
REGION = "northamerica-northeast1"
SHELLCHECK = kit.REPO_ROOT / ".venv" / "bin" / "shellcheck"
ENV = {
    "GITHUB_OWNER": "ada",
    "GITHUB_REPO": "ml-deploy-work",
    "GITHUB_REPOSITORY": "ada/ml-deploy-work",
    "WEIGHTS_FILE": "/home/ada/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth",
}


def run(script: str, **env: str):
    result = run_script(f"solution/extensions/{script}", tree=kit.REPO_ROOT, env={**ENV, **env})
    assert result.exit_code == 0, result.stderr
    return result


def calls(result, *prefix: str) -> list:
    return [c for c in result.gcloud_calls if c.argv[: len(prefix)] == prefix]


def project_of(result) -> str:
    return result.project


@pytest.fixture(scope="module")
def runs():
    return {
        "private_backend": run("deploy_backend_v1_private.sh"),
        "private_frontend": run("deploy_frontend_v1_private.sh"),
        "v3_private": run("deploy_v3_private.sh"),
        "trigger": run("create_trigger.sh"),
        "wif": run("setup_github_wif.sh"),
        "gcs": run("deploy_backend_v1_gcs.sh"),
        "gcs_mount": run("deploy_backend_v1_gcs.sh", MOUNT="1"),
        "teardown": run("teardown.sh"),
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_strict_bash_and_shellcheck_clean(script):
    text = (kit.REPO_ROOT / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    lint = subprocess.run(
        [str(SHELLCHECK), "--severity=style", script],
        cwd=kit.REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout


def test_the_private_backend_is_its_own_service_without_public_access(runs):
    [deploy] = calls(runs["private_backend"], "run", "deploy")
    assert deploy.argv[2] == "backend-v1-private"  # the graded backend-v1 stays public
    assert "--no-allow-unauthenticated" in deploy.argv
    assert "--allow-unauthenticated" not in deploy.argv
    assert deploy.flag("--region") == REGION


def test_the_frontend_runs_as_its_own_account_that_may_invoke_only_the_backend(runs):
    result = runs["private_frontend"]
    account = f"frontend-v1-private@{result.project}.iam.gserviceaccount.com"
    [create] = calls(result, "iam", "service-accounts", "create")
    assert create.argv[3] == "frontend-v1-private"
    [binding] = calls(result, "run", "services", "add-iam-policy-binding")
    assert binding.argv[3] == "backend-v1-private"
    assert binding.flag("--member") == f"serviceAccount:{account}"
    assert binding.flag("--role") == "roles/run.invoker"
    assert not calls(result, "projects", "add-iam-policy-binding")  # on the service only
    [deploy] = calls(result, "run", "deploy")
    assert deploy.argv[2] == "frontend-v1-private"
    assert deploy.flag("--service-account") == account
    env = dict(item.split("=", 1) for item in deploy.flag("--set-env-vars").split(","))
    assert env["BACKEND_AUTH"] == "id-token"
    assert env["SERVING_URL"].startswith("https://backend-v1-private-")
    order = [c.argv[:2] for c in result.gcloud_calls]
    assert order.index(("run", "services")) < order.index(("run", "deploy"))


def test_v3_private_models_are_invoked_only_by_the_gateways_account(runs):
    result = runs["v3_private"]
    account = f"v3-gateway@{result.project}.iam.gserviceaccount.com"
    deploys = {c.argv[2]: c for c in calls(result, "run", "deploy")}
    models = [name for name in deploys if name.startswith("model-")]
    assert models == ["model-efficientnet-lite0", "model-resnet18"]
    for model in models:
        assert "--no-allow-unauthenticated" in deploys[model].argv
        assert "--allow-unauthenticated" not in deploys[model].argv
    bindings = calls(result, "run", "services", "add-iam-policy-binding")
    assert sorted(b.argv[3] for b in bindings) == models
    assert {b.flag("--member") for b in bindings} == {f"serviceAccount:{account}"}
    assert {b.flag("--role") for b in bindings} == {"roles/run.invoker"}
    gateway = deploys["v3-gateway"]
    assert gateway.flag("--service-account") == account
    assert gateway.flag("--set-env-vars").endswith(";BACKEND_AUTH=id-token")
    assert "--allow-unauthenticated" in gateway.argv  # the gateway itself stays public


def test_v3_stays_public_without_the_switch():
    result = run_script("solution/v3/deploy_models_v3.sh", tree=kit.REPO_ROOT)
    for deploy in calls(result, "run", "deploy"):
        assert "--allow-unauthenticated" in deploy.argv


def test_the_deploy_on_push_config_is_q1s_build_and_one_deploy_step():
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    q1 = yaml.safe_load((kit.REPO_ROOT / "solution/cloudbuild_backend_v1.yaml").read_text())
    *build, deploy = config["steps"]
    assert build == q1["steps"]  # the same five steps as the graded build
    assert deploy["name"].startswith("gcr.io/google.com/cloudsdktool/cloud-sdk")
    assert deploy["entrypoint"] == "gcloud"
    assert deploy["args"][:3] == ["run", "deploy", "backend-v1"]
    image = "northamerica-northeast1-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/backend-v1"
    assert f"--image={image}:$BUILD_ID" in deploy["args"]  # this build's image, not latest
    assert deploy["waitFor"] == ["push-app"]
    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_the_trigger_runs_that_config_on_main_as_the_build_account(runs):
    result = runs["trigger"]
    [trigger] = calls(result, "builds", "triggers", "create", "github")
    assert trigger.flag("--repo-owner") == "ada"
    assert trigger.flag("--repo-name") == "ml-deploy-work"
    assert trigger.flag("--branch-pattern") == "^main$"
    assert trigger.flag("--build-config") == "solution/extensions/cloudbuild_deploy_backend_v1.yaml"
    builder = f"cloudbuild-deployer@{result.project}.iam.gserviceaccount.com"
    assert trigger.flag("--service-account") == (
        f"projects/{result.project}/serviceAccounts/{builder}"
    )
    roles = {c.flag("--role") for c in calls(result, "projects", "add-iam-policy-binding")}
    assert roles == {
        "roles/artifactregistry.writer",
        "roles/logging.logWriter",
        "roles/run.developer",
    }
    [act_as] = calls(result, "iam", "service-accounts", "add-iam-policy-binding")
    assert act_as.argv[3].endswith("-compute@developer.gserviceaccount.com")


def test_a_missing_github_repository_stops_the_trigger_script_with_the_reason():
    result = run_script("solution/extensions/create_trigger.sh", tree=kit.REPO_ROOT, env={})
    assert result.exit_code != 0
    assert "set GITHUB_OWNER" in result.stderr
    assert not result.gcloud_calls


def test_workload_identity_trusts_one_repository_and_grants_no_deploy_rights(runs):
    result = runs["wif"]
    [provider] = calls(result, "iam", "workload-identity-pools", "providers", "create-oidc")
    assert provider.flag("--issuer-uri") == "https://token.actions.githubusercontent.com"
    assert provider.flag("--attribute-condition") == "assertion.repository == 'ada/ml-deploy-work'"
    bindings = calls(result, "iam", "service-accounts", "add-iam-policy-binding")
    federation = [b for b in bindings if b.flag("--role") == "roles/iam.workloadIdentityUser"]
    [member] = [b.flag("--member") for b in federation]
    assert member.startswith("principalSet://iam.googleapis.com/projects/")
    assert member.endswith("/attribute.repository/ada/ml-deploy-work")
    github = f"serviceAccount:github-actions@{result.project}.iam.gserviceaccount.com"
    github_roles = {
        c.flag("--role")
        for c in calls(result, "projects", "add-iam-policy-binding")
        if c.flag("--member") == github
    }
    assert "roles/run.developer" not in github_roles  # the build deploys, not the workflow
    assert "roles/cloudbuild.builds.editor" in github_roles
    assert "WORKLOAD_IDENTITY_PROVIDER: projects/" in result.stdout


def test_weights_from_the_bucket_by_library_or_by_volume(runs):
    for name, weights in (
        ("gcs", "gs://{p}-models/resnet50.pth"),
        ("gcs_mount", "/mnt/models/resnet50.pth"),
    ):
        result = runs[name]
        [upload] = calls(result, "storage", "cp")
        assert upload.argv[3] == f"gs://{result.project}-models/resnet50.pth"
        [reader] = calls(result, "storage", "buckets", "add-iam-policy-binding")
        assert reader.flag("--role") == "roles/storage.objectViewer"
        [deploy] = calls(result, "run", "deploy")
        assert deploy.argv[2] == "backend-v1-gcs"
        assert f"MODEL_WEIGHTS={weights.format(p=result.project)}" in deploy.flag("--set-env-vars")
        assert deploy.flag("--service-account").startswith("backend-v1-gcs@")
    [mounted] = calls(runs["gcs_mount"], "run", "deploy")
    assert mounted.flag("--add-volume") == (
        f"name=models,type=cloud-storage,bucket={runs['gcs_mount'].project}-models,readonly=true"
    )
    assert mounted.flag("--add-volume-mount") == "volume=models,mount-path=/mnt/models"
    [plain] = calls(runs["gcs"], "run", "deploy")
    assert plain.flag("--add-volume") is None


def test_teardown_removes_the_extras_and_leaves_the_graded_services(runs):
    result = runs["teardown"]
    deleted = {c.argv[3] for c in calls(result, "run", "services", "delete")}
    assert {"backend-v1-private", "frontend-v1-private", "backend-v1-gcs", "v3-gateway"} <= deleted
    assert not deleted & {"backend-v1", "frontend-v1", "backend-v2", "frontend-v2"}
    assert calls(result, "builds", "triggers", "delete")
    assert calls(result, "iam", "workload-identity-pools", "delete")
    accounts = {c.argv[3].split("@")[0] for c in calls(result, "iam", "service-accounts", "delete")}
    assert accounts == {
        "frontend-v1-private", "backend-v1-gcs", "v3-gateway", "cloudbuild-deployer",
        "github-actions",
    }  # fmt: skip
    assert calls(result, "storage", "rm")


def parser_shape(command: tuple[str, ...]) -> tuple:
    """What gcloud's parser sees of a command: its group and verb, and which flags it has
    (a loop granting five roles is one shape: replaying it once says as much)."""
    flags = tuple(sorted({word.split("=", 1)[0] for word in command if word.startswith("--")}))
    return command[1:4], flags


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_real_gcloud_accepts_every_command_and_the_config(runs):
    build = gcloud_oracle.validate_build_config(DEPLOY_CONFIG)
    assert build.accepted, build.message
    shapes = {}
    for result in runs.values():
        for call in result.gcloud_calls:
            if call.argv[:1] != ("config",):
                shapes.setdefault(parser_shape(call.command), call.command)
    # gcloud runs confined and sees only a copy of the tree the scripts ran in.
    commands = sorted(shapes.values())
    for verdict in gcloud_oracle.check_commands(commands, tree=kit.REPO_ROOT, cwd=kit.REPO_ROOT):
        assert verdict.accepted, f"{' '.join(verdict.argv)}\n{verdict.message}"
