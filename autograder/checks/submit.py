"""Q1: the submit scripts, run against a recording gcloud."""

from __future__ import annotations

from autograder import assignment
from autograder.checks import check
from autograder.checks.common import (
    gcloud_words,
    refusal_failure,
    refused_calls,
    side_calls_note,
    space_failure,
    split_by_space,
    working_script,
)
from autograder.context import GradingContext
from autograder.feedback import CheckFailed
from autograder.script_runner import RecordedCall, ScriptRun


@check("submit_runs")
def submit_runs(ctx: GradingContext, component: str) -> None:
    working_script(ctx, assignment.submit_script(component))


@check("submit_build")
def submit_build(ctx: GradingContext, component: str) -> None:
    logical = assignment.submit_script(component)
    run = working_script(ctx, logical)
    expected_config = assignment.cloudbuild_file(component)
    submits = [c for c in run.gcloud_calls if gcloud_words(c)[:2] == ["builds", "submit"]]
    if not submits:
        local = [c for c in run.docker_calls if c.argv[:1] == ("build",)]
        called = [" ".join(c.command)[:120] for c in run.gcloud_calls]
        raise CheckFailed(
            what="the script never submits a build to Cloud Build",
            expected=f'gcloud builds submit "$repo_root" --config=.../{expected_config}',
            found=(
                "a local `docker build` instead"
                if local
                else ("gcloud calls: " + "; ".join(called))
                if called
                else "no gcloud call at all"
            )
            + side_calls_note(run),
            fix="call `gcloud builds submit` with your config and the repo root",
            where=logical,
        )
    problems = [_submit_problem(ctx, run, call, component) for call in submits]
    if all(problems):
        raise problems[0]
    # The command's own verdict (its words and flags): a config gcloud would refuse
    # is charged to the config alone (config_valid), never to this script.
    for call, verdict in refused_calls(ctx, logical):
        raise refusal_failure(call, verdict, logical)


def _submit_problem(
    ctx: GradingContext, run: ScriptRun, call: RecordedCall, component: str
) -> CheckFailed | None:
    logical = assignment.submit_script(component)
    expected_config = assignment.cloudbuild_file(component)
    config = call.flag("--config")
    if config is None:
        uses_tag = call.flag("--tag") is not None
        return CheckFailed(
            what="gcloud builds submit is not given your Cloud Build config",
            expected=f"--config pointing at {expected_config}",
            found="--tag (a plain Dockerfile build)" if uses_tag else "no --config",
            fix="add --config=<path of your cloudbuild yaml>",
            where=logical,
        )
    if split_by_space(run, config):
        return space_failure(run, "--config", config, logical)
    config_name = ctx.logical_path(config, call.cwd)
    if config_name != expected_config:
        return CheckFailed(
            what="the script submits the wrong config",
            expected=expected_config,
            found=config_name or f"{config} (outside the repository)",
            fix=f"point --config at {expected_config} (build paths from the script's folder)",
            where=logical,
        )
    if "--no-source" in call.argv:
        return CheckFailed(
            what="the build is submitted without source",
            expected="the repo root as the source, so the Dockerfiles can COPY the code",
            found="--no-source",
            fix='pass the repo root folder: gcloud builds submit "$repo_root" --config=...',
            where=logical,
        )
    positional = gcloud_words(call)[2:]
    source = positional[0] if positional else "."
    if split_by_space(run, source):
        return space_failure(run, "gcloud builds submit (its source folder)", source, logical)
    source_name = ctx.logical_path(source, call.cwd)
    if source_name != ".":
        return CheckFailed(
            what="the build's source is not the repo root",
            expected="the repository's top folder (it holds deployment/ and the component folders)",
            found=source_name or source,
            fix='compute the repo root from the script\'s folder: "$(dirname "$0")/.."',
            where=logical,
        )
    return None
