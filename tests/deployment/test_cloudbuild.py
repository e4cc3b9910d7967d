"""The Cloud Build configs: the template and the four reference solutions.

Each is checked three ways: by check-jsonschema's vendored Cloud Build schema,
by the real gcloud's own config parser (offline, see autograder/gcloud_oracle),
and for the shape the assignment asks for (pull, cached base build, push,
app build FROM the base, push). The template gives each Q1 step's builder and
purpose and leaves its arguments, and the whole of Q2's step, to the student.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from autograder import gcloud_oracle
from tests.deployment import kit

CHECK_JSONSCHEMA = kit.REPO_ROOT / ".venv" / "bin" / "check-jsonschema"
TEMPLATE = "deployment/cloudbuild_template.yaml"
SOLUTIONS = {c: f"solution/cloudbuild_{c}.yaml" for c in kit.GRADED}
ALL_CONFIGS = [TEMPLATE, *SOLUTIONS.values()]
STEP_IDS = ["pull-base", "build-base", "push-base", "build-app", "push-app"]
Q1_STEP_IDS = STEP_IDS[1:]  # without Q2's cache step


def load(config: str) -> dict:
    return yaml.safe_load((kit.REPO_ROOT / config).read_text())


def steps_by_id(config: str) -> dict[str, dict]:
    return {step["id"]: step for step in load(config)["steps"]}


def schema_check(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.cloudbuild", *map(str, paths)],
        cwd=kit.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_configs_match_the_cloudbuild_schema():
    result = schema_check(*ALL_CONFIGS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path):
    config = load(SOLUTIONS["backend_v1"])
    config["steps"][0]["wait_for"] = ["-"]  # snake_case: not a Cloud Build field
    broken = tmp_path / "cloudbuild.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = schema_check(broken)
    assert result.returncode != 0
    assert "wait_for" in result.stdout


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloud_accepts_every_config():
    with ThreadPoolExecutor(max_workers=gcloud_oracle.DEFAULT_WORKERS) as pool:
        verdicts = list(
            pool.map(gcloud_oracle.validate_build_config, [kit.REPO_ROOT / c for c in ALL_CONFIGS])
        )
    for config, verdict in zip(ALL_CONFIGS, verdicts, strict=True):
        assert verdict.accepted, f"{config}: {verdict.kind}: {verdict.message}"


@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_step_ids_are_unique_and_every_wait_for_names_an_earlier_step(config):
    seen: list[str] = []
    for step in load(config)["steps"]:
        assert step["id"] not in seen, f"duplicate id {step['id']}"
        for waited in step.get("waitFor", []):
            assert waited == "-" or waited in seen, f"{step['id']} waits for unknown {waited}"
        seen.append(step["id"])
    # The template leaves out Q2's step, which students add first.
    assert seen == (Q1_STEP_IDS if config == TEMPLATE else STEP_IDS)


@pytest.mark.parametrize("component", list(SOLUTIONS))
def test_solution_builds_the_base_with_cache_then_the_app_from_it(component):
    steps = steps_by_id(SOLUTIONS[component])
    comp = kit.COMPONENTS[component]
    base_image = kit.REGISTRY + comp.base_dockerfile.split(".")[-1] + ":latest"
    app_image = kit.REGISTRY + comp.image

    pull = steps["pull-base"]
    assert pull["entrypoint"] == "bash"
    script = " ".join(pull["args"][1].split())
    assert script == f"docker pull {base_image} || exit 0", "pull must tolerate a missing base"

    build_base = steps["build-base"]["args"]
    assert build_base[0] == "build"
    assert build_base[-1] == "."  # the repo root is the build context
    assert kit.docker_option(build_base, "--file") == [comp.base_dockerfile]
    assert kit.docker_option(build_base, "--cache-from") == [base_image]
    assert kit.docker_option(build_base, "--tag") == [base_image]
    assert steps["build-base"]["waitFor"] == ["pull-base"]

    assert steps["push-base"]["args"] == ["push", base_image]

    build_app = steps["build-app"]["args"]
    assert kit.docker_option(build_app, "--file") == [comp.dockerfile]
    assert kit.docker_option(build_app, "--build-arg") == [f"BASE_IMAGE={base_image}"]
    assert sorted(kit.docker_option(build_app, "--tag")) == [
        f"{app_image}:$BUILD_ID",
        f"{app_image}:latest",
    ]
    assert build_app[-1] == "."
    assert "build-base" in steps["build-app"]["waitFor"]

    assert steps["push-app"]["args"] == ["push", "--all-tags", app_image]
    for step in steps.values():
        assert step["name"] == "gcr.io/cloud-builders/docker"


@pytest.mark.parametrize("component", list(SOLUTIONS))
def test_every_file_a_config_builds_from_exists(component):
    for step in steps_by_id(SOLUTIONS[component]).values():
        for dockerfile in kit.docker_option(step.get("args", []), "--file"):
            assert (kit.REPO_ROOT / dockerfile).is_file(), dockerfile


def test_configs_define_only_substitutions_they_use():
    """Cloud Build refuses a build whose user substitution is unused (unless told not to)."""
    for config in ALL_CONFIGS:
        text = (kit.REPO_ROOT / config).read_text()
        for name in load(config).get("substitutions", {}):
            assert f"${{{name}}}" in text, f"{config}: substitution {name} is never used"


def test_the_template_gives_structure_and_leaves_every_step_to_the_student():
    """Each step's builder and purpose, never its arguments (Q1), and nothing of Q2."""
    template = steps_by_id(TEMPLATE)
    for step_id in Q1_STEP_IDS:
        assert template[step_id]["args"] == ["FILL-ME"], f"{step_id} is not left to fill"
        assert "waitFor" not in template[step_id]  # steps run in order unless told otherwise
    solution = steps_by_id(SOLUTIONS["backend_v1"])
    for step_id in Q1_STEP_IDS:
        assert template[step_id]["name"] == solution[step_id]["name"]
    assert load(TEMPLATE)["substitutions"] == load(SOLUTIONS["backend_v1"])["substitutions"]


def test_the_template_holds_nothing_of_q2():
    text = (kit.REPO_ROOT / TEMPLATE).read_text()
    for answer in ("pull", "cache-from", "cache_from", "exit 0", "BUILDKIT_INLINE_CACHE"):
        assert answer not in text, f"the template gives away Q2: {answer!r}"


@pytest.mark.parametrize("component", list(SOLUTIONS))
def test_the_solution_is_the_templates_steps_filled_in_after_q2s_step(component):
    """The template's steps, in its order and with its builders, make up the reference
    config once Q2's pull step is put first: the template asks for what is graded."""
    template = load(TEMPLATE)["steps"]
    solution = load(SOLUTIONS[component])["steps"]
    assert [s["id"] for s in solution] == ["pull-base"] + [s["id"] for s in template]
    for ours, theirs in zip(template, solution[1:], strict=True):
        assert ours["name"] == theirs["name"]
