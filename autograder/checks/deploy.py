"""Q3 and Q6: the deploy scripts, run against a recording gcloud."""

from __future__ import annotations

import contextlib
import json
import math
import re
from functools import cache
from pathlib import Path

from autograder import assignment
from autograder.checks import check
from autograder.checks.build import check_registry_reference, fails, find_builds, images_pushed
from autograder.checks.common import (
    gcloud_words,
    refusal_failure,
    refused_calls,
    space_failure,
    split_by_space,
)
from autograder.checks.deliverables import listed_urls
from autograder.checks.services import (
    SERVICE_NAME,
    deploy_call,
    raw_service_name,
    service_name,
)
from autograder.cloudbuild import image_repo, normalize_image, split_image
from autograder.context import GradingContext
from autograder.feedback import CheckFailed, Skipped
from autograder.recording_cli import service_url
from autograder.safe_yaml import load_yaml_file
from autograder.script_runner import RecordedCall
from autograder.shell_words import gcloud_key_values

_PUBLIC_MEMBER = "allUsers"
_INVOKER_ROLE = "roles/run.invoker"
# The torch backends' peak memory, measured by `python -m bench.peak_memory`.
BACKEND_MEMORY_FILE = Path(__file__).resolve().parent.parent / "backend_memory.json"
# Above the measured peak: Cloud Run counts its own use and the in-memory /tmp too.
MEMORY_HEADROOM = 1.25
CLOUD_RUN_DEFAULT_MEMORY_MIB = 512
_MEMORY_UNITS = {"": 2**-20, "k": 1e3 / 2**20, "m": 1e6 / 2**20, "g": 1e9 / 2**20}
_MEMORY_UNITS |= {"ki": 2**-10, "mi": 1.0, "gi": 2**10, "t": 1e12 / 2**20, "ti": 2**20}


@check("deploy_runs")
def deploy_runs(ctx: GradingContext, component: str) -> str | None:
    logical = assignment.deploy_script(component)
    call = deploy_call(ctx, component)
    note = None
    for refused, verdict in refused_calls(ctx, logical):
        name = raw_service_name(call) or ""
        if refused == call and not SERVICE_NAME.fullmatch(name):
            # gcloud stops at the invalid name; deploy_service charges the name.
            note = f"gcloud refuses the service name {name}: see the deploy_service item"
            continue
        raise refusal_failure(refused, verdict, logical)
    return note


def _region(run_calls: list[RecordedCall], call: RecordedCall) -> str | None:
    region = call.flag("--region")
    if region:
        return region
    for earlier in run_calls:
        words = gcloud_words(earlier)
        if words[:3] == ["config", "set", "run/region"] and len(words) > 3:
            region = words[3]
    return region


def _config_images(ctx: GradingContext, component: str) -> tuple[list[str], list[str]]:
    """(app image tags, base image tags) cloudbuild_<component>.yaml pushes.

    The app tags it builds when it pushes none (its own push check charges
    that); no app tags at all when the config cannot be read or builds no app.
    """
    try:
        builds = find_builds(ctx, component)
    except CheckFailed:
        return [], []
    if builds.app is None:
        return [], []
    pushed = builds.config.pushed_images()
    app_repos = {image_repo(x) for x in builds.app.tags}
    app_tags = [t for t in pushed if image_repo(t) in app_repos] or list(builds.app.tags)
    base_tags = list(builds.base.tags) if builds.base else []
    return app_tags, base_tags


def _same_image(deployed: str, pushed: str) -> bool:
    """Whether `deployed` (a concrete reference) is one `pushed` (maybe with ${...}) names."""
    deployed_repo, deployed_tag = split_image(normalize_image(deployed))
    pushed_repo, pushed_tag = split_image(normalize_image(pushed))
    pattern = re.escape(pushed_repo).replace(re.escape("${PROJECT_ID}"), r"[a-z][a-z0-9-]+")
    if not re.fullmatch(pattern, deployed_repo):
        return False
    if pushed_tag == "${BUILD_ID}":
        return deployed_tag != "latest"  # a build id (or digest) the script looked up
    return deployed_tag == pushed_tag or (deployed_tag or "").startswith("@")


