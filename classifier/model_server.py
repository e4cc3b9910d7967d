"""gunicorn's settings for a model-serving backend (backend_v1, backend_v2, v3's model services).

Import it from gunicorn.conf.py, which gunicorn runs before it imports the app
(and torch): the master loads the weights but never runs a parallel op, so
OpenMP must not make a thread pool there before the fork.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pydantic import Field

from webservice.deadlines import FetchDeadlineSettings
from webservice.server import ServerSettings


class ModelServerSettings(ServerSettings, FetchDeadlineSettings):
    """One worker per server by default: the served model batches its requests and
    gives a lone one every core (classifier/batching.py), which beat several workers
    splitting the cores. More workers (WEB_CONCURRENCY) split the cores between them.
    The request threads mostly wait for the inference engines, so there are many."""

    web_concurrency: int | None = Field(1, ge=1, description="gunicorn worker processes")
    gunicorn_threads: int = Field(16, ge=1, description="request threads per worker")

    @property
    def longest_request(self) -> float:
        """A URL predict: FETCH_TOTAL_TIMEOUT's download, then the inference."""
        return self.predict_worst_case
