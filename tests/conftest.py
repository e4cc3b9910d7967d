"""Fixtures shared across the suite: service logs and one live backend_v1; the groups
that run only when selected; the test process's __main__ kept as it was."""

from __future__ import annotations

import os
import sys

import pytest

from tests.support.servers import start_service

# google-auth looks for Google's metadata server (169.254.169.254) when it finds no
# credentials. In the tests it finds a closed loopback port instead, in this process
# and in every service started from it, unless a test points it at its own fake
# (tests/support/metadata_server.py).
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"

# Groups that take minutes run only when selected by name (-m environments,
# -m chroot, -m release, -m containers), whatever else -m says: `make test
# PYTEST_ARGS=-m "not slow"` must not start building images.
_ON_REQUEST = ("environments", "chroot", "release", "containers")


def pytest_collection_modifyitems(config, items):
    expression = config.getoption("markexpr") or ""
    skipped = [m for m in _ON_REQUEST if m not in expression]
    if not skipped:
        return
    kept, left_out = [], []
    for item in items:
        (left_out if any(item.get_closest_marker(m) for m in skipped) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Streamlit's script runner (AppTest) makes the app it runs this process's
    __main__ and leaves it there; multiprocessing's forkserver and spawn children
    then run that app again (the batch grader's children crashed on it)."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


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
