"""Q3 and Q6: the deploy scripts, run against a recording gcloud."""

from __future__ import annotations

import contextlib
import re

from autograder import assignment
from autograder.checks import check
from autograder.checks.build import check_registry_reference, find_builds, images_pushed
from autograder.checks.common import (
    gcloud_words,
    rejected_calls,
    side_calls_note,
    working_script,
)
from autograder.cloudbuild import image_repo, normalize_image, split_image
from autograder.context import GradingContext, _parse_key_values
from autograder.feedback import CheckFailed
from autograder.recording_cli import service_url
from autograder.safe_yaml import load_yaml_file
from autograder.script_runner import RecordedCall

# Cloud Run: lowercase letters, digits and dashes, starting with a letter, at most 49.
_SERVICE_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,47}[a-z0-9])?")
_PUBLIC_MEMBER = "allUsers"
_INVOKER_ROLE = "roles/run.invoker"


def deploy_call(ctx: GradingContext, component: str) -> RecordedCall:
    logical = assignment.deploy_script(component)
    run = working_script(ctx, logical)
    deploys = [c for c in run.gcloud_calls if gcloud_words(c)[:2] == ["run", "deploy"]]
    if not deploys:
        called = [" ".join(c.command)[:120] for c in run.gcloud_calls]
        raise CheckFailed(
            what="the script never deploys to Cloud Run",
            expected="a `gcloud run deploy SERVICE --image=...` command",
            found=("gcloud calls: " + "; ".join(called) if called else "no gcloud call at all")
            + side_calls_note(run),
            fix="call gcloud run deploy (see the template)",
            where=logical,
        )
    if len(deploys) > 1:
        names = [(gcloud_words(c)[2:3] or ["?"])[0] for c in deploys]
        raise CheckFailed(
            what="the script deploys more than once",
            expected=f"one `gcloud run deploy` of {component}",
            found=f"{len(deploys)} deploys: {', '.join(names)}",
            fix="deploy one service per script",
            where=logical,
        )
    return deploys[0]


def raw_service_name(call: RecordedCall) -> str | None:
    words = gcloud_words(call)[2:]
    return call.flag("--service") or (words[0] if words else None)


def service_name(ctx: GradingContext, component: str) -> str:
    """The deployed service's name, once it is a valid Cloud Run name."""
    call = deploy_call(ctx, component)
    logical = assignment.deploy_script(component)
    name = raw_service_name(call)
    suggestion = component.replace("_", "-")
    if not name:
        raise CheckFailed(
            what="gcloud run deploy is not given a service name",
            expected=f"gcloud run deploy {suggestion} ...",
            found=" ".join(call.command)[:200],
            fix="put the service name right after `gcloud run deploy`",
            where=logical,
        )
    if not _SERVICE_NAME.fullmatch(name):
        reason = (
            "Cloud Run rejects underscores in service names"
            if "_" in name
            else "service names take lowercase letters, digits and dashes, start with a "
            "letter, end without a dash, at most 49 characters"
        )
        raise CheckFailed(
            what=f"the service name is not valid: {reason}",
            expected=f"e.g. {suggestion}",
            found=name,
            fix=f"name the service {suggestion}",
            where=logical,
        )
    return name


@check("deploy_runs")
def deploy_runs(ctx: GradingContext, component: str) -> None:
    deploy_call(ctx, component)
    rejected_calls(ctx, assignment.deploy_script(component))


def _region(run_calls: list[RecordedCall], call: RecordedCall) -> str | None:
    region = call.flag("--region")
    if region:
        return region
    for earlier in run_calls:
        words = gcloud_words(earlier)
        if words[:3] == ["config", "set", "run/region"] and len(words) > 3:
            region = words[3]
    return region


def _expected_images(ctx: GradingContext, component: str) -> tuple[list[str], list[str]]:
    """(app image tags, base image tags) cloudbuild_<component>.yaml pushes."""
    try:
        builds = find_builds(ctx, component)
    except CheckFailed as failure:
        raise CheckFailed(
            what="cannot tell which image should be deployed, because "
            f"{failure.where} fails: {failure.what}",
            expected="a working cloudbuild config for this component (Q1)",
            found=failure.found,
            fix=failure.fix,
            where=assignment.deploy_script(component),
        ) from None
    if builds.app is None:
        raise CheckFailed(
            what="cannot tell which image should be deployed: "
            f"{assignment.cloudbuild_file(component)} builds no {component} image",
            expected="the app build step of Q1",
            fix="complete the cloudbuild config first",
            where=assignment.deploy_script(component),
        )
    pushed = builds.config.pushed_images()
    app_tags = [t for t in pushed if image_repo(t) in {image_repo(x) for x in builds.app.tags}]
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
    try:
        images_pushed(ctx, component)
    except CheckFailed:
        # The config itself is wrong and loses its Q1 points; judge the deploy on its own.
        check_registry_reference(image, logical, component, "app")
        return (
            f"the image was not compared with cloudbuild_{component}.yaml's, "
            "which fails its own checks"
        )
    app_tags, base_tags = _expected_images(ctx, component)
    if any(_same_image(image, t) for t in app_tags):
        return None
    if any(_same_image(image, t) for t in base_tags):
        found = f"{image}, the base image (no app code in it)"
    else:
        others = []
        for other in assignment.COMPONENTS:
            if other == component:
                continue
            try:
                other_tags, _ = _expected_images(ctx, other)
            except CheckFailed:
                continue
            if any(_same_image(image, t) for t in other_tags):
                others.append(other)
        found = image + (f", the image of {others[0]}" if others else ", which no build pushes")
    raise CheckFailed(
        what=f"the deployed image is not the one cloudbuild_{component}.yaml pushes",
        expected=" or ".join(sorted(app_tags)) or "the app image your config pushes",
        found=found,
        fix="use the same registry path, repository, image name and tag as the config's push",
        where=logical,
    )


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
                values.update(_parse_key_values(call.argv[index + 1]))
            elif word.startswith(flag + "="):
                values.update(_parse_key_values(word.split("=", 1)[1]))
    env_file = call.flag("--env-vars-file")
    if env_file:
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
    accepted = set()
    with contextlib.suppress(CheckFailed):
        accepted.add(ctx.version_urls(version)["back_end"].url.rstrip("/"))
    try:
        backend = service_name(ctx, f"backend_{version}")
        run = ctx.script_run(logical)
        accepted.add(service_url(backend, run.project).rstrip("/"))
    except CheckFailed:
        pass
    if value.rstrip("/") in accepted:
        return
    other = "v2" if version == "v1" else "v1"
    wrong_version = False
    with contextlib.suppress(CheckFailed):
        wrong_version = value.rstrip("/") == ctx.version_urls(other)["back_end"].url.rstrip("/")
    found = value + (f" (the {other} backend)" if wrong_version else "")
    raise CheckFailed(
        what=f"SERVING_URL does not point at the {version} backend",
        expected=" or ".join(sorted(accepted))
        or f"the URL of backend {version} (as listed in deliverables.yaml)",
        found=found,
        fix=f"set SERVING_URL to backend {version}'s URL, the back_end of "
        f"services.{version} in deliverables.yaml",
        where=logical,
    )
