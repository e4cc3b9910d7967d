"""The time budget the services share, so that a request's worst case fits a shutdown.

Cloud Run sends SIGTERM, then SIGKILL 10 s later. gunicorn gives the requests
in flight GRACEFUL_TIMEOUT to finish (webservice/server.py, webservice/stopping.py),
then the worker leaves; the rest of the 10 s is the processes' own exit.

The slowest request a model service takes is an image URL: its download, held
to FETCH_TOTAL_TIMEOUT whatever the image host does (classifier/fetch.py), then
its inference, queueing behind other requests included. The gateway should
wait for a model service's predict no longer than that (predict_worst_case),
so that a gateway request in flight fits the same window. Each value stays
configurable; the defaults are chosen together here and a test holds them to
the window.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Cloud Run's time between SIGTERM and SIGKILL.
STOP_WINDOW_SECONDS = 10
# gunicorn's wait for the requests in flight, leaving the process time to exit.
GRACEFUL_TIMEOUT_SECONDS = 8
# What still runs this long before GRACEFUL_TIMEOUT ends is cut (webservice/stopping.py),
# so the worker logs it and closes its connections before the master's SIGKILL.
CUT_MARGIN_SECONDS = 0.5
# A URL predict's image download, name lookup and redirects included.
FETCH_TOTAL_TIMEOUT_SECONDS = 5.0
# A margin for a model service's inference on a loaded instance, waiting for its
# turn included (the performance notes have the measured inference times).
INFERENCE_ALLOWANCE_SECONDS = 2.0


class FetchDeadlineSettings(BaseSettings):
    """FETCH_TOTAL_TIMEOUT: a model service's whole image download, read where it is needed.

    The model services enforce it; the gateway (torch-free) reads the same
    variable to wait for a model service's predict no longer than its worst case.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    fetch_total_timeout: float = Field(
        FETCH_TOTAL_TIMEOUT_SECONDS, gt=0, description="seconds for a whole image URL download"
    )

    @property
    def predict_worst_case(self) -> float:
        """The longest a model service's /predict takes: the download, then the inference."""
        return self.fetch_total_timeout + INFERENCE_ALLOWANCE_SECONDS


def shutdown_budget_problem(longest_request: float | None, graceful_timeout: float) -> str | None:
    """What is wrong with a service's stop budget, said for its log at start, or None."""
    if graceful_timeout >= STOP_WINDOW_SECONDS:
        return (
            f"GRACEFUL_TIMEOUT={graceful_timeout:g} s is not below Cloud Run's "
            f"{STOP_WINDOW_SECONDS} s between SIGTERM and SIGKILL: a stopping worker may be "
            "killed before it has answered or logged its requests."
        )
    if longest_request is not None and longest_request > graceful_timeout - CUT_MARGIN_SECONDS:
        return (
            f"a request may take {longest_request:g} s (FETCH_TOTAL_TIMEOUT plus "
            f"{INFERENCE_ALLOWANCE_SECONDS:g} s of inference), more than GRACEFUL_TIMEOUT="
            f"{graceful_timeout:g} s leaves it after SIGTERM: such requests in flight at a "
            "stop will be cut. Lower FETCH_TOTAL_TIMEOUT or raise GRACEFUL_TIMEOUT (below "
            f"{STOP_WINDOW_SECONDS})."
        )
    return None
