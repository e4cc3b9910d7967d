"""gunicorn settings shared by every Flask service, from the environment.

Each service's gunicorn.conf.py is a few lines on top of this. No torch here:
the gateway uses it too.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    torch_threads: int | None = Field(None, ge=1, description="intra-op threads per worker")
    gunicorn_timeout: int = Field(120, ge=1)
    # Cloud Run allows 10 s between SIGTERM and SIGKILL.
    graceful_timeout: int = Field(8, ge=1)

    @property
    def workers(self) -> int:
        return self.web_concurrency or available_cores()

    @property
    def threads_per_worker(self) -> int:
        """The torch thread budget: workers x threads never exceeds the cores."""
        return self.torch_threads or max(1, available_cores() // self.workers)


class SharedCoresServerSettings(ServerSettings):
    """For a service whose worker shares the cores itself (classifier.batching).

    One worker per server by default: its requests are batched together and a
    lone request gets every core. More workers split the cores between them.
    The request threads mostly wait for the inference engines, so there are many.
    """

    web_concurrency: int | None = Field(1, ge=1, description="gunicorn worker processes")
    gunicorn_threads: int = Field(16, ge=1, description="request threads per worker")


def _worker_exit(server, worker) -> None:
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


def _on_exit(server) -> None:
    """The master's last collection skips every object (they go with the process)."""
    gc.freeze()


def gunicorn_options(settings: ServerSettings, *, preload: bool) -> dict:
    """The gunicorn configuration variables (set them as module globals in gunicorn.conf.py)."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "threads": settings.gunicorn_threads,
        "worker_class": "gthread",
        "preload_app": preload,
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
