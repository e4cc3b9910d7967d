"""Fixtures for backend_v2: test weights, live gunicorn services, a loopback Redis."""

from __future__ import annotations

import threading

import pytest

from tests.backend_v2.live import start_gunicorn_app, start_together
from tests.backend_v2.redis_server import start_redis
from tests.backend_v2.weights import make_weights_dir
from tests.support.servers import start_service

DEFAULT_MODEL = "efficientnet_lite0"
SECRET = "test-secret-shared-by-every-instance"
V2_CONFIG = "backend_v2/gunicorn.conf.py"


class BackgroundStopper:
    """Stops services in background threads and waits for all of them once, at the end.

    A gunicorn service takes seconds to exit (its processes free their torch
    memory); stopping several one after another would add those up.
    """

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def stop(self, *services) -> None:
        for service in services:
            thread = threading.Thread(target=service.stop, name=f"stop {service.component}")
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


@pytest.fixture(scope="session")
def stopper():
    background = BackgroundStopper()
    yield background
    background.join()


@pytest.fixture(scope="session")
def v2_weights(tmp_path_factory):
    return make_weights_dir(tmp_path_factory.mktemp("v2-weights"))


def live_env(weights, **extra) -> dict:
    """The environment of a live backend_v2 under test: several workers, several threads."""
    return {
        "MODEL_NAME": DEFAULT_MODEL,
        "MODEL_WEIGHTS": str(weights),
        "SECRET_KEY": SECRET,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "TORCH_THREADS": "1",
        "MAX_LOADED_MODELS": "3",
        "ALLOW_LOOPBACK_URLS": "true",
        # A test's image host holds its answer while a model loads (seconds when busy).
        "FETCH_TOTAL_TIMEOUT": "30",
        # Stopping waits this long at most for a worker to exit (it takes seconds
        # to free its torch memory); then gunicorn kills it.
        "GRACEFUL_TIMEOUT": "2",
        **{key: str(value) for key, value in extra.items()},
    }


@pytest.fixture(scope="module")
def v2_and_global_variant(v2_weights, service_log_dir, tmp_path_factory, stopper):
    """backend_v2 and its counterexample, started together (they are tested side by side)."""

    def real():
        sessions = tmp_path_factory.mktemp("v2-sessions")
        env = live_env(v2_weights, SESSION_STORE="cachelib", SESSION_DIR=sessions)
        return start_service("backend_v2", service_log_dir, env=env, timeout=120)

    def global_variant():
        sessions = tmp_path_factory.mktemp("global-variant-sessions")
        env = live_env(v2_weights, SESSION_STORE="cachelib", SESSION_DIR=sessions)
        app = "tests.backend_v2.global_model_app:create_app()"
        return start_gunicorn_app(app, V2_CONFIG, service_log_dir, env=env)

    services = start_together([real, global_variant])
    yield services
    stopper.stop(*services)


@pytest.fixture(scope="module")
def v2_backend(v2_and_global_variant):
    """The real backend_v2 (tools/serve.sh), sessions in a cachelib folder."""
    return v2_and_global_variant[0]


@pytest.fixture(scope="module")
def global_variant_backend(v2_and_global_variant):
    """The counterexample: backend_v2 with a process-wide current model, same gunicorn setup."""
    return v2_and_global_variant[1]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_instances(redis_server, v2_weights, service_log_dir, stopper):
    """Two backend_v2 "Cloud Run instances" sharing one Redis and one SECRET_KEY.

    Each holds at most one model, so switching models evicts under load.
    """
    env = live_env(
        v2_weights,
        SESSION_STORE="redis",
        SESSION_REDIS_URL=redis_server.url,
        WEB_CONCURRENCY=1,
        MAX_LOADED_MODELS=1,
    )
    services = start_together(
        [lambda: start_service("backend_v2", service_log_dir, env=env, timeout=120)] * 2
    )
    yield services
    stopper.stop(*services)
