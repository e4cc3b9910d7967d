"""A corpus of typical mistakes: each loses points in the right question, with a specific message.

Every entry starts from the reference solution and changes one thing. The test
asserts the exact set of rubric items that lose points (so nothing is lost in
another question) and a phrase of the message. All entries are graded once,
in parallel, by a session fixture; most without gcloud (the mistakes are
semantic), the gcloud ones with the real CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.autograder.builders import replace, solution_files
from tests.autograder.conftest import failed

CB_B1 = "deployment/cloudbuild_backend_v1.yaml"
CB_F1 = "deployment/cloudbuild_frontend_v1.yaml"
DEPLOY_B1 = "deployment/deploy_backend_v1.sh"
DEPLOY_B2 = "deployment/deploy_backend_v2.sh"
DEPLOY_F1 = "deployment/deploy_frontend_v1.sh"
SUBMIT_F2 = "deployment/submit_build_frontend_v2.sh"
BASE_B1 = "northamerica-northeast1-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/backend-base:latest"
PULL_STEP = (
    "  - id: pull-base\n"
    "    name: gcr.io/cloud-builders/docker\n"
    "    entrypoint: bash\n"
    "    args:\n"
    "      - -c\n"
    "      - >-\n"
    "        docker pull\n"
    f"        {BASE_B1}\n"
    "        || exit 0\n"
)


@dataclass
class Mistake:
    name: str
    edits: list[tuple[str, str, str]]  # (file, old, new)
    lost: set[str]  # rubric items that must lose their points (and no other)
    message: str  # a phrase of the message of `item` (default: the first lost item)
    gcloud: bool = False
    item: str = ""

    def files(self) -> dict[str, str]:
        files = solution_files()
        for logical, old, new in self.edits:
            files = replace(files, logical, old, new)
        return files


MISTAKES = [
    Mistake(
        "pull without || exit 0",
        [(CB_B1, "        || exit 0\n", "")],
        {"Q2.backend_v1.pull_base"},
        "fails the whole build when the base image does not exist",
    ),
    Mistake(
        "--cache-from without a pull",
        [(CB_B1, PULL_STEP, ""), (CB_B1, "waitFor: [pull-base]", "waitFor: ['-']")],
        {"Q2.backend_v1.pull_base", "Q2.backend_v1.cache_from"},
        "--cache-from names an image the build never pulls",
    ),
    Mistake(
        "no pull and no cache at all",
        [
            (CB_B1, PULL_STEP, ""),
            (CB_B1, "waitFor: [pull-base]", "waitFor: ['-']"),
            (CB_B1, f"      - --cache-from={BASE_B1}\n", ""),
        ],
        {"Q2.backend_v1.pull_base", "Q2.backend_v1.cache_from"},
        "this config does not have Q2's cache step yet",
        item="Q2.backend_v1.pull_base",
    ),
    Mistake(
        "cache-from names another image than the pull",
        [(CB_B1, f"--cache-from={BASE_B1}", f"--cache-from={BASE_B1[:-7]}:${{BUILD_ID}}")],
        {"Q2.backend_v1.cache_from"},
        "does not use the pulled image as its cache",
    ),
    Mistake(
        "build argument misnamed: the base is empty",
        [(CB_B1, "--build-arg=BASE_IMAGE=", "--build-arg=BASE=")],
        {"Q1.backend_v1.app_build"},
        "starts FROM an empty ${BASE_IMAGE}",
    ),
    Mistake(
        "app image FROM a base the build never makes",
        [(CB_B1, f"--build-arg=BASE_IMAGE={BASE_B1}", "--build-arg=BASE_IMAGE=python:3.11-slim")],
        {"Q1.backend_v1.app_build"},
        "starts FROM a base image this build never makes",
    ),
    Mistake(
        "base Dockerfile path typo",
        [(CB_B1, "--file=deployment/Dockerfile.backend-base", "--file=deployment/Dockerfile.base")],
        {"Q1.backend_v1.base_build"},
        "builds from a Dockerfile that does not exist",
    ),
    Mistake(
        "frontend built from the backend base",
        [
            (
                CB_F1,
                "--file=deployment/Dockerfile.frontend-base",
                "--file=deployment/Dockerfile.backend-base",
            )
        ],
        {"Q1.frontend_v1.base_build"},
        "builds the wrong base for frontend_v1",
    ),
    Mistake(
        "wrong region in the deploy script",
        [(DEPLOY_B1, 'region="northamerica-northeast1"', 'region="us-central1"')],
        {"Q3.backend_v1.deploy_service"},
        "deployed in the wrong region",
    ),
    Mistake(
        "registry host typo",
        [
            (
                CB_F1,
                "northamerica-northeast1-docker.pkg.dev",
                "northamerica-northeast1-docker.pkg.de",
            )
        ],
        {"Q1.frontend_v1.images_pushed", "Q1.one_repository"},
        "not in the course's Artifact Registry host",
    ),
    Mistake(
        "registry path typo (missing slash)",
        [(CB_F1, "${_REPOSITORY}/frontend-v1", "${_REPOSITORY}frontend-v1")],
        {"Q1.frontend_v1.images_pushed", "Q1.one_repository"},
        "is incomplete",
    ),
    Mistake(
        "service name with an underscore",
        [(DEPLOY_B2, "gcloud run deploy backend-v2", "gcloud run deploy backend_v2")],
        {"Q6.backend_v2.deploy_service"},
        "Cloud Run rejects underscores",
    ),
    Mistake(
        "missing SERVING_URL",
        [(DEPLOY_F1, ' \\\n  --set-env-vars="SERVING_URL=$backend_url"', "")],
        {"Q3.frontend_v1.serving_url"},
        "deployed without SERVING_URL",
    ),
    Mistake(
        "SERVING_URL pointing at the v2 backend",
        [(DEPLOY_F1, "services describe backend-v1", "services describe backend-v2")],
        {"Q3.frontend_v1.serving_url"},
        "(the v2 backend)",
    ),
    Mistake(
        "an image deployed that no cloudbuild pushes",
        [(DEPLOY_B1, "$repository/backend-v1:latest", "$repository/backend-v3:latest")],
        {"Q3.backend_v1.deploy_service"},
        "which no build pushes",
    ),
    Mistake(
        "the base image deployed instead of the app",
        [(DEPLOY_B1, "$repository/backend-v1:latest", "$repository/backend-base:latest")],
        {"Q3.backend_v1.deploy_service"},
        "the base image (no app code in it)",
    ),
    Mistake(
        "deliverables with an http URL",
        [
            (
                "deliverables.yaml",
                "back_end: https://backend-v1-q3xk7d2lfa-nn.a.run.app",
                "back_end: http://backend-v1-q3xk7d2lfa-nn.a.run.app",
            )
        ],
        {"Q3.v1.deliverables"},
        "not an https URL",
    ),
    Mistake(
        "deliverables with a non-Cloud-Run URL",
        [
            (
                "deliverables.yaml",
                "front_end: https://frontend-v2-q3xk7d2lfa-nn.a.run.app",
                "front_end: https://my-frontend.example.com",
            )
        ],
        {"Q6.v2.deliverables"},
        "not a Cloud Run service URL",
    ),
    Mistake(
        "a template placeholder left in a deploy script",
        [(DEPLOY_B2, "--memory=4Gi", "--memory=FILL-ME")],
        {
            "Q6.backend_v2.deploy_runs",
            "Q6.backend_v2.deploy_service",
            "Q6.backend_v2.deploy_access",
        },
        "a template placeholder is still in the file",
    ),
    Mistake(
        "a placeholder left in the short answers",
        [],
        set(),  # the answered gates cost no points by themselves
        "",
    ),
    Mistake(
        "the service left private",
        [(DEPLOY_B1, "--allow-unauthenticated", "--no-allow-unauthenticated")],
        {"Q3.backend_v1.deploy_access"},
        "the service is not public",
    ),
    Mistake(
        "PORT set as an environment variable",
        [(DEPLOY_B1, '--set-env-vars="MODEL_NAME=resnet50"', '--set-env-vars="PORT=8080"')],
        {"Q3.backend_v1.deploy_access"},
        "Cloud Run reserves it",
    ),
    Mistake(
        "the submit script submits another component's config",
        [(SUBMIT_F2, "cloudbuild_frontend_v2.yaml", "cloudbuild_frontend_v1.yaml")],
        {"Q1.frontend_v2.submit_build"},
        "submits the wrong config",
    ),
    Mistake(
        "the submit script uploads deployment/ instead of the repo root",
        [(SUBMIT_F2, 'gcloud builds submit "$repo_root"', 'gcloud builds submit "$script_dir"')],
        {"Q1.frontend_v2.submit_build"},
        "source is not the repo root",
    ),
    Mistake(
        "a script bash cannot parse",
        [(DEPLOY_B1, "  exit 1\nfi\n", "  exit 1\n")],
        {
            "Q3.backend_v1.deploy_runs",
            "Q3.backend_v1.deploy_service",
            "Q3.backend_v1.deploy_access",
        },
        "bash cannot parse the script",
    ),
    Mistake(
        "duplicate keys in a config",
        [(CB_B1, "timeout: 1800s", "timeout: 1800s\ntimeout: 600s")],
        {
            "Q1.backend_v1.config_valid",
            "Q1.backend_v1.base_build",
            "Q1.backend_v1.app_build",
            "Q1.backend_v1.images_pushed",
            "Q1.one_repository",
            "Q2.backend_v1.pull_base",
            "Q2.backend_v1.cache_from",
        },
        "the key `timeout` appears twice",
    ),
    Mistake(
        "an unknown key in a step (gcloud's parser)",
        [(CB_B1, "    waitFor: [build-app]", "    waitFor: [build-app]\n    waitfor: [build-app]")],
        {"Q1.backend_v1.config_valid"},
        "gcloud refuses this Cloud Build config",
        gcloud=True,
    ),
    Mistake(
        "an unknown gcloud flag",
        [(DEPLOY_B1, "--cpu-boost", "--cpu-bost")],
        {"Q3.backend_v1.deploy_runs"},
        "gcloud refuses a command the script runs",
        gcloud=True,
    ),
]
ANSWERS = "SHORT_ANSWER_TEMPLATE.md"


def _files(mistake: Mistake) -> dict[str, str]:
    files = mistake.files()
    if mistake.name == "a placeholder left in the short answers":
        files[ANSWERS] = files[ANSWERS].replace(
            "Cold starts load the model; min-instances keeps one instance warm.",
            "_Write your answer here._",
        )
    return files


@pytest.fixture(scope="module")
def plain_results(grader):
    """The mistakes that need no gcloud, graded once, in parallel."""
    return grader.grade_many({m.name: _files(m) for m in MISTAKES if not m.gcloud})


@pytest.fixture(scope="module")
def gcloud_results(grader, solution_gcloud_results):
    """The mistakes only gcloud's own parser catches, graded with the real CLI.

    (solution_gcloud_results first: then only the changed commands reach gcloud.)
    """
    return grader.grade_many({m.name: _files(m) for m in MISTAKES if m.gcloud}, gcloud=True)


PARAMS = [
    pytest.param(m, id=m.name, marks=[pytest.mark.gcloud] if m.gcloud else []) for m in MISTAKES
]


@pytest.mark.parametrize("mistake", PARAMS)
def test_each_mistake_loses_points_in_the_right_question(mistake, request):
    group = request.getfixturevalue("gcloud_results" if mistake.gcloud else "plain_results")
    results = group[mistake.name]
    lost = {k for k, r in failed(results).items() if r.item.points > 0}
    assert lost == mistake.lost, {k: results[k].message for k in lost ^ mistake.lost}
    for item_id in mistake.lost:
        message = results[item_id].message
        assert "expected:" in message, message
        assert "how to fix:" in message, message
        assert "Traceback" not in message
    if mistake.message:
        message = results[mistake.item or sorted(mistake.lost)[0]].message
        assert mistake.message in message, message


def test_an_unanswered_question_is_flagged_without_costing_points(plain_results):
    results = plain_results["a placeholder left in the short answers"]
    assert results["Q8.answered"].status == "failed"
    assert "Q8 is not answered" in results["Q8.answered"].message
    assert results["Q7.answered"].status == "passed"
