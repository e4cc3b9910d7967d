"""The serving settings' URL fetch limits: slots below the request threads."""

import pytest
from pydantic import ValidationError

from classifier.settings import ServingSettings
from webservice.deadlines import FETCH_TOTAL_TIMEOUT_SECONDS


@pytest.fixture(autouse=True)
def _no_server_environment(monkeypatch):
    for name in ("GUNICORN_THREADS", "URL_FETCH_SLOTS", "FETCH_TOTAL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def test_url_fetches_take_half_the_request_threads_by_default():
    settings = ServingSettings()
    assert settings.gunicorn_threads == 16
    assert settings.fetch_limits.max_concurrent == 8
    assert settings.fetch_limits.total_timeout == FETCH_TOTAL_TIMEOUT_SECONDS
    assert ServingSettings(gunicorn_threads=4).url_fetch_slot_count == 2
    assert ServingSettings(gunicorn_threads=2).url_fetch_slot_count == 1


def test_the_threads_default_is_the_model_servers(monkeypatch):
    # Importing it sets OMP_NUM_THREADS when unset; keep this process's as it was.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from classifier.model_server import ModelServerSettings

    assert ServingSettings().gunicorn_threads == ModelServerSettings().gunicorn_threads


@pytest.mark.parametrize(("threads", "slots"), [("4", "4"), ("4", "9"), ("1", None)])
def test_url_fetch_slots_must_leave_a_request_thread_free(monkeypatch, threads, slots):
    monkeypatch.setenv("GUNICORN_THREADS", threads)
    if slots:
        monkeypatch.setenv("URL_FETCH_SLOTS", slots)
    with pytest.raises(ValidationError, match="leaves no request thread") as caught:
        ServingSettings()
    assert f"GUNICORN_THREADS={threads}" in str(caught.value)
