"""Q1 and Q2: what each Cloud Build config builds, pushes and caches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from autograder import assignment
from autograder.checks import check
from autograder.checks.common import attempted, filled_in
from autograder.cloudbuild import (
    BuildConfig,
    DockerBuild,
    DockerCommand,
    image_repo,
    normalize_image,
    split_image,
)
from autograder.context import GradingContext
from autograder.feedback import CheckFailed, Skipped

_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_REPOSITORY = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")
_IMAGE_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
ALLOWED_TAGS = ("${BUILD_ID}", "latest")
PROJECT_ID = assignment.PROJECT_PLACEHOLDER


def usable_config(ctx: GradingContext, component: str) -> BuildConfig:
    """The parsed config, once it is no longer the template."""
    filled_in(ctx, assignment.cloudbuild_file(component))
    return ctx.config(component)


def _registry_example(component: str, kind: str) -> str:
    name = "backend-base" if component.startswith("backend") else "frontend-base"
    if kind == "app":
        name = component.replace("_", "-")
    return f"{assignment.REGISTRY_HOST}/$PROJECT_ID/${{_REPOSITORY}}/{name}"


@cache
def base_image_argument(dockerfile: Path) -> str | None:
    """The ARG a Dockerfile's first FROM uses (`ARG BASE_IMAGE` / `FROM ${BASE_IMAGE}`)."""
    if not dockerfile.is_file():
        return None
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?\$\{?(\w+)\}?", line, re.IGNORECASE)
        if match:
            return match.group(1)
        if re.match(r"\s*FROM\s", line, re.IGNORECASE):
            return None
    return None


@dataclass
class Builds:
    config: BuildConfig
    app: DockerBuild | None
    base: DockerBuild | None


def find_builds(ctx: GradingContext, component: str) -> Builds:
    config = usable_config(ctx, component)
    app_dockerfile = assignment.app_dockerfile(component)
    builds = config.builds
    app = next((b for b in builds if b.dockerfile_path == app_dockerfile), None)
    base = None
    if app is not None:
        argument = base_image_argument(ctx.submission.assignment_file(app_dockerfile))
        reference = app.build_args.get(argument or "BASE_IMAGE")
        if reference:
            wanted = normalize_image(reference)
            base = next(
                (b for b in builds if b is not app and wanted in map(normalize_image, b.tags)),
                None,
            )
    if base is None:
        base = next(
            (
                b
                for b in builds
                if b is not app and b.dockerfile_path == assignment.BASE_DOCKERFILES[component]
            ),
            None,
        ) or next(
            (b for b in builds if b is not app and b.dockerfile_path.startswith("deployment/")),
            None,
        )
    return Builds(config, app, base)


def _dockerfiles_built(config: BuildConfig) -> str:
    files = [b.dockerfile_path for b in config.builds]
    return ", ".join(files) if files else "no `docker build` step at all"


def _at_repo_root(build: DockerBuild) -> bool:
    return (build.context or "").rstrip("/") in (".", "/workspace", "$PWD", "${PWD}")


def _existing_dockerfile(ctx: GradingContext, build: DockerBuild, where: str) -> None:
    path = build.dockerfile_path
    if not ctx.submission.assignment_file(path).is_file():
        existing = sorted(
            p.relative_to(ctx.submission.assignment_root).as_posix()
            for p in ctx.submission.assignment_root.glob("deployment/Dockerfile*")
        )
        raise CheckFailed(
            what=f"{build.step.label} builds from a Dockerfile that does not exist",
            expected="a Dockerfile of the assignment, e.g. " + ", ".join(existing),
            found=path,
            fix="check the path after --file (-f); it is relative to the repo root",
            where=where,
        )


