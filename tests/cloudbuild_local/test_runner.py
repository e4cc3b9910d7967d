"""Steps run in Cloud Build's order with real bash, and the log reads like Cloud Build's.

The host here is a scratch folder whose `docker` only echoes (the real engine
runs in tests/containers); the ordering, failure, cancelling, timeout and
logging are the runner's own and are exercised for real.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.cloudbuild_local import config
from tools.cloudbuild_local.runner import Log, Runner

BUILT_IN = {"PROJECT_ID": "p", "BUILD_ID": "b-1", "PROJECT_NUMBER": "1", "LOCATION": "global"}
DOCKER = "gcr.io/cloud-builders/docker"
FAKE_DOCKER = '#!/bin/sh\necho "docker $*"\n[ "$1" = fail ] && exit "$2"\nexit 0\n'


@dataclass
class ScratchHost:
    run_dir: Path
    pushes: list = field(default_factory=list)
    push_status: int = 0

    @property
    def workspace(self) -> Path:
        return self.run_dir / "workspace"

    def step_env(self, built_in):
        return {
            "PATH": f"{self.run_dir / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.run_dir),
            **built_in,
        }

    def push(self, reference):
        self.pushes.append(reference)
        return self.push_status, f"pushed {reference}"


def run(tmp_path, data, host=None):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(data))
    host = host or ScratchHost(tmp_path / "run")
    (host.run_dir / "bin").mkdir(parents=True, exist_ok=True)
    host.workspace.mkdir(exist_ok=True)
    (host.run_dir / "bin" / "docker").write_text(FAKE_DOCKER)
    (host.run_dir / "bin" / "docker").chmod(0o755)
    sink = io.StringIO()
    built = config.load(path, BUILT_IN, {})
    result = Runner(built, host, BUILT_IN, Log(sink)).run("b-1")
    return result, sink.getvalue().splitlines(), host


def bash(script, **more):
    return {"name": DOCKER, "entrypoint": "bash", "args": ["-c", script], **more}


def test_a_sequential_build_logs_like_cloud_build(tmp_path):
    result, lines, _ = run(
        tmp_path,
        {
            "steps": [
                bash("echo hello from $$BUILD_ID", id="greet"),
                {"name": DOCKER, "args": ["version"]},
            ]
        },
    )
    assert result.status == "SUCCESS"
    assert lines == [
        'Starting Step #0 - "greet"',
        'Step #0 - "greet": hello from b-1',
        'Finished Step #0 - "greet"',
        "Starting Step #1",
        "Step #1: docker version",
        "Finished Step #1",
        "DONE",
    ]


def _waits_for_marker(seconds):
    tries = int(seconds * 10)
    return f"for i in $$(seq {tries}); do [ -f started ] && exit 0; sleep 0.1; done; exit 1"


def test_a_dash_starts_a_step_with_the_build(tmp_path):
    """The first step can only succeed if the second runs at the same time."""
    result, _, _ = run(
        tmp_path,
        {
            "steps": [
                bash(_waits_for_marker(60), id="a"),
                bash("touch started", id="b", waitFor=["-"]),
            ]
        },
    )
    assert result.status == "SUCCESS", result


def test_without_wait_for_a_step_waits_for_the_ones_before(tmp_path):
    result, _, _ = run(
        tmp_path, {"steps": [bash(_waits_for_marker(2), id="a"), bash("touch started", id="b")]}
    )
    assert result.status == "FAILURE"
    assert [s.status for s in result.steps] == ["FAILURE", "QUEUED"]


def test_a_failing_step_fails_the_build_there(tmp_path):
    result, lines, _ = run(
        tmp_path,
        {"steps": [{"name": DOCKER, "args": ["fail", "3"], "id": "pull"}, bash("echo never")]},
    )
    assert (result.status, result.failed_step) == ("FAILURE", 0)
    assert [s.status for s in result.steps] == ["FAILURE", "QUEUED"]
    assert lines[-2:] == [
        "ERROR",
        'ERROR: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero '
        "status: 3",
    ]
    assert not any("never" in line for line in lines)


def test_allow_failure_lets_the_build_go_on(tmp_path):
    result, _, _ = run(
        tmp_path,
        {
            "steps": [
                bash("exit 4", allowFailure=True),
                bash("exit 5", allowExitCodes=[5]),
                bash("true"),
            ]
        },
    )
    assert result.status == "SUCCESS"
    assert [(s.status, s.allowed) for s in result.steps] == [
        ("FAILURE", True), ("FAILURE", True), ("SUCCESS", False),
    ]  # fmt: skip


def test_a_failure_cancels_the_steps_still_running(tmp_path):
    result, _, _ = run(
        tmp_path,
        {"steps": [bash("sleep 60", id="slow"), bash("exit 1", id="broken", waitFor=["-"])]},
    )
    assert result.status == "FAILURE"
    assert [s.status for s in result.steps] == ["CANCELLED", "FAILURE"]
    assert result.steps[0].seconds < 30


def test_a_step_past_its_timeout_is_stopped(tmp_path):
    result, lines, _ = run(tmp_path, {"steps": [bash("sleep 60", timeout="1s")]})
    assert (result.status, result.steps[0].status) == ("TIMEOUT", "TIMEOUT")
    assert "context deadline exceeded" in lines[-1]


def test_a_gcloud_step_is_recorded_not_run(tmp_path):
    step = {
        "name": "gcr.io/google.com/cloudsdktool/cloud-sdk",
        "entrypoint": "gcloud",
        "args": ["run", "deploy", "backend-v1", "--region=northamerica-northeast1"],
    }
    result, lines, host = run(tmp_path, {"steps": [step]})
    assert result.steps[0].status == "RECORDED"
    recorded = (host.run_dir / "gcloud-steps.txt").read_text()
    assert recorded == "gcloud run deploy backend-v1 --region=northamerica-northeast1\n"
    assert any("[emulation] not run: gcloud run deploy" in line for line in lines)


def test_images_are_pushed_after_the_steps_and_a_missing_one_fails(tmp_path):
    data = {"steps": [bash("true")], "images": ["gcr.io/$PROJECT_ID/app"]}
    result, lines, host = run(tmp_path, data)
    assert (result.status, host.pushes) == ("SUCCESS", ["gcr.io/p/app"])
    assert lines[-4:] == ["PUSH", "Pushing gcr.io/p/app", "pushed gcr.io/p/app", "DONE"]
    failing = ScratchHost(tmp_path / "again", push_status=1)
    result, lines, _ = run(tmp_path, data, failing)
    assert result.status == "FAILURE"
    assert "failed to find one or more images after execution of build steps" in lines[-1]
