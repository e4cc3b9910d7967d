"""A Cloud Build config, read as Cloud Build reads it: its steps, their order, their builders.

Order: a step with no `waitFor` (or an empty one) waits for every step before
it; `waitFor: ['-']` starts it when the build starts; otherwise it waits for
the steps whose ids it names, which must come earlier.

Builders: `gcr.io/cloud-builders/docker` steps run here, with their default
entrypoint (docker) or `entrypoint: bash`; Cloud SDK steps (gcloud) are
recorded as they would run, never executed; any other builder is refused
before the build starts, since this machine cannot stand in for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.cloudbuild_local.substitution import Substitutions

DEFAULT_BUILD_TIMEOUT = 600.0  # Cloud Build's, when a config gives none
STEP_FIELDS = {
    "name", "args", "env", "allowFailure", "allowExitCodes", "dir", "id", "waitFor",
    "entrypoint", "secretEnv", "volumes", "timeout", "script", "automapSubstitutions",
    "results",
}  # fmt: skip
BUILD_FIELDS = {
    "steps", "timeout", "queueTtl", "logsBucket", "options", "substitutions", "tags",
    "serviceAccount", "secrets", "availableSecrets", "artifacts", "images",
}  # fmt: skip
# What changes a build's outcome in ways no local run can reproduce: refused.
NOT_EMULATED = {
    "secretEnv": "Secret Manager secrets",
    "volumes": "step volumes",
    "secrets": "Cloud KMS secrets",
    "availableSecrets": "Secret Manager secrets",
    "artifacts": "artifact uploads to Cloud Storage",
}
_DOCKER_BUILDER = re.compile(r"(?:[a-z0-9-]+\.)?gcr\.io/cloud-builders/docker(?::[\w.-]+)?")
_GCLOUD_BUILDER = re.compile(
    r"(?:[a-z0-9-]+\.)?gcr\.io/(?:cloud-builders/gcloud(?:-slim)?"
    r"|google\.com/cloudsdktool/(?:cloud-sdk|google-cloud-cli))(?::[\w.-]+)?"
)
_SHELLS = {"bash", "/bin/bash", "sh", "/bin/sh"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)s?")


class ConfigError(ValueError):
    """The config cannot run (here, or on Cloud Build); the message says which field and why."""


@dataclass
class Step:
    index: int
    name: str
    args: list[str]
    id: str | None = None
    entrypoint: str | None = None
    env: list[str] = field(default_factory=list)
    dir: str = ""
    wait_for: list[str] | None = None
    allow_failure: bool = False
    allow_exit_codes: list[int] = field(default_factory=list)
    timeout: float | None = None
    script: str | None = None

    @property
    def label(self) -> str:
        """How Cloud Build's log names it: Step #2 - "build-base"."""
        return f'Step #{self.index} - "{self.id}"' if self.id else f"Step #{self.index}"

    @property
    def kind(self) -> str:
        """'docker' (the docker CLI), 'shell' (bash in the docker builder) or 'gcloud'."""
        if _GCLOUD_BUILDER.fullmatch(self.name):
            return "gcloud"
        if self.script is not None or (self.entrypoint or "docker") in _SHELLS:
            return "shell"
        return "docker"

    def failure_allowed(self, status: int) -> bool:
        if self.allow_exit_codes:
            return status in self.allow_exit_codes
        return self.allow_failure


@dataclass
class BuildConfig:
    path: Path
    steps: list[Step]
    images: list[str]
    timeout: float
    options_env: list[str]
    substitutions: Substitutions
    ignored: list[str]

    def dependencies(self) -> dict[int, list[int]]:
        """Step index -> the indexes it waits for."""
        ids = {}
        waits = {}
        for step in self.steps:
            if step.wait_for is None or step.wait_for == []:
                waits[step.index] = list(range(step.index))
            elif step.wait_for == ["-"]:
                waits[step.index] = []
            else:
                wanted = []
                for waited in step.wait_for:
                    if waited not in ids:
                        raise ConfigError(
                            f"{step.label} waits for {waited!r}, which is not the id of an "
                            "earlier step (waitFor can name only steps defined before it)"
                        )
                    wanted.append(ids[waited])
                waits[step.index] = wanted
            if step.id:
                if step.id in ids:
                    raise ConfigError(f"two steps have the id {step.id!r}")
                ids[step.id] = step.index
        return waits


def duration(value, where: str) -> float:
    match = _DURATION.fullmatch(str(value).strip())
    if not match:
        raise ConfigError(f"{where}: {value!r} is not a duration such as 600s")
    return float(match.group(1))


