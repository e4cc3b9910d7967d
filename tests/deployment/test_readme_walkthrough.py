"""The README's deployment walkthrough, run as a script with the reference solution filled in.

Its bash blocks run in order through autograder/script_runner (a recording
gcloud, no network), with the solution's files where the student's would be;
then every gcloud command they ran goes through the real gcloud's parser.
So the walkthrough cannot drift from the templates, the scripts or gcloud.
"""

from __future__ import annotations

import re

import pytest

from autograder import gcloud_oracle
from autograder.script_runner import run_script
from tests.deployment import kit

HEADING = "## Deploying to Google Cloud"
FENCE = re.compile(r"^ *```bash\n(.*?)^ *```", re.S | re.M)


def deployment_section() -> str:
    """The README's deployment walkthrough, up to the next top-level section."""
    text = (kit.REPO_ROOT / "README.md").read_text()
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[start : end if end != -1 else None]


def walkthrough_blocks() -> list[str]:
    blocks = [re.sub(r"^ {3}", "", b, flags=re.M) for b in FENCE.findall(deployment_section())]
    # Copying the templates would give unfilled files: the solution stands in for them.
    return [b for b in blocks if "cp " not in b]


def solution_as_student_files() -> dict[str, str]:
    files = {}
    for component in kit.GRADED:
        role, version = component.split("_")
        for name in (
            f"cloudbuild_{component}.yaml",
            f"submit_build_{component}.sh",
            f"deploy_{role}_{version}.sh",
        ):
            files[f"deployment/{name}"] = str(kit.REPO_ROOT / "solution" / name)
    return files


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    script = tmp_path_factory.mktemp("readme") / "walkthrough.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(walkthrough_blocks()))
    files = {**solution_as_student_files(), "walkthrough.sh": str(script)}
    return run_script("walkthrough.sh", tree=kit.REPO_ROOT, files=files, cwd=".")


def test_walkthrough_runs_to_the_end(walkthrough):
    assert walkthrough.exit_code == 0, walkthrough.stderr


def test_walkthrough_order_builds_then_deploys_backends_before_frontends(walkthrough):
    deployed = [c.argv[2] for c in walkthrough.gcloud_calls if c.argv[:2] == ("run", "deploy")]
    assert deployed == ["backend-v1", "frontend-v1", "backend-v2", "frontend-v2"]
    gcloud = [c.argv[:2] for c in walkthrough.gcloud_calls]
    assert gcloud.index(("services", "enable")) < gcloud.index(("artifacts", "repositories"))
    assert gcloud.index(("artifacts", "repositories")) < gcloud.index(("builds", "submit"))
    last_build = max(i for i, c in enumerate(gcloud) if c == ("builds", "submit"))
    assert last_build < gcloud.index(("run", "deploy"))


def test_walkthrough_enables_the_apis_and_creates_the_repository_the_configs_use(walkthrough):
    [enable] = [c for c in walkthrough.gcloud_calls if c.argv[:2] == ("services", "enable")]
    assert set(enable.argv[2:]) == {
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "run.googleapis.com",
    }
    create = next(
        c for c in walkthrough.gcloud_calls if c.argv[:3][1:] == ("repositories", "create")
    )
    default_repository = kit.parse_yaml("solution/cloudbuild_backend_v1.yaml")["substitutions"]
    assert create.argv[3] == default_repository["_REPOSITORY"]
    assert create.flag("--location") == "northamerica-northeast1"
    assert create.flag("--repository-format") == "docker"


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloud_accepts_every_command_of_the_walkthrough(walkthrough):
    # The scripts' own commands are replayed in test_scripts; these are the typed ones.
    typed = [
        c.command
        for c in walkthrough.gcloud_calls
        if c.argv[:2] not in (("builds", "submit"), ("run", "deploy"))
    ]
    verdicts = gcloud_oracle.check_commands(typed)
    problems = [
        f"{' '.join(v.argv)}\n  {v.kind}: {v.message}"
        for v in verdicts
        if not v.accepted and v.argv[1] != "auth"  # `gcloud auth login` is never replayed
    ]
    assert not problems, "\n".join(problems)
