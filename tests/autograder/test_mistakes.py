"""A corpus of typical mistakes: each loses points once, in the right question, with a message.

Every entry starts from the reference solution and makes one mistake (which may
touch several files, as a student's would). The test asserts the exact set of
rubric items that lose points (so nothing is lost in another question, and one
mistake is charged once), the exact points lost, the items that depend on the
broken file and say "skipped: fix X first" instead, and a phrase of the
message. All entries are graded once, in parallel, by a session fixture; most
without gcloud (the mistakes are semantic), the gcloud ones with the real CLI,
and the `both` ones both ways, with the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from autograder import assignment
from autograder.checks.deploy import required_memory_mib
from autograder.engine import SKIPPED
from tests.autograder.builders import replace, solution_files
from tests.autograder.conftest import failed

# The first test waits for the whole corpus to be graded (a module fixture): on a
# machine shared with other test runs that can take longer than one test's default.
pytestmark = pytest.mark.timeout(1200)

CB_B1 = "deployment/cloudbuild_backend_v1.yaml"
CB_F1 = "deployment/cloudbuild_frontend_v1.yaml"
DEPLOY_B1 = "deployment/deploy_backend_v1.sh"
DEPLOY_B2 = "deployment/deploy_backend_v2.sh"
DEPLOY_F1 = "deployment/deploy_frontend_v1.sh"
SUBMIT_F2 = "deployment/submit_build_frontend_v2.sh"
REGISTRY = "northamerica-northeast1-docker.pkg.dev"
V1_BACK = "https://backend-v1-q3xk7d2lfa-nn.a.run.app"
V1_FRONT = "https://frontend-v1-q3xk7d2lfa-nn.a.run.app"
V2_BACK = "https://backend-v2-q3xk7d2lfa-nn.a.run.app"
# The same wrong registry region in every config and every deploy script.
WRONG_REGION_EVERYWHERE = [
    *((assignment.cloudbuild_file(c), REGISTRY, "us-central1-docker.pkg.dev") for c in
      assignment.COMPONENTS),
    *((assignment.deploy_script(c), 'image="$region-docker.pkg.dev',
       'image="us-central1-docker.pkg.dev') for c in assignment.COMPONENTS),
]  # fmt: skip
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
    gcloud: bool | str = False  # True: needs gcloud to be caught; "both": graded both ways
    item: str = ""
    skipped: set[str] = field(default_factory=set)  # items that say "fix X first"
    # ... and those that do only with gcloud (same points: gcloud refuses more of what
    # depends on the broken file, which the grader then sets aside)
    gcloud_skipped: set[str] = field(default_factory=set)
    absent: str = ""  # a phrase the message must not hold

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
        [(CB_F1, REGISTRY, "northamerica-northeast1-docker.pkg.de")],
        {"Q1.frontend_v1.images_pushed"},
        "not in the course's Artifact Registry host",
        skipped={"Q1.one_repository", "Q3.frontend_v1.deploy_service"},
    ),
    Mistake(
        "registry path typo (missing slash)",
        [(CB_F1, "${_REPOSITORY}/frontend-v1", "${_REPOSITORY}frontend-v1")],
        {"Q1.frontend_v1.images_pushed"},
        "is incomplete",
        skipped={"Q1.one_repository", "Q3.frontend_v1.deploy_service"},
    ),
    Mistake(
        "a wrong registry region, used consistently",
        WRONG_REGION_EVERYWHERE,
        {f"Q1.{c}.images_pushed" for c in assignment.COMPONENTS},
        "the registry is in northamerica-northeast1",
        gcloud="both",
        item="Q1.backend_v2.images_pushed",
    ),
    Mistake(
        "one YAML indentation error",
        [(CB_B1, "  - id: push-base\n    name:", "  - id: push-base\n      name:")],
        {
            "Q1.backend_v1.config_valid",
            "Q1.backend_v1.base_build",
            "Q1.backend_v1.app_build",
            "Q1.backend_v1.images_pushed",
            "Q2.backend_v1.pull_base",
            "Q2.backend_v1.cache_from",
        },
        "not valid YAML",
        gcloud="both",
        item="Q1.backend_v1.config_valid",
        skipped={"Q1.one_repository", "Q3.backend_v1.deploy_service"},
    ),
    Mistake(
        "service name with an underscore",
        [(DEPLOY_B2, "gcloud run deploy backend-v2", "gcloud run deploy backend_v2")],
        {"Q6.backend_v2.deploy_service"},
        "Cloud Run rejects underscores",
        gcloud="both",
    ),
    Mistake(
        "an unquoted path that breaks at a space",
        [(SUBMIT_F2, '--config="$config"', "--config=$config")],
        {"Q1.frontend_v2.submit_build"},
        "the path given to --config is cut in two at a space",
        absent="submits the wrong config",
    ),
    Mistake(
        "a project id written into a config",
        [(CB_B1, "$PROJECT_ID", "my-course-project")],
        {"Q3.backend_v1.deploy_service"},
        "writes the project `my-course-project` into its image names",
        absent="student-project-123",
    ),
    Mistake(
        "v2's back_end is the v1 backend",
        [("deliverables.yaml", f"back_end: {V2_BACK}", f"back_end: {V1_BACK}")],
        {"Q6.v2.deliverables"},
        "services.v2.back_end is the URL of the v1 backend",
    ),
    Mistake(
        "front and back URLs swapped",
        [
            ("deliverables.yaml", f"back_end: {V1_BACK}", "back_end: SWAP"),
            ("deliverables.yaml", f"front_end: {V1_FRONT}", f"front_end: {V1_BACK}"),
            ("deliverables.yaml", "back_end: SWAP", f"back_end: {V1_FRONT}"),
        ],
        {"Q3.v1.deliverables"},
        "the back_end and front_end URLs are swapped",
    ),
    Mistake(
        "a torch backend left at Cloud Run's default memory",
        [(DEPLOY_B1, "  --memory=2Gi \\\n", "")],
        {"Q3.backend_v1.deploy_access"},
        f"--memory of at least {required_memory_mib('backend_v1')} MiB",
    ),
    Mistake(
        "backend v2 with too little memory for its models",
        [(DEPLOY_B2, "--memory=4Gi", "--memory=1Gi")],
        {"Q6.backend_v2.deploy_access"},
        f"--memory of at least {required_memory_mib('backend_v2')} MiB",
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
            "Q2.backend_v1.pull_base",
            "Q2.backend_v1.cache_from",
        },
        "the key `timeout` appears twice",
        skipped={"Q1.one_repository", "Q3.backend_v1.deploy_service"},
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
    """The mistakes graded without gcloud, once, in parallel."""
    return grader.grade_many({m.name: _files(m) for m in MISTAKES if m.gcloud is not True})


@pytest.fixture(scope="module")
def gcloud_results(grader, solution_gcloud_results):
    """The mistakes graded with the real CLI: those only gcloud's parser catches, and
    those that must cost the same with it as without.

    (solution_gcloud_results first: then only the changed commands reach gcloud.)
    """
    return grader.grade_many({m.name: _files(m) for m in MISTAKES if m.gcloud}, gcloud=True)


PARAMS = [pytest.param(m, False, id=m.name) for m in MISTAKES if m.gcloud is not True] + [
    pytest.param(m, True, id=f"{m.name} (gcloud)", marks=pytest.mark.gcloud)
    for m in MISTAKES
    if m.gcloud
]


@pytest.mark.parametrize(("mistake", "with_gcloud"), PARAMS)
def test_each_mistake_loses_points_once_in_the_right_question(mistake, with_gcloud, request):
    group = request.getfixturevalue("gcloud_results" if with_gcloud else "plain_results")
    results = group[mistake.name]
    lost = {k for k, r in failed(results).items() if r.item.points > 0}
    assert lost == mistake.lost, {k: results[k].message for k in lost ^ mistake.lost}
    points_lost = sum(r.lost for r in results.values() if r.item.kind == "auto")
    assert points_lost == sum(results[k].item.points for k in mistake.lost)
    for item_id in mistake.lost:
        message = results[item_id].message
        assert "expected:" in message, message
        assert "how to fix:" in message, message
        assert "Traceback" not in message
    skipped = {k for k, r in results.items() if r.status == SKIPPED}
    expected = mistake.skipped | (mistake.gcloud_skipped if with_gcloud else set())
    assert skipped == expected, {k: results[k].message for k in skipped ^ expected}
    for item_id in skipped:
        assert results[item_id].score == results[item_id].item.points
        assert "skipped: fix deployment/" in results[item_id].message
    if mistake.message:
        message = results[mistake.item or sorted(mistake.lost)[0]].message
        assert mistake.message in message, message
        if mistake.absent:
            assert mistake.absent not in message, message


def test_one_mistake_costs_what_the_issue_says(plain_results):
    """The three cascades, in points: each charged once, at its root cause."""

    def lost(name: str) -> float:
        return sum(r.lost for r in plain_results[name].values() if r.item.kind == "auto")

    assert lost("a wrong registry region, used consistently") == 8
    assert lost("one YAML indentation error") == 10
    assert lost("service name with an underscore") == 2


@pytest.mark.gcloud
def test_the_submit_script_of_a_broken_config_is_not_blamed(gcloud_results):
    """gcloud refuses `builds submit` of a broken config: the config alone is charged."""
    results = gcloud_results["one YAML indentation error"]
    submit = results["Q1.backend_v1.submit_build"]
    assert submit.status == "passed", submit.message
    assert results["Q1.backend_v1.config_valid"].status == "failed"
    assert results["Q6.backend_v2.deploy_runs"].status == "passed"
    deploy_runs = gcloud_results["service name with an underscore"]["Q6.backend_v2.deploy_runs"]
    assert deploy_runs.status == "passed", deploy_runs.message


def test_the_hard_coded_project_message_says_what_to_use(plain_results):
    message = plain_results["a project id written into a config"][
        "Q3.backend_v1.deploy_service"
    ].message
    assert "$PROJECT_ID" in message
    assert "gcloud config get-value project" in message
    assert "replace `my-course-project` with $PROJECT_ID" in message


def test_the_space_message_says_to_quote(plain_results):
    message = plain_results["an unquoted path that breaks at a space"][
        "Q1.frontend_v2.submit_build"
    ].message
    assert "student submission" in message
    assert '--config="$config"' in message
    # the cut-off word, as the student's script made it: the folder up to its space
    assert re.search(r"found:    /\S+/student and then the rest of the path", message), message


def test_swapped_urls_blame_deliverables_and_expect_only_backend_urls(grader):
    """With the URLs swapped, a frontend that calls a wrong backend is told a backend's URL."""
    files = MISTAKES_BY_NAME["front and back URLs swapped"].files()
    files = replace(
        files, DEPLOY_F1, "services describe backend-v1", "services describe backend-v2"
    )
    results = grader.grade(files)
    message = results["Q3.frontend_v1.serving_url"].message
    assert results["Q3.frontend_v1.serving_url"].status == "failed"
    expected = next(line for line in message.splitlines() if "expected:" in line)
    assert "backend-v1" in expected, message
    assert "frontend" not in expected, message
    assert results["Q3.v1.deliverables"].status == "failed"


MISTAKES_BY_NAME = {m.name: m for m in MISTAKES}


def test_an_unanswered_question_is_flagged_without_costing_points(plain_results):
    results = plain_results["a placeholder left in the short answers"]
    assert results["Q8.answered"].status == "failed"
    assert "Q8 is not answered" in results["Q8.answered"].message
    assert results["Q7.answered"].status == "passed"
