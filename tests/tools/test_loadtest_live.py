"""`make loadtest` for real: locust loads a service on loopback and the report judges it."""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest
from werkzeug import Response

from tests.support.servers import REPO_ROOT, free_port
from tests.tools.loadtest_runs import is_loopback, run_loadtest

pytestmark = pytest.mark.slow

PREDICTION = {"model": "m", "category": "cat", "predictions": [{"label": "cat"}]}


@pytest.mark.timeout(240)
def test_make_loadtest_meets_generous_objectives_on_a_local_backend(lite0_backend, tmp_path):
    assert is_loopback(lite0_backend.url)
    out = tmp_path / "report"
    result = subprocess.run(
        [
            "make", "--no-print-directory", "loadtest", f"URL={lite0_backend.url}", "USERS=2",
            "SECONDS=4", "P95_MS=60000", "SUCCESS=99.5", f"OUT={out}",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=200, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = (out / "loadtest.md").read_text()
    assert report == result.stdout.split("report: ")[0].split("...\n", 1)[1].rstrip("\n") + "\n"
    assert "**Every objective met** (2 of 2 met)." in report
    assert "| success rate | >= 99.5 % | 100.00 % | yes |" in report
    assert "2 users for " in report
    samples = json.loads((out / "samples.json").read_text())["samples"]
    assert samples, "no request was made"
    assert all(ok for _, _, ok, _ in samples)
    assert (out / "loadtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def flaky_predict(every: int):
    """A /predict that answers the API's 503 to every `every`-th request after the first."""
    count = itertools.count()

    def handler(request):
        if next(count) % every == every - 1:
            error = {"error": {"code": "model_busy", "message": "busy"}}
            return Response(json.dumps(error), 503, content_type="application/json")
        return Response(json.dumps(PREDICTION), 200, content_type="application/json")

    return handler


@pytest.mark.timeout(120)
def test_errors_are_counted_by_kind_and_the_request_budget_stops_the_test(httpserver, tmp_path):
    httpserver.expect_request("/predict", method="POST").respond_with_handler(flaky_predict(4))
    result = run_loadtest(
        httpserver.url_for("/"), "--users", "2", "--seconds", "60", "--max-requests", "40",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    samples = json.loads((tmp_path / "samples.json").read_text())["samples"]
    assert len(samples) == 40  # the budget, not the 60 s, ended it
    assert "the request budget was spent" in result.stdout
    failed = sum(1 for *_, ok, _ in samples if not ok)
    assert failed == 10  # requests 2..41 of the server: every 4th is a 503
    assert "| HTTP 503 model_busy | 10 |" in result.stdout
    assert "| success rate | >= 99.5 % | 75.00 % | **no** |" in result.stdout


@pytest.mark.timeout(60)
def test_a_private_service_stops_the_test_before_it_starts_with_the_fix(httpserver, tmp_path):
    httpserver.expect_request("/predict").respond_with_data("Forbidden", status=403)
    result = run_loadtest(httpserver.url_for("/"), "--seconds", "30", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "the service is private" in result.stderr
    assert "gcloud auth print-identity-token" in result.stderr
    assert not (tmp_path / "samples.json").exists()


@pytest.mark.timeout(60)
def test_the_token_given_with_header_is_sent_on_every_request(httpserver, tmp_path):
    seen = []

    def handler(request):
        seen.append(request.headers.get("Authorization"))
        return Response(json.dumps(PREDICTION), 200, content_type="application/json")

    httpserver.expect_request("/predict", method="POST").respond_with_handler(handler)
    result = run_loadtest(
        httpserver.url_for("/"), "--users", "1", "--max-requests", "5",
        "--header", "Authorization: Bearer token-123", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen == ["Bearer token-123"] * 6  # the preflight and the five counted


@pytest.mark.timeout(60)
def test_a_url_that_is_not_the_api_is_named_as_such(httpserver, tmp_path):
    httpserver.expect_request("/predict").respond_with_data("Not Found", status=404)
    result = run_loadtest(httpserver.url_for("/"), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "answered HTTP 404, not a prediction" in result.stderr
    assert "a frontend does not answer /predict" in result.stderr


@pytest.mark.timeout(60)
def test_nothing_listening_is_said_plainly(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = run_loadtest(url, "--out", str(tmp_path))
    assert result.returncode == 2
    assert f"could not reach {url}" in result.stderr


def test_make_loadtest_without_a_url_prints_its_usage():
    result = subprocess.run(
        ["make", "--no-print-directory", "loadtest"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "URL": ""},
    )  # fmt: skip
    assert result.returncode != 0
    assert "usage: make loadtest URL=<service base URL>" in result.stderr
