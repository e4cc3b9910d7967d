"""gunicorn's settings and hooks, shared by every Flask service, from the environment.

Each service's gunicorn.conf.py is one call on top of this: the server
settings (one object per service, read once), and the hooks that make every
worker ready through the service's Readiness (webservice/api.py), never
through the app's internals. No torch here: the gateway uses it too.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from webservice.api import readiness_of
from webservice.deadlines import GRACEFUL_TIMEOUT_SECONDS, shutdown_budget_problem
from webservice.stopping import StoppingThreadWorker

SHM = "/dev/shm"  # noqa: S108 - an in-memory tmpfs, used only for gunicorn heartbeats


def available_cores() -> int:
    """CPUs this process may run on (Cloud Run's vCPU limit shows up here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    host: str = "0.0.0.0"  # noqa: S104 - Cloud Run routes to the container's interface
    port: int = Field(8080, gt=0, lt=65536)  # Cloud Run sets PORT
    web_concurrency: int | None = Field(None, ge=1, description="gunicorn worker processes")
    gunicorn_threads: int = Field(2, ge=1, description="request threads per worker")
    torch_threads: int | None = Field(None, ge=1, description="cores each worker may compute on")
    gunicorn_timeout: int = Field(120, ge=1)
    # Requests in flight at SIGTERM get this long; Cloud Run kills 10 s after SIGTERM
    # (webservice/deadlines.py fits a request's worst case into it).
    graceful_timeout: int = Field(GRACEFUL_TIMEOUT_SECONDS, ge=1)

    @property
    def workers(self) -> int:
        return self.web_concurrency or available_cores()

    @property
    def threads_per_worker(self) -> int:
        """The core budget of one worker, decided here only: workers x this <= the cores."""
        return self.torch_threads or max(1, available_cores() // self.workers)

    @property
    def longest_request(self) -> float | None:
        """The longest a request to this service can take, where the service knows it."""
        return None


def gunicorn_config(settings: ServerSettings) -> dict[str, Any]:
    """Every gunicorn configuration variable: set them as gunicorn.conf.py's globals.

    The app is preloaded: made once in the master (for a backend, the weights
    are loaded once and shared by the forked workers), then made ready in each
    worker after the fork, before it takes a request.
    """

    def on_starting(server: Any) -> None:
        problem = shutdown_budget_problem(settings.longest_request, settings.graceful_timeout)
        if problem:
            server.log.warning("stop budget: %s", problem)

    def pre_fork(server: Any, worker: Any) -> None:
        # Keep the preloaded objects out of the collector's reach, so that it does not
        # write to (and so copy) the pages the workers share with the master.
        gc.freeze()

    def post_worker_init(worker: Any) -> None:
        # In each worker, never in the master: threads (a backend's inference
        # engines) do not survive a fork.
        readiness = readiness_of(worker.wsgi)
        if readiness is not None:
            readiness.warm_up(cores=settings.threads_per_worker)

    return {
        **gunicorn_options(settings),
        "preload_app": True,
        "on_starting": on_starting,
        "pre_fork": pre_fork,
        "post_worker_init": post_worker_init,
    }


def _worker_exit(server: Any, worker: Any) -> None:
    """Leave a worker without Python's teardown, with the status it was exiting with.

    Tearing down torch (the last garbage collection, then every module and C++
    object) takes seconds, on a busy machine more than Cloud Run's 10 s between
    SIGTERM and SIGKILL. gunicorn calls this hook while the worker's SystemExit
    is on its way out; by now the requests are answered and the logs flushed
    here. Anything else (no SystemExit) leaves the usual way.
    """
    exiting = sys.exc_info()[1]
    if isinstance(exiting, SystemExit) and isinstance(exiting.code, int | None):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit((exiting.code or 0) & 0xFF)


def _on_exit(server: Any) -> None:
    """The master's last collection skips every object (they go with the process)."""
    gc.freeze()


def gunicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The server's plain settings: where it listens, its workers and threads, its logs."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.gunicorn_threads,
        # gthread, stopping cleanly: webservice/stopping.py.
        "worker_class": StoppingThreadWorker,
        "timeout": settings.gunicorn_timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        # The heartbeat file lives in memory: container disks can be slow.
        # Several servers run side by side (v3, tests) and would share one default
        # control-socket path; nothing here uses gunicornc.
        "control_socket_disable": True,
        "worker_tmp_dir": SHM if os.path.isdir(SHM) else None,
        "worker_exit": _worker_exit,
        "on_exit": _on_exit,
    }
