"""The shell scripts: the two templates and the eight reference solutions.

Static checks (bash -n, shellcheck) on all; the solutions also run, through
autograder/script_runner (a throwaway copy whose path has a space, started
from another folder, with a recording gcloud), and every gcloud command they
ran is replayed through the real gcloud's parser. Consistency: each deploy
script deploys the image its Cloud Build config pushed, and each frontend is
pointed at its own backend's URL.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from autograder import gcloud_oracle
from autograder.script_runner import run_script
from tests.deployment import kit

SHELLCHECK = kit.REPO_ROOT / ".venv" / "bin" / "shellcheck"
TEMPLATES = ["deployment/submit_build_template.sh", "deployment/deploy_service_template.sh"]
SUBMIT = {c: f"solution/submit_build_{c}.sh" for c in kit.GRADED}
DEPLOY = {c: "solution/deploy_{}_{}.sh".format(*c.split("_")) for c in kit.GRADED}
ALL_SCRIPTS = [*TEMPLATES, *SUBMIT.values(), *DEPLOY.values()]
DELIVERABLES = kit.REPO_ROOT / "solution" / "deliverables.yaml"
REGION = "northamerica-northeast1"
CLOUD_RUN_URL = re.compile(r"https://([a-z0-9-]+)-[a-z0-9]+-nn\.a\.run\.app")


def deliverable_urls() -> dict[str, str]:
    """Service name -> URL, from the solution's deliverables.yaml."""
    services = yaml.safe_load(DELIVERABLES.read_text())["services"]
    roles = {"back_end": "backend", "front_end": "frontend"}
    return {
        f"{roles[role]}-{version}": url
        for version, entry in services.items()
        for role, url in entry.items()
    }