@check("config_valid")
def config_valid(ctx: GradingContext, component: str) -> str | None:
    where = assignment.cloudbuild_file(component)
    config = usable_config(ctx, component)
    verdict = ctx.config_verdict(component)
    if verdict.rejected:
        raise CheckFailed(
            what="gcloud refuses this Cloud Build config",
            expected="a config `gcloud builds submit --config` accepts",
            found=verdict.message,
            fix="fix the field gcloud names (e.g. `.steps[0].foo: unused` is an unknown key)",
            where=where,
        )
    ids = [s.id for s in config.steps if s.id]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CheckFailed(
            what="two steps have the same id",
            expected="a different `id` for every step",
            found=", ".join(duplicates),
            fix="rename one of them (and the waitFor entries that mean it)",
            where=where,
        )
    for step in config.steps:
        earlier = {s.id for s in config.steps[: step.index] if s.id}
        for wanted in step.wait_for or []:
            if wanted != "-" and wanted not in earlier:
                raise CheckFailed(
                    what=f"{step.label} waits for a step that does not come before it",
                    expected="waitFor entries naming the `id` of an earlier step (or '-')",
                    found=f"waitFor: {wanted}; earlier ids: {', '.join(sorted(earlier)) or 'none'}",
                    fix="give the step you mean an `id:` and use exactly that id",
                    where=where,
                )
    if verdict.kind == "inconclusive":
        return f"gcloud gave no verdict ({verdict.message}); the other checks still apply"
    if not ctx.oracle.available:
        return verdict.message
    return None


@check("base_build")
def base_build(ctx: GradingContext, component: str) -> None:
    where = assignment.cloudbuild_file(component)
    builds = find_builds(ctx, component)
    expected_file = assignment.BASE_DOCKERFILES[component]
    base = builds.base
    if base is None:
        raise CheckFailed(
            what="no step builds the base image",
            expected=f"a docker build step with --file={expected_file} and the repo root (.) "
            "as context",
            found=f"Dockerfiles built: {_dockerfiles_built(builds.config)}",
            fix="write the build-base step (see the template's build-base step)",
            where=where,
        )
    _existing_dockerfile(ctx, base, where)
    if base.dockerfile_path != expected_file:
        raise CheckFailed(
            what=f"{base.step.label} builds the wrong base for {component}",
            expected=expected_file,
            found=base.dockerfile_path,
            fix=f"build {component}'s base from {expected_file}",
            where=where,
        )
    if not _at_repo_root(base):
        raise CheckFailed(
            what=f"{base.step.label} does not build from the repo root",
            expected="the build context `.` (the uploaded repo root) as the last argument",
            found=base.context or "no context argument",
            fix="end the docker build arguments with `.`",
            where=where,
        )
    if not base.tags:
        raise CheckFailed(
            what=f"{base.step.label} gives the base image no name",
            expected=f"--tag={_registry_example(component, 'base')}:latest",
            found="no --tag",
            fix="tag the base image so the app build and the push can refer to it",
            where=where,
        )


@check("app_build")
def app_build(ctx: GradingContext, component: str) -> None:
    where = assignment.cloudbuild_file(component)
    builds = find_builds(ctx, component)
    dockerfile = assignment.app_dockerfile(component)
    app = builds.app
    if app is None:
        in_folder = next(
            (b for b in builds.config.builds if (b.context or "").strip("./") == component),
            None,
        )
        raise CheckFailed(
            what=f"no step builds {component}'s image from {dockerfile}",
            expected=f"a docker build step with --file={dockerfile} and `.` as context",
            found=(
                f"{in_folder.step.label} uses {component}/ as the context, so the Dockerfile "
                "cannot COPY the shared code"
                if in_folder
                else f"Dockerfiles built: {_dockerfiles_built(builds.config)}"
            ),
            fix=f"build with --file={dockerfile} from the repo root (`.`)",
            where=where,
        )
    _existing_dockerfile(ctx, app, where)
    if not _at_repo_root(app):
        raise CheckFailed(
            what=f"{app.step.label} does not build from the repo root",
            expected="the build context `.` as the last argument",
            found=app.context or "no context argument",
            fix="end the docker build arguments with `.`",
            where=where,
        )
    argument = base_image_argument(ctx.submission.assignment_file(dockerfile)) or "BASE_IMAGE"
    reference = app.build_args.get(argument)
    if not reference:
        given = ", ".join(f"{k}={v or ''}" for k, v in app.build_args.items()) or "none"
        raise CheckFailed(
            what=f"{app.step.label} does not pass the base image, so {dockerfile} starts "
            f"FROM an empty ${{{argument}}}",
            expected=f"--build-arg={argument}=<the base image this build makes>",
            found=f"build arguments: {given}",
            fix=f"name the build argument exactly {argument} (it is the ARG in {dockerfile})",
            where=where,
        )
    if not app.tags:
        raise CheckFailed(
            what=f"{app.step.label} gives the app image no name",
            expected=f"--tag={_registry_example(component, 'app')}:latest",
            found="no --tag",
            fix="tag the image so it can be pushed and deployed",
            where=where,
        )
    base = builds.base
    made_by = (
        base if base and normalize_image(reference) in map(normalize_image, base.tags) else None
    )
    if made_by is None:
        made = sorted({t for b in builds.config.builds if b is not app for t in b.tags})
        raise CheckFailed(
            what=f"{app.step.label} starts FROM a base image this build never makes",
            expected=f"{argument}= one of the tags the base build step gives its image",
            found=f"{argument}={reference}; images built: {', '.join(made) or 'none'}",
            fix="use exactly the base build's --tag value (same registry path and tag)",
            where=where,
        )
    if not builds.config.command_before(made_by.command, app.command):
        raise CheckFailed(
            what=f"{app.step.label} may start before the base image is built",
            expected=f"waitFor including {made_by.step.id or made_by.step.label}",
            found=f"waitFor: {app.step.wait_for}",
            fix="make the app build wait for the base build step",
            where=where,
        )


