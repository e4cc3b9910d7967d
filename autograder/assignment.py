"""The assignment's fixed facts: components, student files, region, registry.

One place for the names the checks, the handout builder and the tests share.
"""

from __future__ import annotations

import re
from pathlib import Path

ASSIGNMENT_ROOT = Path(__file__).resolve().parent.parent

COMPONENTS = ("backend_v1", "backend_v2", "frontend_v1", "frontend_v2")
VERSIONS = ("v1", "v2")
REGION = "northamerica-northeast1"
# Cloud Run's short region code in https://<name>-<hash>-<code>.a.run.app URLs.
REGION_CODE = "nn"
REGISTRY_HOST = f"{REGION}-docker.pkg.dev"
PROJECT_PLACEHOLDER = "${PROJECT_ID}"

# The written questions, in the short-answer file's order.
WRITTEN_QUESTIONS = ("Q2", "Q4", "Q5", "Q7", "Q8")
SHORT_ANSWER_FILE = "SHORT_ANSWER_TEMPLATE.md"
# Names a filled short-answer file may have in a flat upload (compared lower-case).
SHORT_ANSWER_NAMES = (
    "short_answer_template.md",
    "short_answer.md",
    "short_answers.md",
    "answers.md",
)


def cloudbuild_file(component: str) -> str:
    return f"deployment/cloudbuild_{component}.yaml"


def submit_script(component: str) -> str:
    return f"deployment/submit_build_{component}.sh"


def deploy_script(component: str) -> str:
    role, version = component.split("_")
    return f"deployment/deploy_{role}_{version}.sh"


def component_of(role: str, version: str) -> str:
    return f"{role}_{version}"


def app_dockerfile(component: str) -> str:
    return f"{component}/Dockerfile"


# Student file -> the template it starts from (an untouched copy scores nothing).
TEMPLATES = {
    **{cloudbuild_file(c): "deployment/cloudbuild_template.yaml" for c in COMPONENTS},
    **{submit_script(c): "deployment/submit_build_template.sh" for c in COMPONENTS},
    **{deploy_script(c): "deployment/deploy_service_template.sh" for c in COMPONENTS},
}

STUDENT_FILES = (
    *(cloudbuild_file(c) for c in COMPONENTS),
    *(submit_script(c) for c in COMPONENTS),
    *(deploy_script(c) for c in COMPONENTS),
    "deliverables.yaml",
    SHORT_ANSWER_FILE,
)

# Text that only a template has: FILL-ME, angle-bracket placeholders such as <PROJECT_ID>
# or <your-repo>, and the usual to-do markers. Shell redirections (`< file`) and
# comparisons do not match because a placeholder has no spaces inside.
PLACEHOLDER_PATTERN = re.compile(
    r"\bFILL-ME\b|<(?:[A-Za-z][A-Za-z0-9 _./-]*[A-Za-z0-9])>"
    r"|\bTODO\b|\bFIXME\b|\bREPLACE_ME\b|\bCHANGE_ME\b"
)


def find_placeholders(text: str) -> list[str]:
    """Template placeholders left in `text`, skipping comment-only lines of scripts/YAML."""
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        found.extend(m.group(0) for m in PLACEHOLDER_PATTERN.finditer(line))
    return found


# The base image each component's image is built FROM (via its BASE_IMAGE build argument).
BASE_DOCKERFILES = {
    "backend_v1": "deployment/Dockerfile.backend-base",
    "backend_v2": "deployment/Dockerfile.backend-base",
    "frontend_v1": "deployment/Dockerfile.frontend-base",
    "frontend_v2": "deployment/Dockerfile.frontend-base",
}
