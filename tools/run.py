"""`make run VERSION=...`: start one app version with honcho and say where it is.

honcho (a Procfile runner) starts every process of procfiles/<version>, prefixes
their logs, and on Ctrl-C stops them all. This wrapper only picks defaults that
work offline and prints the URLs first.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCFILES = REPO_ROOT / "procfiles"
# `SERVICE=<component> PORT=${<VAR>:-<default>}` in a Procfile line.
_SERVE = re.compile(r"SERVICE=(?P<service>\w+) PORT=\$\{(?P<var>\w+):-(?P<default>\d+)\}")


def services(procfile: Path, env: dict) -> list[tuple[str, str, int]]:
    """(component, port variable, port) of each `make serve` line, as the shell expands it."""
    found = []
    for line in procfile.read_text().splitlines():
        match = _SERVE.search(line)
        if match and not line.lstrip().startswith("#"):
            port = int(env.get(match["var"]) or match["default"])
            found.append((match["service"], match["var"], port))
    return found


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
    fallback = offline_model_default(env)
    if fallback:
        env["MODEL_NAME"] = fallback
        print(
            f"note: ResNet-50's weights are not downloaded, so the backend serves {fallback} "
            "(real ImageNet weights shipped in a package).\n"
            "      For ResNet-50 run `.venv/bin/python -m classifier.prefetch resnet50` once "
            "(needs network),\n      or try untrained weights with `make run MODEL_WEIGHTS=random`."
        )
    print(f"Starting {version}; Ctrl-C stops everything.")
    for component, _var, port in services(procfile, env):
        role = "open this in a browser" if component.startswith("frontend") else "API"
        print(f"  {component:<14} http://127.0.0.1:{port}   ({role})")
    sys.stdout.flush()
    honcho = str(Path(sys.executable).with_name("honcho"))
    os.execve(honcho, [honcho, "-f", str(procfile), "start"], env)  # noqa: S606 - honcho replaces us
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