def _strings(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return [str(v) for v in value]


def refuse_builder(step: Step) -> str | None:
    """Why this step cannot run here, or None."""
    if step.kind == "gcloud":
        return None
    if not _DOCKER_BUILDER.fullmatch(step.name):
        return (
            f"{step.label} uses the builder {step.name!r}: cloudbuild-local runs only "
            "gcr.io/cloud-builders/docker steps (and records Cloud SDK steps); it cannot "
            "stand in for other builders"
        )
    if step.entrypoint not in (None, "docker", *_SHELLS):
        return (
            f"{step.label}: entrypoint {step.entrypoint!r} in the docker builder is not "
            "emulated (only docker and bash)"
        )
    return None


def load(path: Path, built_in: dict[str, str], given: dict[str, str]) -> BuildConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as failed:
        raise ConfigError(f"{path} is not valid YAML: {failed}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise ConfigError(f"{path}: a build config needs a non-empty `steps:` list")
    for key in raw:
        if key not in BUILD_FIELDS:
            raise ConfigError(f".{key}: unused (not a Cloud Build config field)")
    refused = [NOT_EMULATED[key] for key in raw if key in NOT_EMULATED]
    options = raw.get("options") or {}
    loose = options.get("substitutionOption") == "ALLOW_LOOSE"
    if options.get("dynamicSubstitutions"):
        refused.append("dynamic substitutions (bash-style expansions)")
    substitutions = Substitutions.for_build(built_in, raw.get("substitutions"), given, loose=loose)

    steps = []
    for index, raw_step in enumerate(raw["steps"]):
        where = f".steps[{index}]"
        if not isinstance(raw_step, dict) or "name" not in raw_step:
            raise ConfigError(f"{where}: every step needs a `name` (its builder image)")
        for key in raw_step:
            if key not in STEP_FIELDS:
                raise ConfigError(f"{where}.{key}: unused (not a build step field)")
            if key in NOT_EMULATED:
                refused.append(f"{NOT_EMULATED[key]} ({where})")
        wait_for = raw_step.get("waitFor")
        steps.append(
            Step(
                index=index,
                name=str(raw_step["name"]),
                args=_strings(raw_step.get("args"), f"{where}.args"),
                id=str(raw_step["id"]) if raw_step.get("id") is not None else None,
                entrypoint=raw_step.get("entrypoint"),
                env=_strings(raw_step.get("env"), f"{where}.env"),
                dir=str(raw_step.get("dir") or ""),
                wait_for=None if wait_for is None else _strings(wait_for, f"{where}.waitFor"),
                allow_failure=bool(raw_step.get("allowFailure", False)),
                allow_exit_codes=[int(c) for c in raw_step.get("allowExitCodes") or []],
                timeout=duration(raw_step["timeout"], f"{where}.timeout")
                if "timeout" in raw_step
                else None,
                script=raw_step.get("script"),
            )
        )
    if refused:
        raise ConfigError(
            "cloudbuild-local does not emulate " + "; ".join(refused) + ": this config can "
            "only be tried on Cloud Build itself"
        )
    images = _strings(raw.get("images"), ".images")
    texts = [
        t
        for s in steps
        for t in (s.name, *s.args, *s.env, s.dir, s.entrypoint or "", s.script or "")
    ]
    texts += images
    substitutions.check(texts)
    for step in steps:
        step.name = substitutions.apply(step.name)
        step.args = [substitutions.apply(a) for a in step.args]
        step.env = [substitutions.apply(e) for e in step.env]
        step.dir = substitutions.apply(step.dir)
        step.entrypoint = substitutions.apply(step.entrypoint) if step.entrypoint else None
        step.script = substitutions.apply(step.script) if step.script is not None else None
    timeout = duration(raw["timeout"], ".timeout") if "timeout" in raw else DEFAULT_BUILD_TIMEOUT
    ignored = [key for key in ("queueTtl", "logsBucket", "tags", "serviceAccount") if key in raw]
    config = BuildConfig(
        path=path,
        steps=steps,
        images=[substitutions.apply(i) for i in images],
        timeout=timeout,
        options_env=[substitutions.apply(e) for e in _strings(options.get("env"), ".options.env")],
        substitutions=substitutions,
        ignored=ignored,
    )
    config.dependencies()  # unknown or later waitFor ids fail now, before anything runs
    for step in steps:
        reason = refuse_builder(step)
        if reason:
            raise ConfigError(reason)
    return config
