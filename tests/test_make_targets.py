"""The README's commands: `make serve` and `make run` start real services; Ctrl-C stops them."""

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from tests.support.servers import REPO_ROOT, STREAMLIT_HEALTH, free_port


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
def test_make_run_starts_v1_and_ctrl_c_stops_everything(tmp_path):
    backend_port, frontend_port = free_port(), free_port()
    log = (tmp_path / "run.log").open("w+")
    env = {
        **os.environ,
        "BACKEND_PORT": str(backend_port),
        "FRONTEND_PORT": str(frontend_port),
        "MODEL_NAME": "efficientnet_lite0",
        "WEB_CONCURRENCY": "1",
    }
    run = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        assert wait_for(f"http://127.0.0.1:{backend_port}/ready", deadline)
        assert wait_for(f"http://127.0.0.1:{frontend_port}{STREAMLIT_HEALTH}", deadline)
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 3  # honcho, gunicorn master and worker, streamlit
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        run.wait(30)
        _gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, [p.info for p in alive]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    log.seek(0)
    output = log.read()
    assert f"http://127.0.0.1:{backend_port}" in output
    assert f"http://127.0.0.1:{frontend_port}" in output
