"""deployment/compose: one file per version that runs the built images side by side.

Validated against the Compose specification's schema (check-jsonschema vendors
it), and wired like the deployment: each frontend's SERVING_URL and the
gateway's MODEL_SERVICES name services of the same file on the PORT they
listen on. Every container of a file listens on a PORT of its own, so the
file also runs as one pod whose containers share loopback
(tests/containers/test_compose_up.py brings them up that way).
"""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deployment import kit
from v3_gateway.settings import GatewaySettings

COMPOSE = sorted((kit.REPO_ROOT / "deployment" / "compose").glob("*.yaml"))
CHECK_JSONSCHEMA = kit.REPO_ROOT / ".venv" / "bin" / "check-jsonschema"
IMAGE = re.compile(r"^\$\{IMAGE_PREFIX:-localhost/ml-deploy\}/([a-z0-9-]+):\$\{TAG:-latest\}$")
# The image each app's Dockerfile makes, under the names the deploy scripts push.
IMAGES = {"backend-v1", "backend-v2", "frontend-v1", "frontend-v2", "v3-gateway"}


def check_compose_schema(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_there_is_one_file_per_version():
    assert [path.name for path in COMPOSE] == ["v1.yaml", "v2.yaml", "v3.yaml"]


def test_every_file_follows_the_compose_specification():
    result = check_compose_schema(*COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path):
    broken = tmp_path / "v1.yaml"
    broken.write_text(COMPOSE[0].read_text().replace("depends_on:", "depends:"))
    result = check_compose_schema(broken)
    assert result.returncode == 1
    assert "depends" in result.stdout


def port_of(service: dict) -> int:
    return int(service["environment"]["PORT"])


@pytest.mark.parametrize("path", COMPOSE, ids=lambda p: p.stem)
def test_services_are_wired_as_deployed(path):
    services = yaml.safe_load(path.read_text())["services"]
    ports = [port_of(service) for service in services.values()]
    assert len(set(ports)) == len(ports), f"two containers would share a PORT: {ports}"
    for name, service in services.items():
        image = IMAGE.match(service["image"])
        assert image, f"{name}: {service['image']}"
        assert image.group(1) in IMAGES
        env = service["environment"]
        port = port_of(service)
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{name} publishes beyond this machine"
            assert mapping.endswith(f":{port}"), f"{name} publishes a port it does not listen on"
        if "healthcheck" in service:
            assert f"http://127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
        targets = []
        if "SERVING_URL" in env:
            assert image.group(1).startswith("frontend-")
            targets.append(env["SERVING_URL"])
        if "MODEL_SERVICES" in env:
            # Parsed by the gateway's own settings, as it will read them.
            routes = {
                model: route.url
                for model, route in GatewaySettings(
                    model_services=env["MODEL_SERVICES"]
                ).routes.items()
            }
            for model, url in routes.items():
                served = services[urlsplit(url).hostname]["environment"]["MODEL_NAME"]
                assert served == model
            targets += list(routes.values())
        for url in targets:
            parts = urlsplit(url)
            assert parts.hostname in services, f"{name} calls {url}, not a service here"
            assert parts.port == port_of(services[parts.hostname])
            # Started once what it calls is ready.
            assert service["depends_on"][parts.hostname] == {"condition": "service_healthy"}
    frontends = [s for s in services.values() if "SERVING_URL" in s["environment"]]
    assert len(frontends) == 1
