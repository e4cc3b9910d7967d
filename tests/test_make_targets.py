"""The README's commands: `make serve` and `make run` start real services; Ctrl-C stops them."""

import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from tests.support.images import sample_jpeg
from tests.support.servers import REPO_ROOT, STREAMLIT_HEALTH, free_port
from tools import run as run_tool
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
        # The first prediction, through the API the frontend calls (v3: the gateway's).
        apis = {component: port for component, _, port in reversed(expected)}
        api = apis.get("v3_gateway") or apis.get(f"backend_{version}")
        answer = requests.post(
            f"http://127.0.0.1:{api}/predict",
            files={"image": ("chelsea.jpg", sample_jpeg("cat"), "image/jpeg")},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "efficientnet_lite0"
        assert "cat" in answer.json()["category"].lower()
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


def banner(monkeypatch, capsys, version: str, env: dict | None = None) -> str:
    """What `make run VERSION=<version>` prints before honcho takes over."""
    for name in ("MODEL_NAME", "MODEL_WEIGHTS", "RESNET18_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(run_tool.os, "execve", lambda *args: None)
    assert run_tool.main([version]) == 0
    return capsys.readouterr().out


def test_the_v3_banner_names_the_gateway_and_each_model_service(monkeypatch, capsys):
    out = banner(monkeypatch, capsys, "v3", {"GATEWAY_PORT": "9000"})
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert list(lines) == ["model_lite0", "model_resnet18", "gateway", "frontend_v2"]
    assert "model service: backend_v1 serving efficientnet_lite0" in lines["model_lite0"]
    assert lines["model_resnet18"].endswith("serving resnet18 (untrained random weights)")
    assert "http://127.0.0.1:9000" in lines["gateway"]
    assert "the v3 gateway" in lines["gateway"]
    assert "open this in a browser" in lines["frontend_v2"]
    assert "ResNet-50" not in out  # every model service names its own model


def test_the_v1_banner_names_the_model_its_backend_serves(monkeypatch, capsys):
    out = banner(monkeypatch, capsys, "v1", {"MODEL_NAME": "resnet18"})
    backend = next(line for line in out.splitlines() if line.startswith("  backend_v1"))
    assert backend.endswith("the API, serving resnet18")
    assert "note:" not in out  # MODEL_NAME chosen: no offline fallback to announce