@check("deploy_service")
def deploy_service(ctx: GradingContext, component: str) -> str | None:
    logical = assignment.deploy_script(component)
    call = deploy_call(ctx, component)
    service_name(ctx, component)
    run = ctx.script_run(logical)
    region = _region(run.gcloud_calls, call)
    if region != assignment.REGION:
        raise CheckFailed(
            what="the service is deployed in the wrong region",
            expected=f"--region={assignment.REGION}",
            found=region or "no --region (gcloud would ask, or use another default)",
            fix=f"pass --region={assignment.REGION}",
            where=logical,
        )
    image = call.flag("--image")
    if not image:
        source = call.flag("--source")
        raise CheckFailed(
            what="the script does not deploy the image your Cloud Build config pushed",
            expected="--image=<the app image cloudbuild pushed>",
            found=f"--source={source} (a second, different build)" if source else "no --image",
            fix="deploy with --image=... the :latest tag your build pushed",
            where=logical,
        )
    config_file = assignment.cloudbuild_file(component)
    app_tags, base_tags = _config_images(ctx, component)
    if not app_tags:
        # The config cannot say what it pushes and is charged for that itself;
        # the image is judged on its own until it can be compared.
        check_registry_reference(image, logical, component, "app")
        raise Skipped(
            blocked_by=config_file,
            unchecked="whether the deployed image is the app image it pushes",
            where=logical,
        )
    # Deploying exactly what the config pushes is right here, even where the
    # config's own image names are wrong (they cost the config its points).
    if any(_same_image(image, t) for t in app_tags):
        return None
    if any(_same_image(image, t) for t in base_tags):
        found = f"{image}, the base image (no app code in it)"
    else:
        others = [
            other
            for other in assignment.COMPONENTS
            if other != component
            and any(_same_image(image, t) for t in _config_images(ctx, other)[0])
        ]
        if others:
            found = f"{image}, the image of {others[0]}"
        else:
            other_project = _project_difference(run, image, app_tags, config_file, logical)
            if other_project is not None:
                raise other_project
            if fails(images_pushed, ctx, component):
                # The config names its images wrongly itself: compare once it is fixed.
                check_registry_reference(image, logical, component, "app")
                raise Skipped(
                    blocked_by=config_file,
                    unchecked="whether the deployed image is the app image it pushes (they "
                    "differ now, and its own image names fail its Q1 check)",
                    where=logical,
                )
            found = f"{image}, which no build pushes"
    raise CheckFailed(
        what=f"the deployed image is not the one {config_file} pushes",
        expected=" or ".join(sorted(app_tags)),
        found=found,
        fix="use the same registry path, repository, image name and tag as the config's push",
        where=logical,
    )


def _project_difference(
    run, image: str, app_tags: list[str], config_file: str, logical: str
) -> CheckFailed | None:
    """The mistake when the deployed image differs from the pushed one in its project only."""
    deployed = image_repo(normalize_image(image)).split("/")
    for tag in app_tags:
        pushed = image_repo(normalize_image(tag)).split("/")
        if len(pushed) != len(deployed) or len(pushed) < 4:
            continue
        if pushed[0] != deployed[0] or pushed[2:] != deployed[2:] or pushed[1] == deployed[1]:
            continue
        written = pushed[1]
        if deployed[1] == run.project:
            # The script asked gcloud (or took an argument): the project is whatever
            # the student's gcloud is set to, never the name written in the config.
            found = (
                f"{config_file} writes the project `{written}` into its image names, while "
                "this script takes the project from gcloud's configuration"
            )
        else:
            found = f"this script deploys from the project `{deployed[1]}`, {config_file} "
            found += f"pushes to the project `{written}`"
        return CheckFailed(
            what=f"the deployed image is in another project than the one {config_file} pushes to",
            expected="the same project on both sides, never written into the files: "
            f"$PROJECT_ID in {config_file} (Cloud Build fills in the project it builds "
            "in) and `$(gcloud config get-value project)` in this script",
            found=found,
            fix=f"replace `{written}` with $PROJECT_ID in {config_file}"
            + (
                f", and `{deployed[1]}` with $(gcloud config get-value project) here"
                if deployed[1] != run.project
                else ""
            ),
            where=logical,
        )
    return None


