"""`make cloudbuild-local` on the reference configs and on broken ones, with the real engine.

One registry serves the whole module, as one Artifact Registry repository
serves a student's builds, so later builds find what earlier ones pushed:
  - a first build whose pull does not tolerate a missing image fails there;
  - frontend_v1 builds cold, then again with every base instruction cached;
  - frontend_v2 and the gateway build end to end; a misspelled build argument
    fails the app build;
  - the backends: their base, as `make images` built it (same Dockerfile,
    same build arguments), is pushed to the registry first, as if an earlier
    Cloud Build had pushed it, so that the CUDA-sized stand-in base is built
    once, not twice; both backend configs then run end to end from its cache.
    Pushing and pulling that base moves gigabytes: a quick run by hand may
    leave this one out (marker by_hand); `make test-containers` and CI run it. The deploy-on-push
    reference (Going further) runs last, from the same cache: its deploy
    step is recorded, never run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.containers.conftest import record
from tests.deployment import kit
from tools.cloudbuild_local import docker_cli
from tools.cloudbuild_local.registry import Registry
from tools.cloudbuild_local.worker import push_build_cache
from tools.images import build, plan
from tools.images.engine import DaemonlessEngine, unmount_below

# A whole local Cloud Build, cold, on a busy 2-core machine outlasts the suite's 300 s.
RUN_TIMEOUT = 3600
pytestmark = [pytest.mark.containers, pytest.mark.timeout(2 * RUN_TIMEOUT)]

PROJECT = "test-project"
AR = f"northamerica-northeast1-docker.pkg.dev/{PROJECT}/ml-deploy"
SOLUTION = kit.REPO_ROOT / "solution"


@pytest.fixture(scope="module")
def folder():
    path = build.images_dir().parent / "cloudbuild-local-tests"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    unmount_below(path)  # what a failed run may have left mounted
    shutil.rmtree(path, ignore_errors=True)


def cloudbuild_local(folder, config, *flags):
    """Run it as `make cloudbuild-local` does; (exit status, output, last-run.json)."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.cloudbuild_local", str(config), "--project", PROJECT,
         "--stand-ins", "--dir", str(folder), *flags],
        cwd=kit.REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    summary = folder / "last-run.json"
    return result.returncode, output, json.loads(summary.read_text()) if summary.exists() else {}


def variant(tmp_path, reference: str, change) -> str:
    config = yaml.safe_load((SOLUTION / reference).read_text())
    change(config)
    path = tmp_path / reference.replace("/", "_")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def step_seconds(summary: dict, step_id: str) -> float:
    return next(s["seconds"] for s in summary["steps"] if s["id"] == step_id)


def base_build(summary: dict) -> dict:
    index = next(s["index"] for s in summary["steps"] if s["id"] == "build-base")
    return next(b for b in summary["docker_builds"] if b["step"] == index)


def test_a_first_build_whose_pull_does_not_tolerate_absence_fails_at_the_pull(folder, tmp_path):
    def untolerant(config):
        config["steps"][0]["args"][1] = config["steps"][0]["args"][1].replace("|| exit 0", "")

    config = variant(tmp_path, "cloudbuild_frontend_v1.yaml", untolerant)
    status, output, summary = cloudbuild_local(folder, config, "--fresh-registry")
    assert status == 1, output
    assert summary["failed_step"] == 0, output
    assert [s["status"] for s in summary["steps"]] == ["FAILURE", *["QUEUED"] * 4]
    assert 'ERROR: build step 0 "gcr.io/cloud-builders/docker" failed' in output
    assert f"manifest for {AR}/frontend-base:latest not found" in output
    assert "Starting Step #1" not in output


def test_frontend_v1_builds_cold_then_reuses_the_pushed_base(folder):
    config = SOLUTION / "cloudbuild_frontend_v1.yaml"
    status, output, cold = cloudbuild_local(folder, config)
    assert status == 0, output
    assert "an emulation of Cloud Build" in output
    assert base_build(cold)["cached"] == 0
    status, output, cached = cloudbuild_local(folder, config)
    assert status == 0, output
    again = base_build(cached)
    assert again["cached"] == again["instructions"] > 0, output
    record(
        "cloudbuild frontend_v1",
        build_base_cold_s=step_seconds(cold, "build-base"),
        build_base_cached_s=step_seconds(cached, "build-base"),
        whole_build_cold_s=round(cold["seconds"], 1),
        whole_build_cached_s=round(cached["seconds"], 1),
    )


def test_a_misspelled_build_argument_fails_the_app_build(folder, tmp_path):
    def misspelled(config):
        args = config["steps"][3]["args"]
        config["steps"][3]["args"] = [a.replace("BASE_IMAGE=", "BASEIMAGE=") for a in args]

    config = variant(tmp_path, "cloudbuild_frontend_v2.yaml", misspelled)
    status, output, summary = cloudbuild_local(folder, config)
    assert status == 1, output
    assert summary["failed_step"] == 3, output
    assert "build-args ['BASEIMAGE'] were not consumed" in output


@pytest.mark.parametrize("config", ["cloudbuild_frontend_v2.yaml", "v3/cloudbuild_v3_gateway.yaml"])
def test_more_reference_configs_run_end_to_end(folder, config):
    status, output, summary = cloudbuild_local(folder, SOLUTION / config)
    assert status == 0, output
    assert [s["status"] for s in summary["steps"]] == ["SUCCESS"] * 5
    record(f"cloudbuild {config}", whole_build_s=round(summary["seconds"], 1))


@pytest.mark.by_hand
def test_the_backend_configs_run_end_to_end_from_the_pushed_base(folder, engine):
    if not isinstance(engine, DaemonlessEngine):
        pytest.skip("seeding the registry is written for buildah's store")
    registry = Registry(folder / "registry")
    registry.start()
    try:
        local = plan.BY_NAME["backend-base"].reference
        remote = docker_cli.to_local(f"{AR}/backend-base:latest", registry.host)
        seeding = DaemonlessEngine(root=engine.root, insecure_registries=(registry.host,))
        seeding.image("tag", local, remote)
        seeding.image("push", remote, timeout=RUN_TIMEOUT)
        push_build_cache(seeding, registry, remote)
        seeding.image("rmi", remote, check=False)
    finally:
        registry.stop()
    for component in ("backend_v1", "backend_v2"):
        status, output, summary = cloudbuild_local(
            folder, SOLUTION / f"cloudbuild_{component}.yaml"
        )
        assert status == 0, output
        cached = base_build(summary)
        assert cached["cached"] == cached["instructions"] > 0, output
        record(
            f"cloudbuild {component}",
            pull_base_s=step_seconds(summary, "pull-base"),
            build_base_cached_s=step_seconds(summary, "build-base"),
            whole_build_s=round(summary["seconds"], 1),
        )
    # Deploy on push (Going further): the same build from the same cache, then the
    # Cloud SDK deploy step, recorded with this build's image and never run.
    config = SOLUTION / "extensions" / "cloudbuild_deploy_backend_v1.yaml"
    status, output, summary = cloudbuild_local(folder, config)
    assert status == 0, output
    assert [s["status"] for s in summary["steps"]] == ["SUCCESS"] * 5 + ["RECORDED"]
    assert "[emulation] not run: gcloud run deploy backend-v1 --image=" in output
