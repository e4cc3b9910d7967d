"""Read a Cloud Build config into the docker commands it runs.

The checks ask questions such as "which step builds the base image, and with
which --cache-from?"; this module answers them for every way students write
steps: the docker builder's exec form (`args: [build, ...]`), a bash
entrypoint (`args: [-c, "docker pull ... || exit 0"]`), or a `script:` block;
images pushed by `docker push` steps, `buildx --push`, or `images:`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.feedback import CheckFailed
from autograder.shell_words import failure_tolerated, sets_errexit, split_commands

# Cloud Build's built-in substitutions; they are kept symbolic as ${NAME}.
BUILTIN_SUBSTITUTIONS = {
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "BUILD_ID",
    "LOCATION",
    "TRIGGER_NAME",
    "COMMIT_SHA",
    "REVISION_ID",
    "SHORT_SHA",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
    "_HEAD_BRANCH",
    "_BASE_BRANCH",
    "_HEAD_REPO_URL",
    "_PR_NUMBER",
}
_SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SHELLS = {"bash", "sh", "/bin/bash", "/bin/sh", "/usr/bin/bash", "/usr/bin/env"}
# docker build options that take a value (the rest are flags).
_BUILD_VALUE_OPTIONS = {
    "-t",
    "--tag",
    "-f",
    "--file",
    "--build-arg",
    "--cache-from",
    "--cache-to",
    "--target",
    "--network",
    "--platform",
    "--label",
    "--progress",
    "--secret",
    "--ssh",
    "--add-host",
    "--iidfile",
    "--cpu-shares",
    "--cpu-period",
    "--cpu-quota",
    "--cpuset-cpus",
    "--cpuset-mems",
    "-m",
    "--memory",
    "--memory-swap",
    "--shm-size",
    "--ulimit",
    "-o",
    "--output",
    "--build-context",
    "--isolation",
    "--cgroup-parent",
    "--metadata-file",
    "--builder",
    "--allow",
    "--annotation",
    "--attest",
    "--sbom",
    "--provenance",
}


@dataclass
class Step:
    index: int
    id: str | None
    name: str
    entrypoint: str | None
    args: list[str]
    wait_for: list[str] | None
    env: dict[str, str]
    tolerates_failure: bool  # allowFailure or allowExitCodes

    @property
    def label(self) -> str:
        return f"step {self.index + 1}" + (f" (id: {self.id})" if self.id else "")


@dataclass
class DockerCommand:
    step: Step
    verb: str  # build, push, pull, tag
    words: list[str]  # the words after the verb, substitutions applied
    failure_tolerated: bool


@dataclass
class DockerBuild:
    command: DockerCommand
    tags: list[str] = field(default_factory=list)
    dockerfile: str | None = None
    context: str | None = None
    build_args: dict[str, str | None] = field(default_factory=dict)
    cache_from: list[str] = field(default_factory=list)
    pushes: bool = False  # buildx --push

    @property
    def step(self) -> Step:
        return self.command.step

    @property
    def dockerfile_path(self) -> str:
        """The Dockerfile relative to the repo root (the build's source)."""
        context = (self.context or ".").strip("/") or "."
        return normalize_path(self.dockerfile or f"{context}/Dockerfile")


@dataclass
class BuildConfig:
    where: str
    data: dict
    steps: list[Step]
    docker: list[DockerCommand]
    images: list[str]
    substitutions: dict[str, str]

    @property
    def builds(self) -> list[DockerBuild]:
        return [parse_build(c) for c in self.docker if c.verb == "build"]

    @property
    def pulls(self) -> list[DockerCommand]:
        return [c for c in self.docker if c.verb == "pull"]

    def pushed_images(self) -> set[str]:
        """Every image reference (name:tag) this build pushes to a registry."""
        pushed = {normalize_image(i) for i in self.images}
        built_tags = {normalize_image(t) for b in self.builds for t in b.tags}
        for build in self.builds:
            if build.pushes:
                pushed.update(normalize_image(t) for t in build.tags)
        for command in self.docker:
            if command.verb != "push":
                continue
            options = [w for w in command.words if w.startswith("-")]
            names = [w for w in command.words if not w.startswith("-")]
            for name in names:
                if {"-a", "--all-tags"} & set(options):
                    repo = image_repo(name)
                    pushed.update(t for t in built_tags if image_repo(t) == repo)
                else:
                    pushed.add(normalize_image(name))
        return pushed

    def command_before(self, first: DockerCommand, second: DockerCommand) -> bool:
        """Whether `first` has finished when `second` starts (same step: script order)."""
        if first.step is second.step:
            return self.docker.index(first) < self.docker.index(second)
        return self.runs_before(first.step, second.step)

    def runs_before(self, first: Step, second: Step) -> bool:
        """Whether `second` starts only after `first` has finished (waitFor/order)."""
        return first.index in self._dependencies(second)

    def _dependencies(self, step: Step) -> set[int]:
        by_id = {s.id: s for s in self.steps if s.id}
        seen: set[int] = set()
        todo = [step]
        while todo:
            for dep in self._direct_dependencies(todo.pop(), by_id):
                if dep.index not in seen:
                    seen.add(dep.index)
                    todo.append(dep)
        return seen

    def _direct_dependencies(self, step: Step, by_id: dict[str, Step]) -> list[Step]:
        if step.wait_for is None:
            # No waitFor: the step waits for every step before it.
            return self.steps[: step.index]
        if step.wait_for == ["-"]:
            return []
        return [by_id[w] for w in step.wait_for if w in by_id]


def normalize_path(path: str) -> str:
    parts = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    if parts[:1] == ["workspace"] and path.startswith("/workspace"):
        parts = parts[1:]
    return "/".join(parts)


def split_image(reference: str) -> tuple[str, str | None]:
    """(repository, tag) of `host/path/name:tag`; digests are kept in the tag part."""
    if "@" in reference:
        repo, digest = reference.split("@", 1)
        return repo, "@" + digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1 :]
    return reference, None