def check_registry_reference(reference: str, where: str, component: str, kind: str) -> None:
    repo, tag = split_image(reference)
    parts = repo.split("/")
    example = _registry_example(component, kind)
    if parts[0] != assignment.REGISTRY_HOST:
        hint = (
            f"the registry is in {assignment.REGION}"
            if parts[0].endswith("-docker.pkg.dev")
            else "images go to Artifact Registry, not Container Registry or Docker Hub"
        )
        raise CheckFailed(
            what=f"the image {reference} is not in the course's Artifact Registry host",
            expected=f"{assignment.REGISTRY_HOST}/... ({hint})",
            found=parts[0],
            fix=f"name the image {example}:<tag>",
            where=where,
        )
    if len(parts) < 4:
        raise CheckFailed(
            what=f"the image path {reference} is incomplete",
            expected="host/PROJECT/REPOSITORY/IMAGE, e.g. " + example,
            found=repo,
            fix="check for a missing `/` or a missing project or repository part",
            where=where,
        )
    project, repository, name = parts[1], parts[2], "/".join(parts[3:])
    for value, pattern, label in (
        (project, _PROJECT_ID, "project"),
        (repository, _REPOSITORY, "repository"),
    ):
        if value == "${PROJECT_ID}" and label == "project":
            continue
        unresolved = re.fullmatch(r"\$\{(_\w+)\}", value)
        if unresolved:
            raise CheckFailed(
                what=f"the {label} in {reference} is a substitution with no value",
                expected=f"{unresolved.group(1)} defined under `substitutions:` "
                "(or passed by the submit script)",
                found=value,
                fix=f"add `{unresolved.group(1)}: <value>` under substitutions",
                where=where,
            )
        if not pattern.fullmatch(value):
            raise CheckFailed(
                what=f"the {label} part of {reference} is not a valid {label} name",
                expected=f"$PROJECT_ID/<repository>, e.g. {example}",
                found=value,
                fix=f"check the spelling of the {label} (lowercase letters, digits, dashes)",
                where=where,
            )
    if not _IMAGE_NAME.fullmatch(name):
        raise CheckFailed(
            what=f"the image name in {reference} is not valid",
            expected="lowercase letters, digits and dashes, e.g. " + example.rsplit("/", 1)[1],
            found=name,
            fix="use dashes, not underscores or capitals, in image names",
            where=where,
        )
    if tag is not None and tag not in ALLOWED_TAGS:
        raise CheckFailed(
            what=f"the image {reference} has an unexpected tag",
            expected="the tag $BUILD_ID (this build) and/or latest",
            found=tag,
            fix="tag with :$BUILD_ID and :latest",
            where=where,
        )


