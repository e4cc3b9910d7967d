"""gunicorn's configuration: one core budget, decided once, handed to each worker's readiness."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask

from webservice.api import UploadSettings, init_api, readiness_of
from webservice.server import ServerSettings, available_cores, gunicorn_config


class RecordingReadiness:
    def __init__(self) -> None:
        self.cores: list[int | None] = []

    def warm_up(self, cores: int | None = None) -> None:
        self.cores.append(cores)

    def not_ready_reason(self) -> str | None:
        return None if self.cores else "not warmed up"


def test_each_worker_warms_the_app_up_on_its_share_of_the_cores():
    readiness = RecordingReadiness()
    app = Flask(__name__)
    init_api(app, UploadSettings(), readiness=readiness)
    assert app.test_client().get("/ready").status_code == 503
    settings = ServerSettings(web_concurrency=2, torch_threads=None)
    config = gunicorn_config(settings)
    assert config["preload_app"] is True
    config["post_worker_init"](SimpleNamespace(wsgi=app))
    assert readiness.cores == [max(1, available_cores() // 2)] == [settings.threads_per_worker]
    assert app.test_client().get("/ready").status_code == 200
    assert readiness_of(app) is readiness


def test_torch_threads_overrides_the_share():
    assert ServerSettings(web_concurrency=4, torch_threads=3).threads_per_worker == 3


def test_a_bare_wsgi_app_has_nothing_to_warm_up():
    """bench/baselines' pass-through proxy runs under the gateway's configuration."""

    def bare(environ, start_response):  # pragma: no cover - never called
        return []

    assert readiness_of(bare) is None
    gunicorn_config(ServerSettings())["post_worker_init"](SimpleNamespace(wsgi=bare))


@pytest.mark.parametrize("hook", ["pre_fork", "post_worker_init"])
def test_the_hooks_have_gunicorns_arity(hook):
    from gunicorn.config import Config

    config = Config()
    config.set(hook, gunicorn_config(ServerSettings())[hook])  # validates the callable