def image_repo(reference: str) -> str:
    return split_image(reference)[0]


def normalize_image(reference: str) -> str:
    """`name` and `name:latest` are the same image; keep the tag explicit."""
    repo, tag = split_image(reference.strip())
    if tag is None:
        return f"{repo}:latest"
    return reference.strip()


def expand(text: str, substitutions: dict[str, str]) -> str:
    """Apply Cloud Build substitutions; built-ins stay as ${NAME}, `$$` becomes `$`."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        if name in substitutions:
            return substitutions[name]
        return "${" + name + "}"

    return _SUBSTITUTION.sub(replace, text)


def _as_list(value, what: str, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CheckFailed(
            what=f"`{what}` must be a list",
            expected=f"`{what}:` followed by list items (`- ...`) or [a, b]",
            found=f"{type(value).__name__}: {str(value)[:80]}",
            fix=f"write `{what}` as a YAML list",
            where=where,
        )
    return value


def read_config(data, where: str, extra_substitutions: dict[str, str] | None = None) -> BuildConfig:
    """The config's steps and docker commands; CheckFailed when its shape is wrong."""
    if not isinstance(data, dict):
        raise CheckFailed(
            what="the file is not a Cloud Build config",
            expected="a YAML mapping with a `steps:` list",
            found="an empty file" if data is None else f"a {type(data).__name__}",
            fix="start from deployment/cloudbuild_template.yaml",
            where=where,
        )
    raw_steps = _as_list(data.get("steps"), "steps", where)
    if not raw_steps:
        raise CheckFailed(
            what="the config has no build steps",
            expected="a `steps:` list with the pull, build and push steps",
            found="no steps",
            fix="add the steps (see the template's comments)",
            where=where,
        )
    user_substitutions = data.get("substitutions") or {}
    if not isinstance(user_substitutions, dict):
        raise CheckFailed(
            what="`substitutions` must be a mapping",
            expected="substitutions:\n    _REPO: my-repo",
            found=str(user_substitutions)[:80],
            fix="write each substitution as `_NAME: value` under `substitutions:`",
            where=where,
        )
    substitutions = {str(k): str(v) for k, v in user_substitutions.items()}
    substitutions.update(extra_substitutions or {})
    # A substitution's default may itself use built-ins (_IMAGE: ${PROJECT_ID}/x).
    substitutions = {k: expand(v, {}) for k, v in substitutions.items()}
    steps = [_read_step(i, raw, where, substitutions) for i, raw in enumerate(raw_steps)]
    docker = [command for step in steps for command in _docker_commands(step)]
    images = [expand(str(i), substitutions) for i in _as_list(data.get("images"), "images", where)]
    return BuildConfig(where, data, steps, docker, images, substitutions)