@check("images_pushed")
def images_pushed(ctx: GradingContext, component: str) -> None:
    where = assignment.cloudbuild_file(component)
    builds = find_builds(ctx, component)
    pushed = builds.config.pushed_images()
    for kind, build in (("base", builds.base), ("app", builds.app)):
        if build is None:
            raise CheckFailed(
                what=f"there is no {kind} image build to push",
                expected=f"a build step for the {kind} image (see the other Q1 checks)",
                found=f"Dockerfiles built: {_dockerfiles_built(builds.config)}",
                fix="add the build step first",
                where=where,
            )
        for tag in build.tags:
            check_registry_reference(tag, where, component, kind)
        if not any(normalize_image(t) in pushed for t in build.tags):
            raise CheckFailed(
                what=f"the {kind} image is built but never pushed",
                expected=f"a `docker push` step (or an `images:` entry) for {build.tags[0]}",
                found="pushed: " + (", ".join(sorted(pushed)) or "nothing"),
                fix="push every image: the deploy and the next build's cache pull it from "
                "Artifact Registry",
                where=where,
            )


def _repository_of(reference: str) -> tuple[str, str, str] | None:
    """(host, project, repository) of an image reference, or None when it has fewer parts."""
    parts = image_repo(reference).split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) >= 4 else None


def _one_place(repositories: set[tuple[str, str, str]]) -> bool:
    """Whether these all name one repository: $PROJECT_ID is whichever project builds."""
    projects = {project for _, project, _ in repositories} - {PROJECT_ID}
    return len({(host, name) for host, _, name in repositories}) <= 1 and len(projects) <= 1


@check("one_repository")
def one_repository(ctx: GradingContext, _target=None) -> None:
    """All four configs push to one repository.

    A config whose images cannot be read, or that fails its own push check, is
    charged there; the comparison leaves it out and says to fix it first.
    """
    where = "deployment/cloudbuild_*.yaml"
    locations: dict[str, set[tuple[str, str, str]]] = {}  # component -> its repositories
    left_out, not_written = [], []
    for component in assignment.COMPONENTS:
        logical = assignment.cloudbuild_file(component)
        try:
            builds = find_builds(ctx, component)
        except CheckFailed:
            (left_out if attempted(ctx, logical) else not_written).append(logical)
            continue
        tags = [t for b in (builds.base, builds.app) if b is not None for t in b.tags]
        repositories = {_repository_of(t) for t in tags}
        if not tags or None in repositories:
            left_out.append(logical)
            continue
        locations[component] = repositories
    if not_written:
        raise CheckFailed(
            what="the repositories cannot be compared: a config is not written yet",
            expected="all four cloudbuild_*.yaml, pushing to one repository",
            found=", ".join(not_written) + " missing or still the template",
            fix="write every config (the deploy scripts find all images in one repository)",
            where=where,
        )
    every = set().union(*locations.values()) if locations else set()
    if not _one_place(every):
        own_failures = {c for c in locations if fails(images_pushed, ctx, c)}
        sound = set().union(*(locations[c] for c in locations if c not in own_failures))
        if not _one_place(sound) or not own_failures:
            found = "; ".join(
                f"{'/'.join(location)} "
                f"({', '.join(c for c in locations if location in locations[c])})"
                for location in sorted(every)
            )
            raise CheckFailed(
                what="the configs push to different Artifact Registry repositories",
                expected="one repository for all images, so the deploy scripts find them",
                found=found,
                fix="use the same project ($PROJECT_ID) and repository in all four "
                "cloudbuild_*.yaml",
                where=where,
            )
        left_out += [assignment.cloudbuild_file(c) for c in sorted(own_failures)]
    if left_out:
        raise Skipped(
            blocked_by=", ".join(left_out),
            unchecked="whether its images go to the same repository as the other configs'",
            where=where,
        )


def fails(check_function, ctx: GradingContext, component: str) -> bool:
    """Whether a check of this component's config fails (it reports that itself)."""
    try:
        check_function(ctx, component)
    except CheckFailed:
        return True
    return False


def _pulls_of(config: BuildConfig, base: DockerBuild) -> list[DockerCommand]:
    tags = set(map(normalize_image, base.tags))
    return [
        pull
        for pull in config.pulls
        if any(normalize_image(w) in tags for w in pull.words if not w.startswith("-"))
    ]


