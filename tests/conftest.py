"""Fixtures shared across the suite: service logs and one live backend_v1."""

from __future__ import annotations

import pytest

from tests.support.servers import start_service


@pytest.fixture(scope="session")
def service_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def lite0_backend(service_log_dir):
    """backend_v1 serving efficientnet_lite0 (real weights, offline), loopback URLs allowed."""
    service = start_service(
        "backend_v1",
        service_log_dir,
        env={
            "MODEL_NAME": "efficientnet_lite0",
            "MODEL_WEIGHTS": "default",
            "ALLOW_LOOPBACK_URLS": "true",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
        },
    )
    yield service
    service.stop()
