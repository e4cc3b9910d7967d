"""`make run VERSION=...`: start one app version with honcho and say where it is.

honcho (a Procfile runner) starts every process of procfiles/<version>, prefixes
their logs, and on Ctrl-C stops them all. This wrapper only picks defaults that
work offline and prints the URLs first.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCFILES = REPO_ROOT / "procfiles"
# `SERVICE=<component> PORT=${<VAR>:-<default>}` in a Procfile line.
_SERVE = re.compile(r"SERVICE=(?P<service>\w+) PORT=\$\{(?P<var>\w+):-(?P<default>\d+)\}")
# `${VAR:-default}`, as the shell expands it.
_EXPANSION = re.compile(r"\$\{(\w+):-([^}]*)\}")
BACKENDS = ("backend_v1", "backend_v2")


@dataclass(frozen=True)
class Process:
    """One line of a Procfile: its name, the component it serves, where, and which model."""

    name: str
    component: str
    port_var: str
    port: int
    model: str | None  # MODEL_NAME the line sets, if any
    weights: str | None  # MODEL_WEIGHTS the line sets, if any

    def role(self, served_by_default: str) -> str:
        """What this process is, for the banner; `served_by_default` is a backend's MODEL_NAME."""
        if self.component.startswith("frontend"):
            return "open this in a browser"
        if self.component == "v3_gateway":
            return "the v3 gateway: the API the frontend calls"
        if self.model:  # set on its own Procfile line: one of v3's model services
            random = " (untrained random weights)" if self.weights == "random" else ""
            return f"model service: {self.component} serving {self.model}{random}"
        if self.component == "backend_v2":
            return f"the API; default model {served_by_default}"
        return f"the API, serving {served_by_default}"


def processes(procfile: Path, env: dict) -> list[Process]:
    """Every `make serve` line of `procfile`, with ${VAR:-default} expanded from `env`."""
    found = []
    for line in procfile.read_text().splitlines():
        match = _SERVE.search(line)
        if not match or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        expanded = _EXPANSION.sub(lambda m: env.get(m[1]) or m[2], command)
        model = re.search(r"\bMODEL_NAME=(\S+)", expanded)
        weights = re.search(r"\bMODEL_WEIGHTS=(\S+)", expanded)
        found.append(
            Process(
                name=name.strip(),
                component=match["service"],
                port_var=match["var"],
                port=int(env.get(match["var"]) or match["default"]),
                model=model[1] if model else None,
                weights=weights[1] if weights else None,
            )
        )
    return found


def services(procfile: Path, env: dict) -> list[tuple[str, str, int]]:
    """(component, port variable, port) of each `make serve` line, as the shell expands it."""
    return [(p.component, p.port_var, p.port) for p in processes(procfile, env)]


def default_model_name() -> str:
    from classifier.models import DEFAULT_MODEL

    return DEFAULT_MODEL


def serves_the_default_model(started: list[Process]) -> bool:
    """A v1 or v2 backend without its own MODEL_NAME (v3's model services each name theirs)."""
    return any(p.component in BACKENDS and p.model is None for p in started)


def offline_model_default(env: dict) -> str | None:
    """Serve the packaged model when ResNet-50's weights were never downloaded here."""
    if env.get("MODEL_NAME") or env.get("MODEL_WEIGHTS"):
        return None
    from classifier.models import CATALOG, DEFAULT_MODEL, WeightsSource

    if WeightsSource.parse("default").missing_reason(CATALOG[DEFAULT_MODEL]) is None:
        return None
    return "efficientnet_lite0"


def main(argv: list[str]) -> int:
    version = argv[0] if argv else "v1"
    procfile = PROCFILES / version
    if not procfile.is_file():
        known = " ".join(sorted(p.name for p in PROCFILES.iterdir()))
        print(f"make run: unknown VERSION={version}; choose one of: {known}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    started = processes(procfile, env)
    fallback = offline_model_default(env) if serves_the_default_model(started) else None
    if fallback:
        env["MODEL_NAME"] = fallback
        print(
            f"note: ResNet-50's weights are not downloaded, so the backend serves {fallback} "
            "(real ImageNet weights shipped in a package).\n"
            "      For ResNet-50 run `.venv/bin/python -m classifier.prefetch resnet50` once "
            "(needs network),\n      or try untrained weights with `make run MODEL_WEIGHTS=random`."
        )
    print(f"Starting {version}; Ctrl-C stops everything.")
    served_by_default = env.get("MODEL_NAME") or (
        default_model_name() if serves_the_default_model(started) else ""
    )
    for process in started:
        url = f"http://127.0.0.1:{process.port}"
        print(f"  {process.name:<15} {url:<23} {process.role(served_by_default)}")
    sys.stdout.flush()
    honcho = str(Path(sys.executable).with_name("honcho"))
    os.execve(honcho, [honcho, "-f", str(procfile), "start"], env)  # noqa: S606 - honcho replaces us
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
