"""Reading a config as Cloud Build does: fields, step order, builders, substitutions."""

from pathlib import Path

import pytest
import yaml

from tools.cloudbuild_local import config
from tools.cloudbuild_local.config import ConfigError
from tools.cloudbuild_local.substitution import SubstitutionError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = {"PROJECT_ID": "p", "BUILD_ID": "b", "PROJECT_NUMBER": "1", "LOCATION": "global"}
DOCKER = "gcr.io/cloud-builders/docker"


def load(tmp_path, data, given=None):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(data))
    return config.load(path, BUILT_IN, given or {})


def step(id_=None, wait_for=None, **more):
    found = {"name": DOCKER, "args": ["version"], **more}
    if id_:
        found["id"] = id_
    if wait_for is not None:
        found["waitFor"] = wait_for
    return found


def test_without_wait_for_each_step_waits_for_every_earlier_one(tmp_path):
    built = load(tmp_path, {"steps": [step(), step(), step()]})
    assert built.dependencies() == {0: [], 1: [0], 2: [0, 1]}


def test_dash_starts_a_step_at_once_and_ids_name_what_it_waits_for(tmp_path):
    built = load(
        tmp_path,
        {"steps": [step("a"), step("b", ["-"]), step("c", ["a"]), step("d"), step("e", [])]},
    )
    assert built.dependencies() == {0: [], 1: [], 2: [0], 3: [0, 1, 2], 4: [0, 1, 2, 3]}


def test_waiting_for_a_later_or_unknown_step_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not the id of an earlier step"):
        load(tmp_path, {"steps": [step("a", ["b"]), step("b")]})


def test_the_reference_configs_load_with_their_defaults():
    graded = (REPO_ROOT / "solution").rglob("cloudbuild_*.yaml")
    # Going further's deploy-on-push config adds a deploy step (test_deploy_on_push.py).
    for path in sorted(p for p in graded if "extensions" not in p.parts):
        built = config.load(path, BUILT_IN, {})
        assert [s.kind for s in built.steps] == ["shell", "docker", "docker", "docker", "docker"]
        assert "northamerica-northeast1-docker.pkg.dev/p/ml-deploy/" in built.steps[0].args[1]
        assert built.steps[3].args[-2].endswith(":latest")
        assert built.timeout in (900.0, 1800.0)


def test_substitutions_are_applied_to_the_steps_and_images(tmp_path):
    built = load(
        tmp_path,
        {
            "substitutions": {"_REPO": "r"},
            "steps": [step(args=["push", "h/$PROJECT_ID/${_REPO}/i:$BUILD_ID"], env=["X=$_REPO"])],
            "images": ["h/$PROJECT_ID/$_REPO/i"],
        },
        given={"_REPO": "mine"},
    )
    assert built.steps[0].args == ["push", "h/p/mine/i:b"]
    assert built.steps[0].env == ["X=mine"]
    assert built.images == ["h/p/mine/i"]


def test_a_bash_step_with_an_unescaped_variable_is_refused_before_it_runs(tmp_path):
    with pytest.raises(SubstitutionError, match='"TAG"'):
        load(tmp_path, {"steps": [step(entrypoint="bash", args=["-c", "TAG=1; echo $TAG"])]})


def test_builders_docker_bash_gcloud(tmp_path):
    built = load(
        tmp_path,
        {
            "steps": [
                step(),
                step(entrypoint="bash", args=["-c", "docker pull x || exit 0"]),
                {"name": "gcr.io/google.com/cloudsdktool/cloud-sdk", "entrypoint": "gcloud",
                 "args": ["run", "deploy", "s"]},
                {"name": "gcr.io/cloud-builders/gcloud", "args": ["version"]},
            ]
        },
    )  # fmt: skip
    assert [s.kind for s in built.steps] == ["docker", "shell", "gcloud", "gcloud"]


@pytest.mark.parametrize("name", ["python:3.11", "gcr.io/kaniko-project/executor", "ubuntu"])
def test_other_builders_are_refused_with_the_reason(tmp_path, name):
    with pytest.raises(ConfigError, match=f"uses the builder '{name}'.*cannot stand in"):
        load(tmp_path, {"steps": [step(), {"name": name, "args": ["x"]}]})


def test_an_unknown_field_is_refused_as_gcloud_refuses_it(tmp_path):
    with pytest.raises(ConfigError, match=r"\.steps\[0\]\.wait_for: unused"):
        load(tmp_path, {"steps": [{"name": DOCKER, "args": ["version"], "wait_for": ["-"]}]})


def test_secrets_are_refused_as_not_emulated(tmp_path):
    with pytest.raises(ConfigError, match="Secret Manager secrets"):
        load(tmp_path, {"steps": [step(secretEnv=["TOKEN"])], "availableSecrets": {}})


def test_allow_failure_and_allowed_exit_codes(tmp_path):
    built = load(
        tmp_path,
        {"steps": [step(allowFailure=True), step(allowExitCodes=[3]), step()]},
    )
    first, second, third = built.steps
    assert first.failure_allowed(1)
    assert second.failure_allowed(3)
    assert not second.failure_allowed(1)
    assert not third.failure_allowed(1)


def test_timeouts(tmp_path):
    built = load(tmp_path, {"steps": [step(timeout="30s")], "timeout": "1800s"})
    assert (built.timeout, built.steps[0].timeout) == (1800.0, 30.0)
    assert load(tmp_path, {"steps": [step()]}).timeout == config.DEFAULT_BUILD_TIMEOUT
    with pytest.raises(ConfigError, match="not a duration"):
        load(tmp_path, {"steps": [step()], "timeout": "half an hour"})
