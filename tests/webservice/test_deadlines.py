"""The shared time budget: a request's worst case fits Cloud Run's stop window."""

import pytest

from webservice import deadlines
from webservice.deadlines import FetchDeadlineSettings, shutdown_budget_problem
from webservice.server import ServerSettings, gunicorn_config, gunicorn_options
from webservice.stopping import StoppingThreadWorker


def test_the_default_budget_fits_cloud_runs_stop_window():
    worst_predict = FetchDeadlineSettings().predict_worst_case
    assert worst_predict == (
        deadlines.FETCH_TOTAL_TIMEOUT_SECONDS + deadlines.INFERENCE_ALLOWANCE_SECONDS
    )
    # A request in flight at SIGTERM finishes before its cut, and the worker before SIGKILL.
    assert worst_predict <= deadlines.GRACEFUL_TIMEOUT_SECONDS - deadlines.CUT_MARGIN_SECONDS
    assert deadlines.GRACEFUL_TIMEOUT_SECONDS < deadlines.STOP_WINDOW_SECONDS
    assert shutdown_budget_problem(worst_predict, deadlines.GRACEFUL_TIMEOUT_SECONDS) is None


@pytest.fixture(autouse=True)
def _default_environment(monkeypatch):
    for name in ("GRACEFUL_TIMEOUT", "FETCH_TOTAL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def test_every_service_stops_with_the_budget_and_the_stopping_worker():
    options = gunicorn_options(ServerSettings())
    assert options["graceful_timeout"] == deadlines.GRACEFUL_TIMEOUT_SECONDS
    assert options["worker_class"] is StoppingThreadWorker


def test_the_gateway_side_reads_the_model_services_fetch_deadline(monkeypatch):
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "3.5")
    settings = FetchDeadlineSettings()
    assert settings.fetch_total_timeout == 3.5
    assert settings.predict_worst_case == 3.5 + deadlines.INFERENCE_ALLOWANCE_SECONDS


def test_a_model_server_knows_its_longest_request(monkeypatch):
    # Importing it sets OMP_NUM_THREADS when unset; keep this process's as it was.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from classifier.model_server import ModelServerSettings

    assert ModelServerSettings().longest_request == FetchDeadlineSettings().predict_worst_case
    assert ServerSettings().longest_request is None  # the gateway, frontends: not known here
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "20")
    assert ModelServerSettings().longest_request == 20 + deadlines.INFERENCE_ALLOWANCE_SECONDS


@pytest.mark.parametrize(
    ("longest", "graceful", "said"),
    [
        (22.0, 8, "will be cut"),
        (7.0, 7, "will be cut"),
        (None, 10, "not below Cloud Run's 10 s"),
        (7.0, 12, "not below Cloud Run's 10 s"),
    ],
)
def test_a_budget_that_does_not_fit_is_said_at_start(longest, graceful, said):
    problem = shutdown_budget_problem(longest, graceful)
    assert problem is not None
    assert said in problem
    assert f"GRACEFUL_TIMEOUT={graceful}" in problem


def test_gunicorn_warns_at_start_when_the_budget_does_not_fit(monkeypatch):
    monkeypatch.setenv("GRACEFUL_TIMEOUT", "12")
    warnings = []

    class Server:
        class log:
            warning = staticmethod(lambda *args: warnings.append(args[0] % args[1:]))

    gunicorn_config(ServerSettings())["on_starting"](Server())
    assert len(warnings) == 1
    assert "GRACEFUL_TIMEOUT=12 s is not below" in warnings[0]
