"""Dockerless smoke test: each image's CMD, run as the container would run it.

No Docker engine runs here, so the test rebuilds the one thing an app image
adds, its code: it applies the Dockerfile's COPY instructions (through
.dockerignore) into a scratch folder that stands for the image's file system,
starts the CMD in the WORKDIR with the ENV the base and app Dockerfiles set
(absolute paths moved under the scratch folder), and polls the health
endpoint. The Python packages come from the dev environment, which holds every
image's pinned requirements.

Two test-only overrides, each for a reason: PORT is a free port the test
picks (Cloud Run picks it in production), and HOST=127.0.0.1 because the
project's tests listen on loopback only (the images listen on 0.0.0.0, as
Cloud Run needs). Backends serve efficientnet_lite0, whose real weights ship
in a package, since nothing can be downloaded here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.deployment import kit
from tests.support.servers import free_port

VENV_BIN = Path(kit.REPO_ROOT / ".venv" / "bin")
START_TIMEOUT = 120.0


def stage_image_files(component: kit.Component, root: Path) -> Path:
    """Apply the app Dockerfile's COPYs under `root`; return the WORKDIR inside it."""
    workdir = "/"
    for instruction in kit.instructions(component.dockerfile):
        if instruction["instruction"] == "WORKDIR":
            workdir = instruction["value"].strip()
        if instruction["instruction"] not in ("COPY", "ADD"):
            continue
        sources, dest = kit.copy_sources_and_dest(instruction["value"])
        target = root / workdir.lstrip("/") / dest if not dest.startswith("/") else root / dest[1:]
        for source in sources:
            _copy_through_dockerignore(source.rstrip("/"), target, dest.endswith("/"))
    return root / workdir.lstrip("/")


def _copy_through_dockerignore(source: str, target: Path, into_folder: bool) -> None:
    context = kit.build_context()
    assert source in context, f"COPY {source}: not in the build context (.dockerignore)"
    origin = kit.REPO_ROOT / source
    if origin.is_dir():  # docker copies a folder's contents, not the folder itself
        for path in sorted(origin.rglob("*")):
            relative = path.relative_to(kit.REPO_ROOT).as_posix()
            if path.is_file() and relative in context:
                destination = target / path.relative_to(origin)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
        return
    destination = target / origin.name if into_folder else target
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(origin, destination)


def container_env(component: kit.Component, root: Path, port: int) -> dict[str, str]:
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(root / "home" / "app"),
        "LANG": "C.UTF-8",
    }
    for name, value in kit.image_env(component).items():
        # An absolute path in the image (/app, /opt/torch) lives under the scratch root.
        env[name] = str(root / value.lstrip("/")) if value.startswith("/") else value
    unused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env.update(
        PORT=str(port),
        HOST="127.0.0.1",
        WEB_CONCURRENCY="1",  # one worker: the machine is shared
        GRACEFUL_TIMEOUT="2",  # a quick stop at teardown (Cloud Run allows 10 s)
        MODEL_NAME="efficientnet_lite0",
        MODEL_WEIGHTS="default",
        SERVING_URL=unused,
        MODEL_SERVICES=f"efficientnet_lite0={unused}",
        ALLOW_LOOPBACK_URLS="true",
    )
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def wait_for_health(process: subprocess.Popen, url: str, log: Path) -> requests.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the CMD exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.RequestException:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer 200 in {START_TIMEOUT:g} s:\n{log.read_text()[-4000:]}")


def where_python_finds(package: str, workdir: Path, env: dict[str, str]) -> Path:
    found = subprocess.run(
        [sys.executable, "-c", f"import {package}; print({package}.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


@dataclass
class StagedContainer:
    """One component's CMD running from its staged image files."""

    component: kit.Component
    workdir: Path
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @classmethod
    def stage(cls, component: kit.Component, scratch: Path) -> StagedContainer:
        root = scratch / component.name / "image root"
        workdir = stage_image_files(component, root)
        env = container_env(component, root, port=0)
        return cls(component, workdir, env, 0, scratch / f"{component.name}.log")

    def start(self) -> None:
        # The port is chosen just before the start, so another test's server on this
        # shared machine has little time to take it in between.
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        cmd = kit.parse(self.component.dockerfile).cmd
        assert cmd.startswith("["), f"{self.component.dockerfile}: use the JSON (exec) CMD form"
        with self.log.open("wb") as log_file:
            self.process = subprocess.Popen(
                json.loads(cmd),
                cwd=self.workdir,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signal() reaches the workers
            )

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def wait_stopped(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    """Every component whose code exists, all started at once (their start-ups overlap)."""
    scratch = tmp_path_factory.mktemp("images")
    started = {}
    try:
        for name, component in kit.COMPONENTS.items():
            if component.entry.is_file():
                started[name] = StagedContainer.stage(component, scratch)
                started[name].start()
        yield started
    finally:
        for container in started.values():  # all at once: their shutdowns overlap too
            container.signal(signal.SIGTERM)
        for container in started.values():
            container.wait_stopped(10)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(kit.COMPONENTS))
def test_image_cmd_serves_health(name, containers):
    component = kit.COMPONENTS[name]
    if name not in containers:
        pytest.skip(f"{component.entry.relative_to(kit.REPO_ROOT)} is not written yet")
    container = containers[name]
    url = f"http://127.0.0.1:{container.port}{component.health_path}"
    response = wait_for_health(container.process, url, container.log)
    if component.kind == "flask":
        assert response.json() == {"status": "ok"}
    else:
        assert response.text.strip() == "ok"
    # What answered imports the staged copy of the code, not the repo's.
    found = where_python_finds(name, container.workdir, container.env)
    assert found == container.workdir / name / "__init__.py"
