"""Valid variations of the reference solution keep full points.

Students write the same thing many ways; the grader judges what a config or
script does, not how it is spelled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autograder import gcloud_oracle
from tests.autograder.builders import replace, solution_files
from tests.autograder.conftest import automated_points, failed

REGISTRY = "northamerica-northeast1-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}"

EXEC_FORM_CONFIG = f"""\
# Exec-form steps, short options with separate values, individual pushes.
substitutions:
  _REPOSITORY: ml-deploy
steps:
- id: pull
  name: gcr.io/cloud-builders/docker
  args: [pull, "{REGISTRY}/backend-base"]
  allowFailure: true
- id: base
  name: gcr.io/cloud-builders/docker
  args: [build, -f, deployment/Dockerfile.backend-base, --cache-from,
         "{REGISTRY}/backend-base", -t, "{REGISTRY}/backend-base", .]
- name: gcr.io/cloud-builders/docker
  args: [push, "{REGISTRY}/backend-base"]
- id: app
  name: gcr.io/cloud-builders/docker
  args: [build, --file, backend_v2/Dockerfile,
         --build-arg, "BASE_IMAGE={REGISTRY}/backend-base",
         -t, "{REGISTRY}/backend-v2:${{BUILD_ID}}", --tag, "{REGISTRY}/backend-v2:latest", .]
- name: gcr.io/cloud-builders/docker
  args: [push, "{REGISTRY}/backend-v2:${{BUILD_ID}}"]
- name: gcr.io/cloud-builders/docker
  args: [push, "{REGISTRY}/backend-v2:latest"]
"""

SCRIPT_AND_IMAGES_CONFIG = f"""\
substitutions:
  _REPOSITORY: ml-deploy
steps:
  - name: gcr.io/cloud-builders/docker
    script: |
      docker pull {REGISTRY}/frontend-base:latest || exit 0
  - name: gcr.io/cloud-builders/docker
    entrypoint: bash
    args:
      - -c
      - |
        docker build --file deployment/Dockerfile.frontend-base \\
          --cache-from {REGISTRY}/frontend-base:latest \\
          --tag {REGISTRY}/frontend-base:latest .
        docker build -f frontend_v1/Dockerfile \\
          --build-arg BASE_IMAGE={REGISTRY}/frontend-base:latest \\
          -t {REGISTRY}/frontend-v1:latest .
images:
  - {REGISTRY}/frontend-base:latest
  - {REGISTRY}/frontend-v1:latest
"""

SUBMIT_WITH_ARGUMENT = """\
#!/usr/bin/env bash
# Usage: submit_build_backend_v1.sh PROJECT_ID
set -euo pipefail
project="${1:?usage: $0 PROJECT_ID}"
here="$(dirname "$0")"
gcloud builds submit "$here/.." --project "$project" \\
  --config "$here/cloudbuild_backend_v1.yaml"
"""

DEPLOY_WITH_ARGUMENT = """\
#!/usr/bin/env bash
set -euo pipefail
project="${1:?usage: $0 PROJECT_ID}"
gcloud run deploy backend-v1 \\
  --image "northamerica-northeast1-docker.pkg.dev/$project/ml-deploy/backend-v1:latest" \\
  --region northamerica-northeast1 --allow-unauthenticated --project "$project" \\
  --memory 2Gi
"""

SUBMIT_FROM_REPO_ROOT = """\
#!/bin/bash
cd "$(dirname "$0")/.." || exit 1
gcloud builds submit --config=deployment/cloudbuild_frontend_v1.yaml .
"""

DEPLOY_LITERAL_VALUES = """\
#!/bin/bash
set -e
gcloud run deploy frontend-v1 \\
  --image=northamerica-northeast1-docker.pkg.dev/my-course-project/ml-deploy/frontend-v1 \\
  --region=northamerica-northeast1 \\
  --platform=managed \\
  --allow-unauthenticated \\
  --set-env-vars=SERVING_URL=https://backend-v1-q3xk7d2lfa-nn.a.run.app/
"""

DEPLOY_WITH_IAM_BINDING = """\
#!/usr/bin/env bash
set -euo pipefail
gcloud config set run/region northamerica-northeast1
PROJECT=$(gcloud config get-value project)
gcloud beta run deploy backend-v2 \\
  --image "northamerica-northeast1-docker.pkg.dev/${PROJECT}/ml-deploy/backend-v2:latest" \\
  --memory 4Gi --port 8080
gcloud run services add-iam-policy-binding backend-v2 \\
  --member=allUsers --role=roles/run.invoker
"""


# The repository comes only from the submit script's --substitutions (the config
# has no default): read wrongly, the images would have no repository at all.
CONFIG_WITHOUT_DEFAULTS = (
    (Path(__file__).resolve().parents[2] / "solution" / "cloudbuild_backend_v2.yaml")
    .read_text(encoding="utf-8")
    .replace("  _REPOSITORY: ml-deploy\n", "  _UNUSED: x\n")
)
SUBMIT_GLOBAL_FLAG_FIRST = """\
#!/usr/bin/env bash
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
project="$(gcloud config get-value project)"
gcloud --project "$project" builds submit "$here/.." \\
  --config="$here/cloudbuild_backend_v2.yaml" --substitutions=_REPOSITORY=ml-deploy