def _read_step(index: int, raw, where: str, substitutions: dict[str, str]) -> Step:
    label = f"step {index + 1}"
    if not isinstance(raw, dict) or "name" not in raw:
        raise CheckFailed(
            what=f"{label} is not a build step",
            expected="a mapping with at least `name:` (the builder image) and `args:`",
            found=str(raw)[:80],
            fix="indent the step's keys under its `- name: ...` line",
            where=where,
        )
    args = [expand(str(a), substitutions) for a in _as_list(raw.get("args"), "args", where)]
    script = raw.get("script")
    entrypoint = raw.get("entrypoint")
    if script is not None:
        # `script:` runs with the builder's shell; treat it like `bash -c`.
        entrypoint, args = "bash", ["-c", expand(str(script), substitutions)]
    env = {}
    for item in _as_list(raw.get("env"), "env", where):
        key, _, value = str(item).partition("=")
        env[key] = expand(value, substitutions)
    wait_for = raw.get("waitFor")
    if wait_for is not None:
        wait_for = [str(w) for w in _as_list(wait_for, "waitFor", where)]
    exit_codes = raw.get("allowExitCodes") or []
    return Step(
        index=index,
        id=str(raw["id"]) if raw.get("id") is not None else None,
        name=str(raw["name"]),
        entrypoint=str(entrypoint) if entrypoint is not None else None,
        args=args,
        wait_for=wait_for,
        env=env,
        tolerates_failure=bool(raw.get("allowFailure")) or bool(exit_codes),
    )


def _is_docker_builder(name: str) -> bool:
    image = name.split("@")[0].split(":")[0]
    return image.rsplit("/", 1)[-1] == "docker"


def _docker_commands(step: Step) -> list[DockerCommand]:
    entrypoint = step.entrypoint
    if entrypoint in _SHELLS or (entrypoint is None and step.name.split(":")[0] in {"bash"}):
        return _shell_docker_commands(step)
    if entrypoint is None and not _is_docker_builder(step.name):
        return []
    if entrypoint not in (None, "docker"):
        return []
    return _verb_command(step, step.args, step.tolerates_failure)


def _verb_command(step: Step, words: list[str], tolerated: bool) -> list[DockerCommand]:
    words = list(words)
    if words[:1] in (["image"], ["buildx"], ["builder"]) and len(words) > 1:
        words = words[1:]
    if not words or words[0] not in {"build", "push", "pull", "tag"}:
        return []
    return [DockerCommand(step, words[0], words[1:], tolerated)]


def _shell_docker_commands(step: Step) -> list[DockerCommand]:
    args = list(step.args)
    if step.entrypoint == "/usr/bin/env" and args:
        args = args[1:]  # `env bash -c ...`
    # bash [-e] -c 'script' [$0 args...]: the script is the word after the -c option.
    option_at = next(
        (i for i, a in enumerate(args) if re.fullmatch(r"-[a-z]*c[a-z]*", a)),
        None,
    )
    if option_at is None or option_at + 1 >= len(args):
        return []
    script = args[option_at + 1]
    try:
        commands = split_commands(script)
    except ValueError:
        return []
    options = "".join(a[1:] for a in args[: option_at + 1] if re.fullmatch(r"-[a-z]+", a))
    errexit = sets_errexit(commands) or "e" in options
    found = []
    for index, command in enumerate(commands):
        words = [_shell_env(w, step.env) for w in command.words]
        if words[:1] != ["docker"]:
            continue
        tolerated = step.tolerates_failure or failure_tolerated(commands, index, errexit)
        found.extend(_verb_command(step, words[1:], tolerated))
    return found


def _shell_env(word: str, env: dict[str, str]) -> str:
    """Expand $NAME/${NAME} that the step's `env:` defines (what bash would do)."""
    return re.sub(
        r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)",
        lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
        word,
    )


def parse_build(command: DockerCommand) -> DockerBuild:
    build = DockerBuild(command)
    words = command.words
    i = 0
    positional = []
    while i < len(words):
        word = words[i]
        name, has_value, inline = word.partition("=")
        if word.startswith("--") and has_value:
            value = inline
            i += 1
        elif word in _BUILD_VALUE_OPTIONS:
            name = word
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 2
        elif re.fullmatch(r"-[tf].+", word):
            name, value = word[:2], word[2:]
            i += 1
        elif word.startswith("-"):
            if word == "--push":
                build.pushes = True
            i += 1
            continue
        else:
            positional.append(word)
            i += 1
            continue
        if name in ("-t", "--tag"):
            build.tags.append(value)
        elif name in ("-f", "--file"):
            build.dockerfile = value
        elif name == "--build-arg":
            key, has_eq, arg_value = value.partition("=")
            build.build_args[key] = arg_value if has_eq else command.step.env.get(key)
        elif name == "--cache-from":
            build.cache_from.append(_cache_ref(value))
    build.context = positional[-1] if positional else None
    return build


def _cache_ref(value: str) -> str:
    """`--cache-from X` or buildx's `--cache-from type=registry,ref=X`."""
    if value.startswith("type=") or ",ref=" in value:
        for part in value.split(","):
            if part.startswith("ref="):
                return part[4:]
    return value
