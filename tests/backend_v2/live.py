"""Start backend_v2 and its counterexample side by side.

The counterexample app lives in tests/, which serve.sh does not serve, so it is
started with start_gunicorn_app and backend_v2's own gunicorn.conf.py: the same
workers, threads and preloading as the real service.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.servers import RunningService, start_gunicorn_app

__all__ = ["start_gunicorn_app", "start_together"]


def start_together(starters: list) -> list[RunningService]:
    """Start several services at once (their imports overlap); stop them all if one fails."""
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = [pool.submit(starter) for starter in starters]
    started, failure = [], None
    for future in futures:
        try:
            started.append(future.result())
        except Exception as exc:
            failure = failure or exc
    if failure:
        for service in started:
            service.stop()
        raise failure
    return started
