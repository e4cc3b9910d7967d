"""What the deployment-kit tests share: the components, their Dockerfiles, the build context.

dockerfile-parse reads the Dockerfiles (line continuations, ENV forms, JSON
CMD) and the docker SDK applies .dockerignore with docker's own matching rules,
so the tests see the build the way docker would.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_BASE = "deployment/Dockerfile.backend-base"
FRONTEND_BASE = "deployment/Dockerfile.frontend-base"
REGISTRY = "northamerica-northeast1-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/"
# Files a student may leave in the repo that must never reach a build or an upload:
# service-account keys under the names tutorials and the console give them, and the like.
SECRET_DECOYS = (
    ".env",
    "backend_v1/.env",
    "key.pem",
    "deployment/tls.key",
    "key.json",
    "backend_v1/key.json",
    "sa-key.json",
    "deployment/credentials.json",
    "service-account.json",
    "my-project-123456-0123456789ab.json",
    "classifier/ml-course-7f3a9c0b1d2e.json",
)
# Look-alikes that are not secrets, and stay in.
NOT_SECRETS = ("backend_v1/app.py", "frontend_v1/config-2024.json", "requirements/key.txt")


@dataclass(frozen=True)
class Component:
    name: str  # folder name, e.g. backend_v1
    base_dockerfile: str
    requirements: tuple[str, ...]  # requirements/ files its image installs
    kind: str  # "flask" (gunicorn) or "streamlit"

    @property
    def dockerfile(self) -> str:
        return f"{self.name}/Dockerfile"

    @property
    def image(self) -> str:
        """Its image and Cloud Run service name: dashes, never underscores."""
        return self.name.replace("_", "-")

    @property
    def entry(self) -> Path:
        return REPO_ROOT / self.name / "app.py"

    @property
    def health_path(self) -> str:
        return "/_stcore/health" if self.kind == "streamlit" else "/health"


_BACKEND_REQS = ("torch.txt", "serving.txt")
COMPONENTS = {
    c.name: c
    for c in (
        Component("backend_v1", BACKEND_BASE, _BACKEND_REQS, "flask"),
        Component("backend_v2", BACKEND_BASE, _BACKEND_REQS, "flask"),
        Component("frontend_v1", FRONTEND_BASE, ("frontend.txt",), "streamlit"),
        Component("frontend_v2", FRONTEND_BASE, ("frontend.txt",), "streamlit"),
        Component("v3_gateway", FRONTEND_BASE, ("gateway.txt",), "flask"),
    )
}
# The four components students build and deploy (v3 has its own scripts).
GRADED = ("backend_v1", "backend_v2", "frontend_v1", "frontend_v2")
BASE_DOCKERFILES = (BACKEND_BASE, FRONTEND_BASE)
ALL_DOCKERFILES = (*BASE_DOCKERFILES, *(c.dockerfile for c in COMPONENTS.values()))


def parse(dockerfile: str, parent_env: dict | None = None) -> DockerfileParser:
    # A file object, because given a path the parser expects a folder holding "Dockerfile".
    content = io.BytesIO((REPO_ROOT / dockerfile).read_bytes())
    return DockerfileParser(fileobj=content, parent_env=parent_env or {})


def instructions(dockerfile: str) -> list[dict]:
    """[{"instruction": "COPY", "value": "...", "startline": n}, ...], comments dropped."""
    return [i for i in parse(dockerfile).structure if i["instruction"] != "COMMENT"]


def image_env(component: Component) -> dict[str, str]:
    """The ENV a container of this component starts with: its base's, then its own."""
    base_env = parse(component.base_dockerfile).envs
    # The parser uses parent_env for substitution only; a container inherits it too.
    return {**base_env, **parse(component.dockerfile, parent_env=base_env).envs}


def copy_sources_and_dest(value: str) -> tuple[list[str], str]:
    """Split a COPY/ADD value (shell or JSON form, --flags dropped) into sources and dest."""
    value = value.strip()
    words = json.loads(value) if value.startswith("[") else value.split()
    words = [w for w in words if not w.startswith("--")]
    return words[:-1], words[-1]


def copies(dockerfile: str) -> list[tuple[list[str], str]]:
    return [
        copy_sources_and_dest(i["value"])
        for i in instructions(dockerfile)
        if i["instruction"] in ("COPY", "ADD")
    ]


@cache
def dockerignore_patterns() -> tuple[str, ...]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@cache
def build_context() -> frozenset[str]:
    """Every path (file or folder, relative, '/'-separated) docker would send."""
    return frozenset(exclude_paths(str(REPO_ROOT), list(dockerignore_patterns())))


def requirement_lines(filename: str) -> list[str]:
    """The requirement lines of requirements/<filename>, following -r includes."""
    lines = []
    for raw in (REPO_ROOT / "requirements" / filename).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            lines.extend(requirement_lines(line[2:].strip()))
        elif line:
            lines.append(line)
    return lines


def distribution_closure(requirement_files: tuple[str, ...]) -> set[str]:
    """Canonical names of every distribution those files install, dependencies included,
    as resolved in the dev environment (which holds every component's pins)."""
    todo = [Requirement(line) for f in requirement_files for line in requirement_lines(f)]
    seen: set[str] = set()
    seen_keys: set[tuple[str, frozenset]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen_keys:
            continue
        seen_keys.add(key)
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        extras = {"", *requirement.extras}  # cuda-toolkit[cublas,...] pulls in via extras
        for line in requires:
            dependency = Requirement(line)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(dependency)
    return seen


# --- which modules a component imports -------------------------------------------------


def _local_module_file(dotted: str) -> Path | None:
    path = REPO_ROOT.joinpath(*dotted.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imported_names(file: Path) -> set[str]:
    """Dotted names a file imports, anywhere in it (lazy imports inside functions too)."""
    tree = ast.parse(file.read_text(), filename=str(file))
    package = ".".join(file.relative_to(REPO_ROOT).parent.parts)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def import_closure(component: Component) -> tuple[set[str], set[str]]:
    """(local module files relative to the repo, third-party top-level modules) that the
    component's own files import, following local imports module by module."""
    return import_closure_of(sorted((REPO_ROOT / component.name).glob("*.py")))


def import_closure_of(files: list[Path]) -> tuple[set[str], set[str]]:
    """import_closure, starting from the given files."""
    todo = list(files)
    local: set[Path] = set()
    third_party: set[str] = set()
    while todo:
        file = todo.pop()
        if file in local:
            continue
        local.add(file)
        for dotted in _imported_names(file):
            top = dotted.split(".")[0]
            if not top or top in sys.stdlib_module_names or top == "__future__":
                continue
            if _local_module_file(top) is None:
                third_party.add(top)
                continue
            parts = dotted.split(".")
            for depth in range(1, len(parts) + 1):  # each package on the way is imported too
                found = _local_module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return {str(f.relative_to(REPO_ROOT)) for f in local}, third_party


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed distribution: once


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _packages_distributions().get(module, [])}


# --- Cloud Build configs -----------------------------------------------------------------

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute(text: str, values: dict[str, str]) -> str:
    """Cloud Build's $NAME / ${NAME} substitution; unknown names stay as they are."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return _SUBSTITUTION.sub(replace, text)


def docker_option(args: list[str], name: str) -> list[str]:
    """Every value of a docker option (`--name=value` or `--name value`)."""
    values = []
    for index, word in enumerate(args):
        if word.startswith(name + "="):
            values.append(word.split("=", 1)[1])
        elif word == name and index + 1 < len(args):
            values.append(args[index + 1])
    return values


def parse_yaml(relative: str):
    return yaml.safe_load((REPO_ROOT / relative).read_text())
