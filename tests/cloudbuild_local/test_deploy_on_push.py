"""The reference deploy-on-push config (solution/extensions) through cloudbuild-local's
runner: Q1's build and push steps run in order, the Cloud SDK deploy step is recorded,
not run, with this build's image. tests/containers runs it with the real engine."""

from __future__ import annotations

import yaml

from tests.cloudbuild_local.test_runner import BUILT_IN, run
from tests.deployment import kit

CONFIG = kit.REPO_ROOT / "solution" / "extensions" / "cloudbuild_deploy_backend_v1.yaml"
IMAGE = "northamerica-northeast1-docker.pkg.dev/p/ml-deploy/backend-v1"


def test_the_build_and_push_steps_run_and_the_deploy_is_recorded(tmp_path):
    result, lines, host = run(tmp_path, yaml.safe_load(CONFIG.read_text()))
    assert result.status == "SUCCESS", lines
    *built, deploy = result.steps
    assert {step.status for step in built} == {"SUCCESS"}
    assert deploy.status == "RECORDED"
    ran = [line.split(": ", 1)[1] for line in lines if ": docker " in line]
    assert f"docker push --all-tags {IMAGE}" in ran, ran
    [app_build] = [line for line in ran if line.startswith("docker build --file=backend_v1/")]
    assert f"--tag={IMAGE}:{BUILT_IN['BUILD_ID']}" in app_build
    [recorded] = (host.run_dir / "gcloud-steps.txt").read_text().splitlines()
    assert recorded.startswith("gcloud run deploy backend-v1 ")
    assert f"--image={IMAGE}:{BUILT_IN['BUILD_ID']}" in recorded  # this build's image
    assert "--region=northamerica-northeast1" in recorded
