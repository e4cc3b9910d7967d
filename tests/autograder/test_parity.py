"""The same points with and without gcloud: the project's own checks decide, gcloud adds words.

A corpus built from the reference solution (valid variants, realistic mistakes
including the two only gcloud's parser used to catch, a refused --flags-file) is
graded twice: with the real gcloud and with none. Every item must get the same
points. Then the project's two checks are compared with gcloud itself, case by
case: a Cloud Build config corpus and a command corpus, same accept/refuse.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from autograder import cloudbuild_schema, gcloud_cli, gcloud_oracle
from tests.autograder.builders import REPO_ROOT, solution_files
from tests.autograder.test_mistakes import MISTAKES
from tests.autograder.test_variations import VARIATIONS

pytestmark = pytest.mark.gcloud
if not gcloud_oracle.gcloud_available():
    pytestmark = [pytestmark, pytest.mark.skip(reason="gcloud is not installed")]

_MISTAKES = {m.name: m for m in MISTAKES}


def _corpus() -> dict[str, dict[str, str]]:
    corpus = {"reference solution": solution_files()}
    for name in (
        "region from gcloud config, beta track, public through IAM",
        "exec form, -t/-f, --cache-from X, allowFailure pull, single pushes",
        "scripts that take the project as an argument",
        "literal project and SERVING_URL, untagged image",
    ):
        corpus[f"variant: {name}"] = VARIATIONS[name]()
    for name in (
        "an unknown key in a step (gcloud's parser)",
        "an unknown gcloud flag",
        "service name with an underscore",
        "wrong region in the deploy script",
        "pull without || exit 0",
        "a template placeholder left in a deploy script",
    ):
        corpus[f"mistake: {name}"] = _MISTAKES[name].files()
    flags_file = solution_files()
    flags_file["deployment/deploy_frontend_v1.sh"] = flags_file[
        "deployment/deploy_frontend_v1.sh"
    ].replace("gcloud run deploy frontend-v1", "gcloud run deploy frontend-v1 --flags-file=f.yaml")
    corpus["hostile: --flags-file"] = flags_file
    return corpus


CORPUS = _corpus()


@pytest.fixture(scope="module")
def both(grader, solution_gcloud_results):
    with_gcloud = grader.grade_many(CORPUS, gcloud=True)
    without = grader.grade_many(CORPUS, gcloud=False)
    return with_gcloud, without


def test_the_corpus_is_at_least_ten_submissions_with_mistakes_and_variants():
    assert len(CORPUS) >= 10
    assert sum(name.startswith("mistake") for name in CORPUS) >= 5


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_item_gets_the_same_points_with_and_without_gcloud(both, name):
    with_gcloud, without = both
    points = {k: r.score for k, r in with_gcloud[name].items()}
    assert points == {k: r.score for k, r in without[name].items()}
    if name.startswith("mistake") or name.startswith("hostile"):
        assert sum(points.values()) < 74
    else:
        assert sum(r.score for r in with_gcloud[name].values() if r.item.kind == "auto") == 74


def test_what_gcloud_caught_is_caught_without_it(both):
    _, without = both
    unknown_key = without["mistake: an unknown key in a step (gcloud's parser)"]
    assert "waitfor" in unknown_key["Q1.backend_v1.config_valid"].message
    flag = without["mistake: an unknown gcloud flag"]["Q3.backend_v1.deploy_runs"].message
    assert "unrecognized arguments: --cpu-bost" in flag
    assert "did you mean '--cpu-boost'" in flag
    refused = without["hostile: --flags-file"]["Q3.frontend_v1.deploy_runs"].message
    assert "--flags-file" in refused


def test_with_gcloud_its_own_words_join_the_message(both):
    with_gcloud, _ = both
    flag = with_gcloud["mistake: an unknown gcloud flag"]["Q3.backend_v1.deploy_runs"].message
    assert "unrecognized arguments: --cpu-bost" in flag


# -- the project's checks against gcloud itself, case by case ----------------------------------

_BASE = yaml.safe_load((REPO_ROOT / "solution" / "cloudbuild_backend_v1.yaml").read_text())


def _config(change) -> dict:
    data = copy.deepcopy(_BASE)
    change(data)
    return data


CONFIGS = {
    "reference": _config(lambda d: None),
    "unknown step key": _config(lambda d: d["steps"][0].update(waitfor=["x"])),
    "unknown top key": _config(lambda d: d.update(stepz=[])),
    "unknown options key": _config(lambda d: d.update(options={"machineTyp": "E2_HIGHCPU_8"})),
    "options": _config(lambda d: d.update(options={"machineType": "E2_HIGHCPU_8"})),
    "bad enum": _config(lambda d: d.update(options={"machineType": "BIG"})),
    "snake_case key": _config(lambda d: d["steps"][1].update(wait_for=["-"])),
    "timeout as a number": _config(lambda d: d.update(timeout=1800)),
    "args as one string": _config(lambda d: d["steps"][0].update(args="build .")),
    "args of numbers": _config(lambda d: d["steps"][0].update(args=[1, 2])),
    "env as a mapping": _config(lambda d: d["steps"][0].update(env={"A": "b"})),
    "images as a string": _config(lambda d: d.update(images="x")),
    "substitutions as a list": _config(lambda d: d.update(substitutions=["_A=b"])),
    "lowercase substitution": _config(lambda d: d.update(substitutions={"_a": "x"})),
    "substitution without _": _config(lambda d: d.update(substitutions={"FOO": "x"})),
    "numeric substitution": _config(lambda d: d.update(substitutions={"_A": 1})),
    "allowFailure as text": _config(lambda d: d["steps"][0].update(allowFailure="yes")),
    "id as a number": _config(lambda d: d["steps"][0].update(id=5)),
    "no steps": _config(lambda d: d.update(steps=[])),
    "a source": _config(lambda d: d.update(source={"storageSource": {"bucket": "b"}})),
    "bad base64 secret": _config(lambda d: d.update(secrets=[{"secretEnv": {"A": "b"}}])),
    "available secrets": _config(
        lambda d: d.update(availableSecrets={"secretManager": [{"versionName": "v", "env": "S"}]})
    ),
    "step script": _config(lambda d: d["steps"][0].update(script="echo hi")),
    "a list": [1, 2],
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_config_check_agrees_with_gcloud(name, tmp_path):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(CONFIGS[name]))
    gcloud = gcloud_oracle.validate_build_config(path)
    assert gcloud.kind != gcloud_oracle.INCONCLUSIVE, gcloud.message
    project = cloudbuild_schema.check(CONFIGS[name])
    assert (project is not None) == gcloud.rejected, (project, gcloud.message)


COMMANDS = {
    "reference deploy": "run deploy backend-v1 --image=x --region=r --port=8080 --cpu-boost",
    "beta track": "beta run deploy backend-v1 --image=x --region=r --memory 4Gi",
    "hidden --platform": "run deploy s --image=x --region=r --platform=managed -q",
    "--no- form": "run deploy s --image=x --region=r --no-allow-unauthenticated",
    "iam binding": "run services add-iam-policy-binding s --member=allUsers "
    "--role=roles/run.invoker --region=r",
    "describe": "run services describe s --region=r --format=value(status.url)",
    "builds submit": "builds submit . --config=c.yaml --substitutions=_A=b",
    "config get-value": "config get-value project",
    "unknown flag": "run deploy s --image=x --region=r --cpu-bost",
    "misspelled flag": "run deploy s --imag=x --region=r",
    "unknown command": "run deplyo s",
    "missing value": "run deploy s --region=r --image",
    "value for a switch": "run deploy s --image=x --region=r --allow-unauthenticated=true",
    "bad choice": "run deploy s --image=x --region=r --ingress=foo",
    "two positionals": "run deploy s t --image=x --region=r",
    "bad port": "run deploy s --image=x --region=r --port=abc",
    "negative instances": "run deploy s --image=x --region=r --max-instances=-3",
    "zero concurrency": "run deploy s --image=x --region=r --concurrency=0",
    "bad env syntax": "run deploy s --image=x --region=r --set-env-vars=ABC",
    "exclusive flags": "run deploy s --image=x --region=r --set-env-vars=A=1 --update-env-vars=B=2",
    "bad duration": "run deploy s --image=x --region=r --timeout=abc",
    "config and tag": "builds submit . --tag=x --config=c.yaml",
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_check_agrees_with_gcloud(name, tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_BASE))
    argv = ["gcloud", *COMMANDS[name].split()]
    gcloud = gcloud_oracle.check_command(argv, cwd=tmp_path, tree=tmp_path)
    assert gcloud.kind != gcloud_oracle.INCONCLUSIVE, gcloud.message
    project = gcloud_cli.check(argv, tree=tmp_path, cwd=tmp_path)
    assert (project is not None) == gcloud.rejected, (project, gcloud.message)
