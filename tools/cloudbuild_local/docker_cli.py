"""The docker command lines a Cloud Build step runs, read as the docker CLI reads them.

Only what the assignment's builds use is understood: build, pull, push, tag,
plus harmless look-ups. An unknown flag is refused with docker's own message
and status, so a typo fails here as it fails on Cloud Build. Image references
in Artifact Registry (or Container Registry) are rewritten to the loopback
registry, the host kept as the first path component so nothing collides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_REGISTRY_HOST = re.compile(r"(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)")
USAGE_STATUS = 125  # docker's status for a command line it cannot parse


class DockerUsageError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status = USAGE_STATUS


def split_reference(reference: str) -> tuple[str, str]:
    """(host, rest) of an image reference; host is '' for Docker Hub's short names."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", reference


def is_google_registry(reference: str) -> bool:
    return bool(_REGISTRY_HOST.fullmatch(split_reference(reference)[0]))


def to_local(reference: str, registry: str) -> str:
    """northamerica-northeast1-docker.pkg.dev/p/r/img:tag -> 127.0.0.1:PORT/<that>."""
    return f"{registry}/{reference}" if is_google_registry(reference) else reference


def to_remote(reference: str, registry: str) -> str:
    prefix = registry + "/"
    return reference[len(prefix) :] if reference.startswith(prefix) else reference


def repository_and_tag(reference: str) -> tuple[str, str]:
    """('host/path', 'tag'), the tag 'latest' when none is given (as docker assumes)."""
    if "@" in reference:
        return reference.split("@", 1)[0], ""
    host, rest = split_reference(reference)
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, "latest"
    return (f"{host}/{name}" if host else name), tag


@dataclass
class Build:
    context: str
    dockerfile: str | None = None
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    cache_from: list[str] = field(default_factory=list)
    target: str | None = None
    pull: bool = False
    no_cache: bool = False
    quiet: bool = False


# flag -> (field, takes a value); aliases share the field.
_BUILD_FLAGS = {
    "-f": ("dockerfile", True),
    "--file": ("dockerfile", True),
    "-t": ("tags", True),
    "--tag": ("tags", True),
    "--build-arg": ("build_args", True),
    "--cache-from": ("cache_from", True),
    "--target": ("target", True),
    "--pull": ("pull", False),
    "--no-cache": ("no_cache", False),
    "-q": ("quiet", False),
    "--quiet": ("quiet", False),
    # Accepted and without effect here, as on a Cloud Build worker's single platform.
    "--network": (None, True),
    "--platform": (None, True),
    "--progress": (None, True),
    "--label": (None, True),
    "--rm": (None, False),
    "--force-rm": (None, False),
}


def _flags(words: list[str], known: dict, command: str):
    """Yield (flag, value) pairs and positional words, refusing unknown flags."""
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word == "-":
            yield None, word
            continue
        flag, equals, value = word.partition("=")
        if flag not in known and len(flag) > 2 and not flag.startswith("--"):
            flag, value, equals = word[:2], word[2:], "="  # -tname, as docker accepts it
        if flag not in known:
            raise DockerUsageError(f"unknown flag: {flag}\nSee 'docker {command} --help'.")
        _, takes_value = known[flag]
        if takes_value and not equals:
            if index >= len(words):
                raise DockerUsageError(f"flag needs an argument: {flag}")
            value = words[index]
            index += 1
        yield flag, value if takes_value else True


def parse_build(words: list[str]) -> Build:
    build = Build(context="")
    positional = []
    for flag, value in _flags(words, _BUILD_FLAGS, "build"):
        if flag is None:
            positional.append(value)
            continue
        name, _ = _BUILD_FLAGS[flag]
        if name is None:
            continue
        if name == "tags":
            build.tags.append(value)
        elif name == "cache_from":
            build.cache_from.append(value)
        elif name == "build_args":
            key, equals, arg = value.partition("=")
            build.build_args[key] = arg if equals else None  # None: from the environment
        else:
            setattr(build, name, value)
    if len(positional) != 1:
        raise DockerUsageError(
            "\"docker build\" requires exactly 1 argument.\nSee 'docker build --help'."
        )
    build.context = positional[0]
    if build.context == "-" or "://" in build.context:
        raise DockerUsageError("cloudbuild-local builds only from a folder context")
    return build


def parse_push(words: list[str]) -> tuple[str, bool]:
    known = {"-a": ("all", False), "--all-tags": ("all", False), "-q": (None, False),
             "--quiet": (None, False)}  # fmt: skip
    every, positional = False, []
    for flag, value in _flags(words, known, "push"):
        if flag is None:
            positional.append(value)
        elif known[flag][0] == "all":
            every = True
    if len(positional) != 1:
        raise DockerUsageError('"docker push" requires exactly 1 argument.')
    return positional[0], every


def parse_pull(words: list[str]) -> str:
    known = {"-q": (None, False), "--quiet": (None, False), "--platform": (None, True)}
    positional = [value for flag, value in _flags(words, known, "pull") if flag is None]
    if len(positional) != 1:
        raise DockerUsageError('"docker pull" requires exactly 1 argument.')
    return positional[0]


def parse_tag(words: list[str]) -> tuple[str, str]:
    positional = [value for flag, value in _flags(words, {}, "tag") if flag is None]
    if len(positional) != 2:
        raise DockerUsageError('"docker tag" requires exactly 2 arguments.')
    return positional[0], positional[1]
