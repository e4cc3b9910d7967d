"""The built images, started one at a time as Cloud Run would start them, shared by the tests.

The `containers` group runs on the images `make images` built (CI:
`make images STAND_INS=1 && make test-containers`); the default `make test`
leaves it out. Backends serve efficientnet_lite0, whose real weights ship in
its package, so the images work whether or not the published weights were
baked in. v3's gateway runs in front of a model service, the backend-v1 image
with MODEL_NAME set, as solution/v3/deploy_models_v3.sh deploys it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.containers import running
from tools.images import build, plan

MODEL = "efficientnet_lite0"
# PORTs other than Cloud Run's default 8080, to show $PORT is obeyed.
PORTS = {
    "backend-v1": 8181,
    "backend-v2": 8182,
    "frontend-v1": 8183,
    "frontend-v2": 8184,
    "model-service": 8185,
    "v3-gateway": 8186,
}
# Frontends need a backend URL to start; nothing listens there and nothing asks it.
UNUSED_BACKEND = "http://127.0.0.1:9"
REPORT = build.images_dir() / "contract-report.json"


@dataclass(frozen=True)
class Service:
    """One container of the contract run: which image, what it is told, what answers."""

    name: str
    image: str
    env: dict
    ready_path: str
    kind: str  # "backend", "frontend" or "gateway"
    joins: str | None = None


SERVICES = (
    Service("backend-v1", "backend-v1", {"MODEL_NAME": MODEL}, "/ready", "backend"),
    Service("backend-v2", "backend-v2", {"MODEL_NAME": MODEL}, "/ready", "backend"),
    Service(
        "frontend-v1", "frontend-v1", {"SERVING_URL": UNUSED_BACKEND}, "/_stcore/health", "frontend"
    ),
    Service(
        "frontend-v2", "frontend-v2", {"SERVING_URL": UNUSED_BACKEND}, "/_stcore/health", "frontend"
    ),
    Service("model-service", "backend-v1", {"MODEL_NAME": MODEL}, "/ready", "backend"),
    Service(
        "v3-gateway",
        "v3-gateway",
        {"MODEL_SERVICES": f"{MODEL}=http://127.0.0.1:{PORTS['model-service']}"},
        "/ready",
        "gateway",
        joins="model-service",
    ),
)
BY_NAME = {service.name: service for service in SERVICES}
_measured: dict[str, dict] = {}


def record(service: str, **figures: float) -> None:
    """Figures the closing report shows (start-to-ready, first predict, stop)."""
    _measured.setdefault(service, {}).update(figures)


@pytest.fixture(scope="session")
def engine():
    engine = build.engine_for()
    missing = [spec.reference for spec in plan.PLAN if not engine.exists(spec.reference)]
    if missing:
        pytest.fail(
            f"not built: {', '.join(missing)}. Run `make images` first "
            "(`make images STAND_INS=1` on a machine that cannot reach Docker Hub, "
            "the PyTorch CPU index and the published weights)."
        )
    return engine


@pytest.fixture(scope="session")
def containers(engine):
    """Every service, started one after the other so each start-to-ready is its own."""
    started: dict[str, running.Container] = {}
    try:
        for service in SERVICES:
            joined = started[service.joins] if service.joins else None
            image = plan.BY_NAME[service.image].reference
            container = running.start(
                engine, image, port=PORTS[service.name], env=service.env, join=joined
            )
            started[service.name] = container
            container.wait_until_answering(service.ready_path)
            record(service.name, start_to_ready_s=round(container.ready_seconds, 2))
        yield started
    finally:
        for container in reversed(list(started.values())):
            container.remove()


def pytest_collection_modifyitems(items):
    """The local Cloud Builds last: the contract tests want the machine to themselves."""
    items.sort(key=lambda item: "test_cloudbuild_local" in item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _measured:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(_measured, indent=2))
    terminalreporter.section("container contract: measured")
    for service, figures in _measured.items():
        shown = ", ".join(f"{key} {value}" for key, value in figures.items())
        terminalreporter.write_line(f"{service:<14} {shown}")
    terminalreporter.write_line(f"(also in {REPORT})")
