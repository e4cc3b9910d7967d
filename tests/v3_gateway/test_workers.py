"""Several gateway workers share one session secret: a choice made through one
worker is honoured by the others (each new connection may land on either)."""

from __future__ import annotations

import pytest
import requests

from tests.v3_gateway.conftest import start_gateway

pytestmark = pytest.mark.slow


def test_session_choice_holds_across_workers(httpserver, service_log_dir, tmp_path):
    # One stand-in answers the health questions for both models: that is all
    # the session endpoints need.
    httpserver.expect_request("/ready").respond_with_json({"status": "ready"})
    httpserver.expect_request("/models").respond_with_json(
        {"models": [{"name": n, "available": True} for n in ("efficientnet_lite0", "resnet18")]}
    )
    model_url = httpserver.url_for("").rstrip("/")
    gateway = start_gateway(
        service_log_dir,
        tmp_path / "sessions",
        {"efficientnet_lite0": model_url, "resnet18": model_url},
        web_concurrency=2,
        gunicorn_threads=2,
    )
    try:
        chosen = requests.put(gateway.url + "/model/resnet18", timeout=10)
        assert chosen.status_code == 200, chosen.text
        # A fresh connection per call, so the calls spread over both workers.
        seen = [
            requests.get(gateway.url + "/model", cookies=chosen.cookies, timeout=10).json()["model"]
            for _ in range(12)
        ]
    finally:
        gateway.stop()
    assert seen == ["resnet18"] * 12
