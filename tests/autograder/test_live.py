"""`--live` against the project's own services, started on loopback like `make serve`.

The backend probe uploads the photo the grader ships; no image host is needed.
An image URL, when given, is an extra that is reported and never graded.
"""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from tests.autograder.builders import solution_files
from tests.support.images import sample_jpeg
from tests.support.servers import free_port, start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def v1_frontend(lite0_backend, service_log_dir):
    service = start_service("frontend_v1", service_log_dir, env={"SERVING_URL": lite0_backend.url})
    yield service
    service.stop()


@pytest.fixture(scope="module")
def v2_services(service_log_dir, tmp_path_factory):
    backend = start_service(
        "backend_v2",
        service_log_dir,
        env={
            "MODEL_NAME": "efficientnet_lite0",
            "MODEL_WEIGHTS": "default",
            "ALLOW_LOOPBACK_URLS": "true",
            "SESSION_DIR": str(tmp_path_factory.mktemp("live-v2-sessions")),
            "SECRET_KEY": "autograder-live-tests",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
        },
        timeout=120,
    )
    frontend = start_service("frontend_v2", service_log_dir, env={"SERVING_URL": backend.url})
    yield backend, frontend
    frontend.stop()
    backend.stop()


@pytest.fixture(scope="module")
def cat_url():
    """A real photo served on loopback: what /predict is asked to fetch."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/cat.jpg").respond_with_data(
        sample_jpeg("cat"), content_type="image/jpeg"
    )
    server.start()
    yield server.url_for("/cat.jpg")
    server.clear()
    server.stop()


def _deliverables(v1_back, v1_front, v2_back, v2_front) -> str:
    return (
        "services:\n"
        f"  v1:\n    back_end: {v1_back}\n    front_end: {v1_front}\n"
        f"  v2:\n    back_end: {v2_back}\n    front_end: {v2_front}\n"
    )


def _grade(grader, deliverables: str, image_url: str | None = None):
    files = solution_files()
    files["deliverables.yaml"] = deliverables
    return grader.grade(files, live=True, allow_local_urls=True, probe_image_url=image_url)


LIVE_ITEMS = (
    "Q3.v1.live_backend",
    "Q3.v1.live_frontend",
    "Q6.v2.live_backend",
    "Q6.v2.live_frontend",
)


def test_live_services_earn_the_live_points(
    grader, lite0_backend, v1_frontend, v2_services, cat_url
):
    v2_backend, v2_frontend = v2_services
    deliverables = _deliverables(
        lite0_backend.url, v1_frontend.url, v2_backend.url, v2_frontend.url
    )
    results = _grade(grader, deliverables, cat_url)
    for item in LIVE_ITEMS:
        assert results[item].status == "passed", results[item].message
    offline_and_live = [r for r in results.values() if r.item.kind != "manual"]
    assert sum(r.score for r in offline_and_live) == 78
    assert f"/predict also classified {cat_url} by URL" in results["Q3.v1.live_backend"].message


def test_the_backend_point_needs_no_image_host(grader, lite0_backend, v1_frontend, v2_services):
    """No URL at all, then one nothing answers: the point comes from the upload either way."""
    v2_backend, v2_frontend = v2_services
    deliverables = _deliverables(
        lite0_backend.url, v1_frontend.url, v2_backend.url, v2_frontend.url
    )
    uploads_only = _grade(grader, deliverables)
    assert uploads_only["Q3.v1.live_backend"].status == "passed"
    assert uploads_only["Q3.v1.live_backend"].message == ""
    dead_host = f"http://127.0.0.1:{free_port()}/cat.jpg"
    host_down = _grade(grader, deliverables, dead_host)
    for item in ("Q3.v1.live_backend", "Q6.v2.live_backend"):
        assert host_down[item].status == "passed", host_down[item].message
        assert host_down[item].score == 1
        assert "extra, not graded" in host_down[item].message
        assert "failed" in host_down[item].message


def test_wrong_or_dead_urls_fail_with_a_message(grader, lite0_backend, v1_frontend, cat_url):
    dead = f"http://127.0.0.1:{free_port()}"
    # v1: front and back swapped; v2: nothing listens there.
    deliverables = _deliverables(v1_frontend.url, lite0_backend.url, dead, dead + "0")
    results = _grade(grader, deliverables, cat_url)
    backend_v1 = results["Q3.v1.live_backend"].message
    assert "did not answer JSON" in backend_v1 or "answered HTTP" in backend_v1, backend_v1
    frontend_v1 = results["Q3.v1.live_frontend"].message
    assert "answered HTTP 404" in frontend_v1 or "Streamlit" in frontend_v1, frontend_v1
    dead_message = results["Q6.v2.live_backend"].message
    assert "got no answer" in dead_message
    assert "how to fix:" in dead_message


def test_without_live_the_probes_are_pending(grader):
    results = grader.grade(solution_files())
    for item in LIVE_ITEMS:
        assert results[item].status == "pending"
        assert "--live" in results[item].message
