"""procfiles/v3 (`make run VERSION=v3`): two model services, the gateway routing
to exactly them, and frontend_v2 pointed at the gateway."""

from __future__ import annotations

import os
import shlex
import subprocess

from tests.support.servers import REPO_ROOT
from tools.run import services
from v3_gateway.settings import GatewaySettings

PROCFILE = REPO_ROOT / "procfiles" / "v3"


def expanded_env(line: str, env: dict) -> dict[str, str]:
    """The VAR=value words before `make`, expanded by the shell as honcho's would."""
    command = line.split(":", 1)[1]
    prefix = command.split(" make ", 1)[0]
    printed = subprocess.run(
        ["bash", "-c", f'for word in {prefix}; do echo "$word"; done'],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(word.split("=", 1) for word in printed.split())


def processes(env: dict) -> dict[str, dict[str, str]]:
    found = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            found[line.split(":", 1)[0]] = expanded_env(line, env)
    return found


def test_every_process_runs_through_make_serve():
    env = {}
    assert [c for c, _, _ in services(PROCFILE, env)] == [
        "backend_v1",
        "backend_v1",
        "v3_gateway",
        "frontend_v2",
    ]
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "make --no-print-directory serve SERVICE=" in shlex.join(shlex.split(line))


def test_gateway_routes_to_the_model_services_and_the_frontend_to_the_gateway():
    for env in ({}, {"LITE0_PORT": "9001", "RESNET18_PORT": "9002", "GATEWAY_PORT": "9000"}):
        started = services(PROCFILE, env)
        gateway_port = next(port for component, _, port in started if component == "v3_gateway")
        found = processes(env)
        model_ports = [port for component, _, port in started if component == "backend_v1"]
        names = [found[p]["MODEL_NAME"] for p in found if p.startswith("model_")]
        assert names == ["efficientnet_lite0", "resnet18"]
        routes = GatewaySettings(model_services=found["gateway"]["MODEL_SERVICES"]).routes
        assert {name: route.url for name, route in routes.items()} == {
            name: f"http://127.0.0.1:{port}" for name, port in zip(names, model_ports, strict=True)
        }
        assert found["frontend_v2"]["SERVING_URL"] == f"http://127.0.0.1:{gateway_port}"
        # Only efficientnet_lite0 has real weights offline; resnet18 says it is random.
        assert found["model_lite0"]["MODEL_WEIGHTS"] == "default"
        assert found["model_resnet18"]["MODEL_WEIGHTS"] == "random"
