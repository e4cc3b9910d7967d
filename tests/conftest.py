"""Fixtures shared across the suite: service logs and one live backend_v1."""

from __future__ import annotations

import os

import pytest

from tests.support.servers import start_service

# google-auth looks for Google's metadata server (169.254.169.254) when it finds no
# credentials. In the tests it finds a closed loopback port instead, in this process
# and in every service started from it, unless a test points it at its own fake
# (tests/support/metadata_server.py).
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"


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
