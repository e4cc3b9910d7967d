"""What the built bases hold, and what a real build leaves out of an image.

Each base installs its lock: every locked package at the locked version (the
dev environment has the same ones, tests/deployment/test_locks.py), and
nothing else but the torch pair, what the Python image itself brings, and,
with the default-index torch stand-in, the CUDA packages it pins. A build from
a context holding key files shows .dockerignore keeps them out of the image.
"""

from __future__ import annotations

import json
import shutil

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deployment import kit
from tools import locks
from tools.images import plan, standins

pytestmark = pytest.mark.containers

LOCK_OF_BASE = {"backend-base": "serving", "frontend-base": "frontend", "gateway-base": "gateway"}
# The installed distributions and the marker environment of the Python that runs this.
_INSTALLED = """
import json, os, platform, sys
from importlib import metadata
environment = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
installed = {}
for dist in metadata.distributions():  # in sys.path order: the first one is what imports
    installed.setdefault(dist.metadata["Name"], dist.version)
print(json.dumps({"environment": environment, "installed": installed}))
"""


def installed_in(engine, image: str) -> tuple[dict, dict[str, str]]:
    result = engine.image(
        "run", "--rm", "--network", "none", image, "python", "-c", _INSTALLED, timeout=300
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    installed = {canonicalize_name(name): v for name, v in found["installed"].items()}
    return found["environment"], installed


def locked_for(lock: str, environment: dict) -> dict[str, str]:
    pins = {}
    for line in (locks.LOCK_DIR / f"{lock}.txt").read_text().splitlines():
        if line[:1].isalnum():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pins[canonicalize_name(requirement.name)] = next(
                    iter(requirement.specifier)
                ).version
    return pins


def python_base(engine) -> str:
    return (
        standins.PYTHON_STAND_IN
        if engine.exists(standins.PYTHON_STAND_IN)
        else standins.REAL_PYTHON_IMAGE
    )


@pytest.mark.parametrize("base", list(LOCK_OF_BASE))
def test_a_base_holds_its_lock_and_nothing_else(engine, base):
    environment, installed = installed_in(engine, plan.BY_NAME[base].reference)
    pinned = locked_for(LOCK_OF_BASE[base], environment)
    differing = {n: (v, installed.get(n)) for n, v in pinned.items() if installed.get(n) != v}
    assert not differing, f"locked vs in {base}: {differing}"
    allowed = set(pinned) | set(installed_in(engine, python_base(engine))[1])
    if base == "backend-base":
        torch_pins = {Requirement(line) for line in kit.requirement_lines("torch.txt")}
        for requirement in torch_pins:
            version = installed[canonicalize_name(requirement.name)]
            assert version.split("+")[0] == next(iter(requirement.specifier)).version
            allowed.add(canonicalize_name(requirement.name))
    extra = {name for name in set(installed) - allowed if not locks.is_cuda_only(name)}
    assert not extra, f"{base} holds packages no lock names: {sorted(extra)}"


def test_a_real_build_leaves_key_files_out_of_the_image(engine, tmp_path):
    """backend_v1's image built from a context where a student left key files about."""
    context = tmp_path / "context"
    for relative in kit.build_context():
        source = kit.REPO_ROOT / relative
        if source.is_file():
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / relative)
    shutil.copy2(kit.REPO_ROOT / ".dockerignore", context / ".dockerignore")
    for relative in (*kit.SECRET_DECOYS, *kit.NOT_SECRETS):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / relative).write_text('{"private_key": "decoy"}')
    tag = "localhost/ml-deploy/decoy-check:latest"
    args = {"BASE_IMAGE": plan.BY_NAME["backend-base"].reference}
    log = tmp_path / "build.log"
    with log.open("w") as output:
        status = engine.build("backend_v1/Dockerfile", str(context), [tag], args, output=output)
    assert status == 0, log.read_text()[-3000:]
    try:
        listing = engine.image("run", "--rm", "--network", "none", tag, "find", "/app").stdout
    finally:
        engine.image("rmi", tag, check=False)
    files = {line.removeprefix("/app/") for line in listing.split()}
    assert "backend_v1/app.py" in files
    assert not files & set(kit.SECRET_DECOYS), sorted(files & set(kit.SECRET_DECOYS))
