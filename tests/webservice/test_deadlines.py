"""The shared time budget: a request's worst case fits Cloud Run's stop window."""

from webservice import deadlines
from webservice.deadlines import FetchDeadlineSettings
from webservice.server import ServerSettings, gunicorn_options
from webservice.stopping import CUT_MARGIN_SECONDS, StoppingThreadWorker


def test_the_default_budget_fits_cloud_runs_stop_window():
    worst_predict = FetchDeadlineSettings(_env_file=None).predict_worst_case
    assert worst_predict == (
        deadlines.FETCH_TOTAL_TIMEOUT_SECONDS + deadlines.INFERENCE_ALLOWANCE_SECONDS
    )
    # A request in flight at SIGTERM finishes before its cut, and the worker before SIGKILL.
    assert worst_predict <= deadlines.GRACEFUL_TIMEOUT_SECONDS - CUT_MARGIN_SECONDS
    assert deadlines.GRACEFUL_TIMEOUT_SECONDS < deadlines.STOP_WINDOW_SECONDS


def test_every_service_stops_with_the_budget_and_the_stopping_worker(monkeypatch):
    monkeypatch.delenv("GRACEFUL_TIMEOUT", raising=False)
    options = gunicorn_options(ServerSettings())
    assert options["graceful_timeout"] == deadlines.GRACEFUL_TIMEOUT_SECONDS
    assert options["worker_class"] is StoppingThreadWorker


def test_the_gateway_side_reads_the_model_services_fetch_deadline(monkeypatch):
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "3.5")
    settings = FetchDeadlineSettings()
    assert settings.fetch_total_timeout == 3.5
    assert settings.predict_worst_case == 3.5 + deadlines.INFERENCE_ALLOWANCE_SECONDS