@pytest.fixture(scope="module")
def runs():
    """Every solution script, run once with the recorder (a second each)."""
    urls = deliverable_urls()
    return {
        script: run_script(script, tree=kit.REPO_ROOT, service_urls=urls)
        for script in [*SUBMIT.values(), *DEPLOY.values()]
    }


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_script_is_valid_bash_and_passes_shellcheck(script):
    syntax = subprocess.run(["bash", "-n", script], cwd=kit.REPO_ROOT, capture_output=True)
    assert syntax.returncode == 0, syntax.stderr.decode()
    lint = subprocess.run(
        [str(SHELLCHECK), "--severity=style", script],
        cwd=kit.REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_script_is_strict_and_executable(script):
    path = kit.REPO_ROOT / script
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    assert path.stat().st_mode & 0o111, f"chmod +x {script}"


@pytest.mark.parametrize("script", TEMPLATES)
def test_templates_mark_what_to_fill(script):
    assert (kit.REPO_ROOT / script).read_text().count("FILL-ME") >= 2


# --- running the solutions ------------------------------------------------------------


@pytest.mark.parametrize("script", [*SUBMIT.values(), *DEPLOY.values()])
def test_solution_script_runs_from_another_folder_through_a_path_with_a_space(runs, script):
    run = runs[script]
    assert run.exit_code == 0, f"exit {run.exit_code}:\n{run.stderr}"
    assert " " in run.copy_root
    assert run.gcloud_calls, "it ran no gcloud command"
    assert not run.docker_calls, "builds run in Cloud Build, not on the student's machine"


@pytest.mark.parametrize("component", kit.GRADED)
def test_submit_script_builds_the_repo_root_with_its_config(runs, component):
    [call] = runs[SUBMIT[component]].gcloud_calls
    assert call.argv[:2] == ("builds", "submit")
    assert call.argv[2] == str(kit.REPO_ROOT), "the build context is the repo root"
    assert call.flag("--config") == str(kit.REPO_ROOT / f"solution/cloudbuild_{component}.yaml")


@pytest.mark.parametrize("component", kit.GRADED)
def test_deploy_script_deploys_the_image_its_build_pushed(runs, component):
    submit = runs[SUBMIT[component]].gcloud_calls[0]
    deploy = runs[DEPLOY[component]]
    [call] = [c for c in deploy.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    assert call.argv[2] == kit.COMPONENTS[component].image  # backend-v1: dashes
    assert call.flag("--region") == REGION
    assert call.flag("--port") == "8080"
    assert "--allow-unauthenticated" in call.argv
    assert "PORT=" not in (call.flag("--set-env-vars") or ""), "PORT is reserved by Cloud Run"
    assert call.flag("--image") in pushed_images(component, submit, project=deploy.project)


def pushed_images(component: str, submit, project: str) -> set[str]:
    """The image references the build pushes, resolved as Cloud Build would.

    $BUILD_ID is unknown before the build runs, so only fixed tags can match."""
    config = yaml.safe_load((kit.REPO_ROOT / SOLUTIONS_OF[component]).read_text())
    values = {"PROJECT_ID": project, **config.get("substitutions", {})}
    for pair in (submit.flag("--substitutions") or "").split(","):
        if "=" in pair:
            name, value = pair.split("=", 1)
            values[name] = value
    steps = {step["id"]: step for step in config["steps"]}
    tags = kit.docker_option(steps["build-app"]["args"], "--tag")
    pushed = steps["push-app"]["args"]
    assert pushed[:2] == ["push", "--all-tags"]
    return {kit.substitute(tag, values) for tag in tags if tag.startswith(pushed[2] + ":")}


SOLUTIONS_OF = {c: f"solution/cloudbuild_{c}.yaml" for c in kit.GRADED}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_frontend_is_pointed_at_its_own_backend(runs, version):
    run = runs[DEPLOY[f"frontend_{version}"]]
    describes = [c for c in run.gcloud_calls if c.argv[:3] == ("run", "services", "describe")]
    assert [c.argv[3] for c in describes] == [f"backend-{version}"]
    [deploy] = [c for c in run.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    serving_url = dict(
        pair.split("=", 1) for pair in (deploy.flag("--set-env-vars") or "").split(",")
    )["SERVING_URL"]
    assert serving_url == deliverable_urls()[f"backend-{version}"]


def test_deliverables_list_both_versions_with_cloud_run_urls():
    urls = deliverable_urls()
    assert set(urls) == {"backend-v1", "frontend-v1", "backend-v2", "frontend-v2"}
    for service, url in urls.items():
        match = CLOUD_RUN_URL.fullmatch(url)
        assert match, url
        assert match.group(1) == service


def test_solution_scripts_also_run_from_their_own_folder():
    run = run_script(SUBMIT["backend_v1"], tree=kit.REPO_ROOT, cwd="solution")
    assert run.exit_code == 0, run.stderr
    assert run.gcloud_calls[0].argv[2] == str(kit.REPO_ROOT)


def test_deploy_script_stops_with_advice_when_no_project_is_set():
    run = run_script(DEPLOY["backend_v1"], tree=kit.REPO_ROOT, project="")
    assert run.exit_code == 1
    assert "gcloud config set project" in run.stderr
    assert not [c for c in run.gcloud_calls if c.argv[:2] == ("run", "deploy")]


# --- gcloud itself accepts every command ----------------------------------------------


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloud_accepts_every_command_the_solutions_run(runs):
    commands = [call.command for run in runs.values() for call in run.gcloud_calls]
    assert len(commands) >= 14
    # The oracle shows gcloud a copy of the tree the scripts ran in, and nothing else.
    verdicts = gcloud_oracle.check_commands(commands, tree=kit.REPO_ROOT, cwd=kit.REPO_ROOT)
    rejected = [f"{' '.join(v.argv)}\n  {v.message}" for v in verdicts if not v.accepted]
    assert not rejected, "\n".join(rejected)
    deploys = [v for v in verdicts if v.argv[1:3] == ("run", "deploy")]
    assert all(v.kind == gcloud_oracle.NEEDS_CREDENTIALS for v in deploys)


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloud_rejects_the_unfilled_templates():
    """The FILL-ME markers cannot slip through: gcloud refuses them as they are."""
    run = run_script("deployment/deploy_service_template.sh", tree=kit.REPO_ROOT)
    assert run.exit_code == 0
    [deploy] = [c for c in run.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    verdict = gcloud_oracle.check_command(deploy.command)
    assert verdict.rejected, verdict
    assert "FILL-ME" in verdict.message


def test_filling_the_submit_template_gives_the_solution_call(tmp_path, runs):
    filled = tmp_path / "submit.sh"
    template = (kit.REPO_ROOT / TEMPLATES[0]).read_text()
    filled.write_text(template.replace('"$script_dir/FILL-ME"', '"$script_dir/cloudbuild_x.yaml"'))
    run = run_script("solution/submit.sh", tree=kit.REPO_ROOT, files={"solution/submit.sh": filled})
    assert run.exit_code == 0, run.stderr
    [call] = run.gcloud_calls
    [reference] = runs[SUBMIT["backend_v1"]].gcloud_calls
    assert call.argv[:3] == reference.argv[:3]
    assert call.flag("--config") == reference.flag("--config").replace("backend_v1", "x")
    assert call.flag("--substitutions") == reference.flag("--substitutions")


def test_filling_the_deploy_template_gives_the_solution_call(tmp_path, runs):
    template = (kit.REPO_ROOT / TEMPLATES[1]).read_text()
    for marker, value in {
        'service="FILL-ME"': 'service="frontend-v1"',
        '/FILL-ME"': '/frontend-v1:latest"',
        "# backend_url=": "backend_url=",
        "describe FILL-ME": "describe backend-v1",
        "--memory=FILL-ME": "--memory=512Mi",
        "--cpu=FILL-ME": "--cpu=1",
        '--set-env-vars="FILL-ME"': '--set-env-vars="SERVING_URL=$backend_url"',
    }.items():
        assert marker in template, marker
        template = template.replace(marker, value)
    code = [line for line in template.splitlines() if not line.lstrip().startswith("#")]
    assert "FILL-ME" not in "\n".join(code)
    filled = tmp_path / "deploy.sh"
    filled.write_text(template)
    run = run_script("deploy.sh", tree=tmp_path, service_urls=deliverable_urls())
    assert run.exit_code == 0, run.stderr
    [call] = [c for c in run.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    [reference] = [
        c for c in runs[DEPLOY["frontend_v1"]].gcloud_calls if c.argv[:2] == ("run", "deploy")
    ]
    for flag in ("--image", "--region", "--port", "--memory", "--cpu", "--set-env-vars"):
        assert call.flag(flag) == reference.flag(flag), flag
    assert call.argv[2] == reference.argv[2]
