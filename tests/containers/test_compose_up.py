"""deployment/compose brought up for real, from the images `make images` built.

Each file's services start in the order its `depends_on` gives, each one
only once what it depends on passes the file's own healthcheck (run in the
container, as compose runs it). They run as one pod whose containers share
loopback, with no network beyond it: this machine's podman (4.3, CNI without
the dnsname plugin) cannot resolve one container's name in another, and
nothing in a test may listen beyond loopback. The files give every container
a PORT of its own for this, and a hosts file mounted in every container
resolves each service's name to 127.0.0.1, so the URLs in the files are used
as written. The frontend then classifies a photo through its own API client,
which reads SERVING_URL as the file sets it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tests.containers import running
from tests.deployment import kit
from tests.support.images import sample_jpeg

pytestmark = pytest.mark.containers

COMPOSE = kit.REPO_ROOT / "deployment" / "compose"
# What the files read from the environment, set for stand-in images too: their base
# bakes only efficientnet_lite0's weights (docs/images.md, "Stand-ins").
SETTINGS = {"MODEL_NAME": "efficientnet_lite0", "RESNET18_WEIGHTS": "random"}
# Compose's ${NAME} and ${NAME:-default}, the only forms the files use: a regular
# expression is enough here, where a compose implementation would bring its own engine.
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
CAT = {"tabby", "tiger cat", "Egyptian cat"}
# The frontend's own client, run in the frontend's container with its environment.
CLIENT = """\
import base64, json, sys
from apiclient import ApiClient
client = ApiClient.from_settings()
photo = base64.b64decode(sys.stdin.read())
print(json.dumps({"models": client.models(), "answer": client.predict_upload(photo, "cat.jpg")}))
"""


def interpolate(text: str, env: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text)


def load(path: Path) -> dict[str, dict]:
    return yaml.safe_load(interpolate(path.read_text(), SETTINGS))["services"]


def dependencies(service: dict) -> dict[str, str]:
    """{service: condition}; the short list form means service_started."""
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return {name: "service_started" for name in depends}
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def start_order(services: dict[str, dict]) -> list[str]:
    order: list[str] = []
    while len(order) < len(services):
        ready = [
            name
            for name, service in services.items()
            if name not in order and set(dependencies(service)) <= set(order)
        ]
        assert ready, f"depends_on has a cycle among {set(services) - set(order)}"
        order += ready
    return order


def wait_healthy(container: running.Container, healthcheck: dict) -> None:
    """The file's healthcheck, run in the container until it passes (bounded)."""
    kind, *command = healthcheck["test"]
    assert kind == "CMD"
    deadline = time.monotonic() + running.START_TIMEOUT
    while time.monotonic() < deadline:
        if not container.running():
            raise AssertionError(f"{container.name} exited:\n{container.logs()[-4000:]}")
        if container.execute(*command).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"{container.name} never became healthy:\n{container.logs()[-4000:]}")


@pytest.fixture(params=["v1", "v2", "v3"])
def version_up(request, engine, tmp_path):
    services = load(COMPOSE / f"{request.param}.yaml")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {' '.join(services)}\n::1 localhost\n")
    hosts.chmod(0o644)
    started: dict[str, running.Container] = {}
    try:
        for name in start_order(services):
            service = services[name]
            for needed, condition in dependencies(service).items():
                if condition == "service_healthy":
                    wait_healthy(started[needed], services[needed]["healthcheck"])
            env = {key: str(value) for key, value in service["environment"].items()}
            started[name] = running.start(
                engine,
                service["image"],
                port=int(env["PORT"]),
                env=env,
                join=next(iter(started.values()), None),
                mounts={hosts: "/etc/hosts"},
            )
        for name, container in started.items():
            if "healthcheck" in services[name]:
                wait_healthy(container, services[name]["healthcheck"])
        yield request.param, services, started
    finally:
        for container in reversed(list(started.values())):
            container.remove()


def test_the_frontend_classifies_a_photo_through_the_services_the_file_wires(version_up):
    version, services, started = version_up
    [frontend] = [name for name, s in services.items() if "SERVING_URL" in s["environment"]]
    container = started[frontend]
    port = services[frontend]["environment"]["PORT"]
    container.wait_until_answering("/_stcore/health")
    assert container.port == int(port)
    result = container.engine.run(
        container.engine.image_command("exec", "-i", container.id, "python", "-c", CLIENT),
        input_text=base64.b64encode(sample_jpeg("cat")).decode(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr + container.logs()[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["answer"]["category"] in CAT, seen["answer"]
    assert seen["answer"]["model"] == "efficientnet_lite0"
    listed = {model["name"]: model["available"] for model in seen["models"]["models"]}
    if version == "v3":  # the gateway reaches both model services by the names in the file
        assert listed == {"efficientnet_lite0": True, "resnet18": True}
    else:
        assert listed["efficientnet_lite0"] is True