def _q2_not_attempted(config: BuildConfig) -> bool:
    """No pull anywhere and no --cache-from on any build: Q2's step is not written yet."""
    return not config.pulls and not any(b.cache_from for b in config.builds)


def _q2_missing(where: str, found: str) -> CheckFailed:
    """Q2 not attempted: point at the question, never at its answer."""
    return CheckFailed(
        what="this config does not have Q2's cache step yet",
        expected="the step Q2 asks for, at the beginning of the config",
        found=found,
        fix="read Q2 in the README (its hint says where to start), then add the step to "
        "each of your four configs",
        where=where,
    )


def _base_or_fail(ctx: GradingContext, component: str) -> Builds:
    builds = find_builds(ctx, component)
    if builds.base is None or not builds.base.tags:
        raise CheckFailed(
            what="the cache cannot be checked: no tagged base image build",
            expected="the base build step of Q1 first",
            found=f"Dockerfiles built: {_dockerfiles_built(builds.config)}",
            fix="add the build-base step with a --tag",
            where=assignment.cloudbuild_file(component),
        )
    return builds


@check("pull_base")
def pull_base(ctx: GradingContext, component: str) -> None:
    where = assignment.cloudbuild_file(component)
    builds = _base_or_fail(ctx, component)
    base = builds.base
    pulls = _pulls_of(builds.config, base)
    if not pulls:
        if _q2_not_attempted(builds.config):
            raise _q2_missing(where, "no step pulls an image")
        other = [" ".join(p.words) for p in builds.config.pulls]
        raise CheckFailed(
            what="the build never pulls the base image it builds",
            expected=f"a step before the base build that pulls {base.tags[0]}",
            found=("pulls: " + "; ".join(other)) if other else "no docker pull",
            fix="pull the very image the base build is tagged with: without it there is no "
            "cache to use",
            where=where,
        )
    before = [p for p in pulls if builds.config.command_before(p, base.command)]
    if not before:
        raise CheckFailed(
            what="the pull does not finish before the base build starts",
            expected="the pull step first, and the base build waiting for it",
            found=f"pull in {pulls[0].step.label}, base build in {base.step.label}",
            fix="put the pull first and add its id to the base build's waitFor",
            where=where,
        )
    if not any(p.failure_tolerated for p in before):
        pull = before[0]
        raise CheckFailed(
            what=f"{pull.step.label} fails the whole build when the base image does not "
            "exist yet (the very first build)",
            expected="a pull that tolerates a missing image, e.g. "
            "entrypoint: bash, args: [-c, 'docker pull IMAGE || exit 0']",
            found=f"docker {pull.verb} {' '.join(pull.words)} with nothing catching its failure",
            fix="run the pull through bash with `|| exit 0`, or set `allowFailure: true`",
            where=where,
        )


@check("cache_from")
def cache_from(ctx: GradingContext, component: str) -> None:
    where = assignment.cloudbuild_file(component)
    builds = _base_or_fail(ctx, component)
    base = builds.base
    tags = set(map(normalize_image, base.tags))
    cached = [c for c in base.cache_from if normalize_image(c) in tags]
    if not cached:
        if _q2_not_attempted(builds.config):
            raise _q2_missing(where, "the base build reuses nothing, and no step pulls an image")
        raise CheckFailed(
            what="the base build does not use the pulled image as its cache",
            expected=f"--cache-from={base.tags[0]} on the base build",
            found=(
                "--cache-from " + ", ".join(base.cache_from)
                if base.cache_from
                else "no --cache-from"
            ),
            fix="add --cache-from with the same image the pull step fetches",
            where=where,
        )
    pulled = {
        normalize_image(w)
        for p in _pulls_of(builds.config, base)
        if builds.config.command_before(p, base.command)
        for w in p.words
    }
    if not any(normalize_image(c) in pulled for c in cached):
        raise CheckFailed(
            what="--cache-from names an image the build never pulls, so there is no cache",
            expected=f"a step before the base build that pulls {cached[0]}",
            found=f"--cache-from={cached[0]} without a pull",
            fix="docker only uses a --cache-from image that is present locally: pull it first",
            where=where,
        )
