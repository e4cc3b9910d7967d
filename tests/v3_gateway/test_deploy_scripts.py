"""solution/v3: the reference deploy of v3, run with a recording gcloud, its
commands replayed through the real gcloud's parser (offline)."""

from __future__ import annotations

import subprocess

import pytest

from autograder import gcloud_oracle
from autograder.script_runner import run_script
from tests.support.servers import REPO_ROOT
from v3_gateway.settings import GatewaySettings

SCRIPTS = sorted(
    p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "solution/v3").glob("*.sh")
)
REGISTRY = "northamerica-northeast1-docker.pkg.dev/{project}/ml-deploy"
MODEL_SERVICES = {"efficientnet_lite0": "model-efficientnet-lite0", "resnet18": "model-resnet18"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_strict_bash_and_shellcheck_clean(script):
    path = REPO_ROOT / script
    assert path.read_text().splitlines()[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in path.read_text()
    assert path.stat().st_mode & 0o111, f"chmod +x {script}"
    lint = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/shellcheck"), "--severity=style", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


@pytest.fixture(scope="module")
def full_run():
    run = run_script("solution/v3/deploy_v3.sh", tree=REPO_ROOT)
    assert run.exit_code == 0, run.stderr
    return run


def deploys(run) -> dict[str, object]:
    return {c.argv[2]: c for c in run.gcloud_calls if c.argv[:2] == ("run", "deploy")}


def env_vars(call) -> dict[str, str]:
    """--set-env-vars, with gcloud's `^DELIM^` escape for values holding commas."""
    raw = call.flag("--set-env-vars") or ""
    delimiter = ","
    if raw.startswith("^"):
        delimiter, raw = raw[1:].split("^", 1)
    return dict(item.split("=", 1) for item in raw.split(delimiter))


def test_one_service_per_model_from_the_backend_v1_image(full_run):
    registry = REGISTRY.format(project=full_run.project)
    services = deploys(full_run)
    assert list(services) == [*MODEL_SERVICES.values(), "v3-gateway", "frontend-v3"]
    for model, service in MODEL_SERVICES.items():
        call = services[service]
        assert call.flag("--image") == f"{registry}/backend-v1:latest"
        assert env_vars(call)["MODEL_NAME"] == model
        assert call.flag("--region") == "northamerica-northeast1"


def test_gateway_routes_to_the_deployed_model_urls(full_run):
    services = deploys(full_run)
    described = {
        c.argv[3] for c in full_run.gcloud_calls if c.argv[:3] == ("run", "services", "describe")
    }
    assert set(MODEL_SERVICES.values()) <= described  # URLs asked of Cloud Run, not pasted
    gateway = services["v3-gateway"]
    assert (
        gateway.flag("--image") == REGISTRY.format(project=full_run.project) + "/v3-gateway:latest"
    )
    # The value the gateway will read, parsed by the gateway's own settings.
    routes = GatewaySettings(model_services=env_vars(gateway)["MODEL_SERVICES"]).routes
    assert list(routes) == list(MODEL_SERVICES)
    for model, route in routes.items():
        assert route.url.startswith(f"https://{MODEL_SERVICES[model]}-")
    frontend = services["frontend-v3"]
    assert (
        frontend.flag("--image")
        == REGISTRY.format(project=full_run.project) + "/frontend-v2:latest"
    )
    assert env_vars(frontend)["SERVING_URL"].startswith("https://v3-gateway-")


def test_api_gateway_script_fills_every_address(tmp_path):
    run = run_script("solution/v3/deploy_api_gateway_v3.sh", tree=REPO_ROOT)
    assert run.exit_code == 0, run.stderr
    assert any(c.argv[:3] == ("api-gateway", "api-configs", "create") for c in run.gcloud_calls)
    # A model in openapi.yaml that is not deployed stops the script with the reason.
    partial = run_script(
        "solution/v3/deploy_api_gateway_v3.sh", tree=REPO_ROOT, env={"MODELS": "resnet18"}
    )
    assert partial.exit_code != 0
    assert "MODEL_URL_efficientnet_lite0" in partial.stderr
    assert not any(c.argv[:1] == ("api-gateway",) for c in partial.gcloud_calls)


@pytest.mark.gcloud
def test_real_gcloud_accepts_the_commands_and_the_build_config(full_run):
    build = gcloud_oracle.validate_build_config(
        REPO_ROOT / "solution/v3/cloudbuild_v3_gateway.yaml"
    )
    assert build.accepted, build.message
    commands = [c.command for c in full_run.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    for verdict in gcloud_oracle.check_commands(commands):
        assert verdict.accepted, f"{' '.join(verdict.argv)}\n{verdict.message}"