def _is_public(run_calls: list[RecordedCall], call: RecordedCall, service: str) -> bool | None:
    """True if public, False if explicitly private, None if nothing says."""
    if "--no-allow-unauthenticated" in call.argv:
        return False
    if "--allow-unauthenticated" in call.argv or "--no-invoker-iam-check" in call.argv:
        return True
    for other in run_calls:
        words = gcloud_words(other)
        if (
            words[:3] == ["run", "services", "add-iam-policy-binding"]
            and words[3:4] == [service]
            and other.flag("--member") == _PUBLIC_MEMBER
            and other.flag("--role") == _INVOKER_ROLE
        ):
            return True
    return None


def environment(ctx: GradingContext, component: str, call: RecordedCall) -> dict[str, str]:
    """Environment variables the deploy sets (--set-env-vars, --update-env-vars, a file)."""
    values: dict[str, str] = {}
    for index, word in enumerate(call.argv):
        for flag in ("--set-env-vars", "--update-env-vars"):
            if word == flag and index + 1 < len(call.argv):
                values.update(gcloud_key_values(call.argv[index + 1]))
            elif word.startswith(flag + "="):
                values.update(gcloud_key_values(word.split("=", 1)[1]))
    env_file = call.flag("--env-vars-file")
    if env_file:
        run = ctx.script_run(assignment.deploy_script(component))
        if split_by_space(run, env_file):
            raise space_failure(run, "--env-vars-file", env_file, run.script)
        logical = ctx.logical_path(env_file, call.cwd)
        path = ctx.grading_tree() / logical if logical else None
        if path is None or not path.is_file():
            raise CheckFailed(
                what="the --env-vars-file the script uses is not part of the submission",
                expected="SERVING_URL set with --set-env-vars (or a file in the repository)",
                found=env_file,
                fix='use --set-env-vars="SERVING_URL=$backend_url"',
                where=assignment.deploy_script(component),
            )
        data = load_yaml_file(path, logical)
        if isinstance(data, dict):
            values.update({str(k): str(v) for k, v in data.items()})
    return values


def _listens_on_port_variable(ctx: GradingContext, component: str) -> int | None:
    """None if the image's command uses $PORT (any port works), else the EXPOSEd port."""
    dockerfile = ctx.submission.assignment_file(assignment.app_dockerfile(component))
    text = dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else ""
    commands = [line for line in text.splitlines() if re.match(r"\s*(CMD|ENTRYPOINT)\b", line)]
    if not commands or any("PORT" in line for line in commands):
        return None
    exposed = re.findall(r"^\s*EXPOSE\s+(\d+)", text, re.MULTILINE)
    return int(exposed[-1]) if exposed else None


@check("deploy_access")
def deploy_access(ctx: GradingContext, component: str) -> None:
    logical = assignment.deploy_script(component)
    call = deploy_call(ctx, component)
    run = ctx.script_run(logical)
    public = _is_public(run.gcloud_calls, call, raw_service_name(call) or "")
    if not public:
        raise CheckFailed(
            what="the service is not public, so the grader and your users get 403",
            expected="--allow-unauthenticated (or an add-iam-policy-binding of allUsers to "
            "roles/run.invoker on the service)",
            found="--no-allow-unauthenticated" if public is False else "neither",
            fix="add --allow-unauthenticated to gcloud run deploy",
            where=logical,
        )
    env = environment(ctx, component, call)
    if "PORT" in env:
        raise CheckFailed(
            what="PORT is set with the environment variables, but Cloud Run reserves it",
            expected="--port=8080 (Cloud Run then sets $PORT itself)",
            found=f"PORT={env['PORT']}",
            fix="remove PORT from --set-env-vars and use --port",
            where=logical,
        )
    port = call.flag("--port")
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise CheckFailed(
            what="--port is not a port number",
            expected="--port=8080",
            found=port,
            fix="give a number; the image listens on whatever $PORT Cloud Run sets",
            where=logical,
        )
    fixed = _listens_on_port_variable(ctx, component)
    effective = int(port) if port else 8080
    if fixed is not None and effective != fixed:
        raise CheckFailed(
            what="Cloud Run would send requests to a port the image does not listen on",
            expected=f"--port={fixed}",
            found=f"--port={effective}",
            fix=f"deploy with --port={fixed}",
            where=logical,
        )
    if component.startswith("backend"):
        _check_memory(call, component, logical)


