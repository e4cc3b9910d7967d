"""The contract every image keeps with Cloud Run, checked on the built images, running.

Each runs as uid 10001, listens on 0.0.0.0:$PORT for a PORT other than 8080,
answers its health endpoints (and a real /predict for the backends and the
gateway), works on a read-only root with a tmpfs /tmp, holds only the code its
Dockerfile copies, and exits 0 within Cloud Run's 10 s after SIGTERM.
"""

from __future__ import annotations

import statistics

import pytest

from tests.containers import running
from tests.containers.conftest import MODEL, PORTS, SERVICES, record
from tests.deployment import kit
from tests.support.images import sample_jpeg
from tools.images import plan

pytestmark = pytest.mark.containers

ALL = [service.name for service in SERVICES]
FLASK = [service.name for service in SERVICES if service.kind != "frontend"]
FRONTENDS = [service.name for service in SERVICES if service.kind == "frontend"]
CLASSIFIERS = ["backend-v1", "backend-v2", "v3-gateway"]
CAT = {"tabby", "tiger cat", "Egyptian cat"}
USER = "10001"


def image_of(name: str) -> plan.ImageSpec:
    service = next(s for s in SERVICES if s.name == name)
    return plan.BY_NAME[service.image]


@pytest.mark.parametrize("name", ALL)
def test_runs_as_the_unprivileged_user(engine, containers, name):
    assert containers[name].execute("id", "-u").stdout.strip() == USER
    # Declared in the image too, so a platform can see it before starting anything.
    assert engine.inspect(image_of(name).reference)["Config"]["User"] == f"{USER}:{USER}"


def _listening(table: str) -> set[tuple[str, int]]:
    """(address hex, port) of every LISTEN socket in /proc/net/tcp{,6}."""
    found = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A":
            address, port = fields[1].split(":")
            found.add((address, int(port, 16)))
    return found


@pytest.mark.parametrize("name", ALL)
def test_listens_on_every_interface_on_the_port_it_is_given(containers, name):
    tables = containers[name].execute("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    listening = _listening(tables)
    port = PORTS[name]
    anywhere = {"00000000", "00000000000000000000000000000000"}
    assert any(address in anywhere and p == port for address, p in listening), (
        f"nothing listens on 0.0.0.0:{port}: {sorted(listening)}"
    )
    assert not any(p == 8080 for _, p in listening), "it listens on 8080, not on $PORT"


@pytest.mark.parametrize("name", FLASK)
def test_health_and_ready_answer(containers, name):
    health, ready = containers[name].probe(
        [{"url": containers[name].url("/health")}, {"url": containers[name].url("/ready")}]
    )
    assert (health.status, health.json()) == (200, {"status": "ok"})
    assert ready.status == 200, ready.text


@pytest.mark.parametrize("name", FRONTENDS)
def test_streamlit_health_answers(containers, name):
    answer = containers[name].get("/_stcore/health")
    assert (answer.status, answer.text.strip()) == (200, "ok")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_real_photo_is_classified(containers, name):
    """The first /predict after /ready, then three more: the answers, and how long each took."""
    container = containers[name]
    upload = container.post_photo("/predict", sample_jpeg("cat"))
    answers = container.probe([upload] * 4)
    for answer in answers:
        assert answer.status == 200, answer.text
        body = answer.json()
        assert body["model"] == MODEL
        assert body["category"] in CAT
        assert len(body["predictions"]) == 5
    later = statistics.median(a.seconds for a in answers[1:])
    record(name, first_predict_s=round(answers[0].seconds, 3), later_predict_s=round(later, 3))


def test_the_gateway_lists_its_model_service(containers):
    answer = containers["v3-gateway"].get("/models")
    assert answer.status == 200, answer.text
    models = {model["name"]: model for model in answer.json()["models"]}
    assert models[MODEL]["available"] is True


@pytest.mark.parametrize("name", ALL)
def test_the_root_is_read_only_and_tmp_writable(containers, name):
    refused = containers[name].execute("touch", "/app/written")
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr + refused.stdout
    assert containers[name].execute("touch", "/tmp/written").returncode == 0


def _expected_app_files(spec: plan.ImageSpec) -> set[str]:
    """What the base's and the app's COPY instructions put under /app, through .dockerignore."""
    dockerfiles = [spec.dockerfile] if spec.is_base else [plan.BY_NAME[spec.base].dockerfile]
    if not spec.is_base:
        dockerfiles.append(spec.dockerfile)
    expected = set()
    for dockerfile in dockerfiles:
        for sources, dest in kit.copies(dockerfile):
            if dest.startswith("/"):
                continue  # the backend base's staging folder, removed in the same step
            for source in sources:
                source = source.rstrip("/")
                inside = [
                    p for p in kit.build_context() if p == source or p.startswith(source + "/")
                ]
                expected |= {f"/app/{p}" for p in inside if (kit.REPO_ROOT / p).is_file()}
    return expected


@pytest.mark.parametrize("name", ALL)
def test_the_image_holds_only_the_code_its_dockerfiles_copy(containers, name):
    spec = image_of(name)
    found = set(containers[name].execute("find", "/app", "-type", "f").stdout.split())
    assert found == _expected_app_files(spec), (
        f"unexpected: {sorted(found - _expected_app_files(spec))}; "
        f"missing: {sorted(_expected_app_files(spec) - found)}"
    )
    secretish = containers[name].execute(
        "find", "/", "-xdev", "(", "-path", "/usr", "-o", "-path", "/etc/ssl", "-o",
        "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o", "-type", "f", "(",
        "-name", "*.pem", "-o", "-name", "*.key", "-o", "-name", "key.json", "-o",
        "-name", "*-key.json", "-o", "-name", ".env", "-o", "-name", "credentials*.json",
        ")", "-print",
    )  # fmt: skip
    assert secretish.stdout.split() == [], secretish.stdout


# Last: it stops the containers every other test uses (the gateway before its model service).
@pytest.mark.parametrize("name", list(reversed(ALL)))
def test_sigterm_stops_it_with_status_0_within_cloud_runs_grace(containers, name):
    status, seconds = containers[name].terminate()
    record(name, sigterm_to_exit_s=round(seconds, 2))
    assert status == 0, containers[name].logs()[-3000:]
    assert seconds < running.CLOUD_RUN_GRACE_SECONDS
