"""The README's commands: `make serve` and `make run` start real services; Ctrl-C stops them."""

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from tests.support.servers import REPO_ROOT, STREAMLIT_HEALTH, free_port
from tools.run import services


def make(*args, env=None, timeout=60):
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_without_a_known_service_explains_usage():
    result = make("serve", "SERVICE=nope", "PORT=1")
    assert result.returncode != 0
    assert "usage: make serve SERVICE=<component> PORT=<port>" in result.stderr
    assert "backend_v1" in result.stderr


def test_run_with_an_unknown_version_lists_the_known_ones():
    result = make("run", "VERSION=v9")
    assert result.returncode != 0
    assert "unknown VERSION=v9" in result.stderr
    assert "v1" in result.stderr


def wait_for(url, deadline):
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_make_run_starts_every_service_and_ctrl_c_stops_them(tmp_path, version):
    procfile = REPO_ROOT / "procfiles" / version
    ports = {var: str(free_port()) for _, var, _ in services(procfile, {})}
    expected = services(procfile, ports)
    assert len(expected) >= (4 if version == "v3" else 2)
    log = (tmp_path / "run.log").open("w+")
    env = {**os.environ, **ports, "MODEL_NAME": "efficientnet_lite0", "WEB_CONCURRENCY": "1"}
    if version == "v3":
        env.pop("MODEL_NAME")  # each model service names its own
    run = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"VERSION={version}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        for component, _, port in expected:
            path = STREAMLIT_HEALTH if component.startswith("frontend") else "/ready"
            assert wait_for(f"http://127.0.0.1:{port}{path}", deadline), component
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= len(expected) + 1  # honcho and every service's processes
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        run.wait(60)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [p.name() for p in alive]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    log.seek(0)
    output = log.read()
    for _, _, port in expected:
        assert f"http://127.0.0.1:{port}" in output