@cache
def backend_peak_mib() -> dict[str, int]:
    """The measured peak memory of each torch backend (bench/peak_memory.py), in MiB."""
    return json.loads(BACKEND_MEMORY_FILE.read_text(encoding="utf-8"))["peak_mib"]


def required_memory_mib(component: str) -> int:
    return math.ceil(backend_peak_mib()[component] * MEMORY_HEADROOM)


def memory_mib(value: str) -> float | None:
    """A --memory value (512Mi, 2Gi, 2G, 1073741824) in MiB; None if it is not a size."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgt]i?)?b?", value.strip().lower())
    if not match:
        return None
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


def _check_memory(call: RecordedCall, component: str, logical: str) -> None:
    """A torch backend needs its measured peak memory plus headroom, or it dies at start."""
    raw = call.flag("--memory")
    value = memory_mib(raw) if raw is not None else CLOUD_RUN_DEFAULT_MEMORY_MIB
    if value is None:
        raise CheckFailed(
            what="--memory is not a memory size",
            expected="a size such as --memory=2Gi",
            found=f"--memory={raw}",
            fix="write the size with its unit: Mi or Gi",
            where=logical,
        )
    required = required_memory_mib(component)
    if value >= required:
        return
    peak = backend_peak_mib()[component]
    suggestion = f"{math.ceil(required / 1024)}Gi"
    raise CheckFailed(
        what=f"{component} would run out of memory on Cloud Run: it holds torch and its "
        "model" + ("s" if component == "backend_v2" else "") + ", and the instance is "
        "stopped as soon as it uses more than --memory",
        expected=f"--memory of at least {required} MiB ({component} uses up to {peak} MiB, "
        f"measured, plus {MEMORY_HEADROOM - 1:.0%} for Cloud Run's own use), e.g. "
        f"--memory={suggestion}",
        found=f"--memory={raw}"
        if raw is not None
        else f"no --memory, so Cloud Run's default of {CLOUD_RUN_DEFAULT_MEMORY_MIB} MiB",
        fix=f"deploy with --memory={suggestion} (and --cpu=2, which the model's speed needs)",
        where=logical,
    )


@check("serving_url")
def serving_url(ctx: GradingContext, component: str) -> None:
    logical = assignment.deploy_script(component)
    version = component.split("_")[1]
    call = deploy_call(ctx, component)
    value = environment(ctx, component, call).get("SERVING_URL")
    if not value:
        raise CheckFailed(
            what="the frontend is deployed without SERVING_URL, so it cannot reach a backend",
            expected=f'--set-env-vars="SERVING_URL=<the backend {version} URL>"',
            found="no SERVING_URL",
            fix=f"look up backend-{version}'s URL (gcloud run services describe) and pass it",
            where=logical,
        )
    # The backend's URL as deliverables.yaml lists it (once it is in its right
    # place there) or as Cloud Run would give the name the backend's script deploys.
    accepted = set()
    with contextlib.suppress(CheckFailed):
        accepted.add(listed_urls(ctx, version)["back_end"].url.rstrip("/"))
    try:
        backend = service_name(ctx, f"backend_{version}")
        run = ctx.script_run(logical)
        # What the recorder answered the script: the URL deliverables.yaml gives
        # that name, else one made up the way Cloud Run makes them.
        known = ctx.known_service_urls().get(backend) or service_url(backend, run.project)
        accepted.add(known.rstrip("/"))
    except CheckFailed:
        pass
    if value.rstrip("/") in accepted:
        return
    if not accepted:
        raise Skipped(
            blocked_by=f"deliverables.yaml (services.{version}.back_end) or "
            f"{assignment.deploy_script(f'backend_{version}')}",
            unchecked=f"whether SERVING_URL ({value}) is the {version} backend's URL",
            where=logical,
        )
    other = "v2" if version == "v1" else "v1"
    wrong_version = False
    with contextlib.suppress(CheckFailed):
        wrong_version = value.rstrip("/") == listed_urls(ctx, other)["back_end"].url.rstrip("/")
    found = value + (f" (the {other} backend)" if wrong_version else "")
    raise CheckFailed(
        what=f"SERVING_URL does not point at the {version} backend",
        expected=" or ".join(sorted(accepted)),
        found=found,
        fix=f"set SERVING_URL to backend {version}'s URL, the back_end of "
        f"services.{version} in deliverables.yaml",
        where=logical,
    )