"""
SUBMIT_GLOBAL_FLAG_LAST = """\
#!/usr/bin/env bash
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
project="$(gcloud config get-value project)"
gcloud builds submit "$here/.." --config="$here/cloudbuild_backend_v2.yaml" \\
  --substitutions=_REPOSITORY=ml-deploy --project "$project"
"""


def _flow_style(text: str) -> str:
    return yaml.safe_dump(yaml.safe_load(text), default_flow_style=True, width=10_000)


def _with(**changes: str) -> dict[str, str]:
    files = solution_files()
    files.update({f"deployment/{name}": text for name, text in changes.items()})
    return files


VARIATIONS = {
    "flow-style YAML everywhere": lambda: _with(
        **{"cloudbuild_frontend_v2.yaml": _flow_style(solution_files()[_cb("frontend_v2")])}
    ),
    "exec form, -t/-f, --cache-from X, allowFailure pull, single pushes": lambda: _with(
        **{"cloudbuild_backend_v2.yaml": EXEC_FORM_CONFIG}
    ),
    "script: pull, one bash step for both builds, images: instead of pushes": lambda: _with(
        **{"cloudbuild_frontend_v1.yaml": SCRIPT_AND_IMAGES_CONFIG}
    ),
    "scripts that take the project as an argument": lambda: _with(
        **{
            "submit_build_backend_v1.sh": SUBMIT_WITH_ARGUMENT,
            "deploy_backend_v1.sh": DEPLOY_WITH_ARGUMENT,
        }
    ),
    "a submit script that cds to the repo root": lambda: _with(
        **{"submit_build_frontend_v1.sh": SUBMIT_FROM_REPO_ROOT}
    ),
    "literal project and SERVING_URL, untagged image": lambda: _with(
        **{"deploy_frontend_v1.sh": DEPLOY_LITERAL_VALUES}
    ),
    "region from gcloud config, beta track, public through IAM": lambda: _with(
        **{"deploy_backend_v2.sh": DEPLOY_WITH_IAM_BINDING}
    ),
    "gcloud --project P builds submit, the repository from --substitutions": lambda: _with(
        **{
            "submit_build_backend_v2.sh": SUBMIT_GLOBAL_FLAG_FIRST,
            "cloudbuild_backend_v2.yaml": CONFIG_WITHOUT_DEFAULTS,
        }
    ),
    "gcloud builds submit ... --project P, the repository from --substitutions": lambda: _with(
        **{
            "submit_build_backend_v2.sh": SUBMIT_GLOBAL_FLAG_LAST,
            "cloudbuild_backend_v2.yaml": CONFIG_WITHOUT_DEFAULTS,
        }
    ),
    "quoted URLs and comments in deliverables.yaml": lambda: replace(
        replace(
            solution_files(),
            "deliverables.yaml",
            "back_end: https://backend-v1-q3xk7d2lfa-nn.a.run.app",
            "back_end: 'https://backend-v1-q3xk7d2lfa-nn.a.run.app'  # v1 backend",
        ),
        "deliverables.yaml",
        "front_end: https://frontend-v2-q3xk7d2lfa-nn.a.run.app",
        'front_end: "https://frontend-v2-123456789012.northamerica-northeast1.run.app"',
    ),
}


def _cb(component: str) -> str:
    return f"deployment/cloudbuild_{component}.yaml"


@pytest.fixture(scope="module")
def variation_results(grader):
    return grader.grade_many({name: make() for name, make in VARIATIONS.items()})


@pytest.mark.parametrize("name", list(VARIATIONS))
def test_valid_variation_keeps_full_points(name, variation_results):
    results = variation_results[name]
    assert failed(results) == {}, {k: r.message for k, r in failed(results).items()}
    awarded, possible = automated_points(results)
    assert awarded == possible


def test_a_global_flag_before_the_command_group_is_graded_the_same(variation_results):
    """`gcloud --project P builds submit` reads as `builds submit` with its --substitutions."""
    first = variation_results[
        "gcloud --project P builds submit, the repository from --substitutions"
    ]
    last = variation_results[
        "gcloud builds submit ... --project P, the repository from --substitutions"
    ]
    assert {k: (r.status, r.score) for k, r in first.items()} == {
        k: (r.status, r.score) for k, r in last.items()
    }
    assert first["Q1.backend_v2.submit_build"].status == "passed"
    assert first["Q1.backend_v2.images_pushed"].status == "passed"


@pytest.mark.gcloud
@pytest.mark.parametrize(
    "config", [EXEC_FORM_CONFIG, SCRIPT_AND_IMAGES_CONFIG], ids=["exec-form", "script-images"]
)
def test_gcloud_itself_accepts_the_variant_configs(config, tmp_path):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(config)
    verdict = gcloud_oracle.validate_build_config(path)
    assert verdict.accepted, verdict.message
