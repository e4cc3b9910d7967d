"""The loopback registry standing in for Artifact Registry outlives no run."""

import shutil
import subprocess
import sys
import time

import psutil
import pytest

from tests.support.servers import REPO_ROOT

START_AND_WAIT = """
import sys, time
from pathlib import Path
from tools.cloudbuild_local.registry import Registry
registry = Registry(Path(sys.argv[1]))
registry.start()
print(registry._process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry absent")
def test_a_run_killed_outright_takes_its_registry_with_it(tmp_path):
    run = subprocess.Popen(
        [sys.executable, "-c", START_AND_WAIT, str(tmp_path / "registry")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server = psutil.Process(int(run.stdout.readline()))
        assert server.is_running()
    finally:
        run.kill()
        run.wait(30)
    deadline = time.monotonic() + 30
    try:
        while server.is_running() and server.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the registry outlived its run"
            time.sleep(0.2)
    finally:
        if server.is_running():
            server.kill()
