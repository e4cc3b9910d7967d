"""Start WSGI apps under gunicorn the way tools/serve.sh does, but for any app path.

The counterexample app lives in tests/, which serve.sh does not serve, so it is
started here with backend_v2's own gunicorn.conf.py: the same workers, threads
and preloading as the real service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.servers import REPO_ROOT, RunningService, free_port, wait_until_ok

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def start_gunicorn_app(
    app: str, config: str, log_dir: Path, *, env: dict, timeout: float = 120
) -> RunningService:
    """Run `gunicorn --config <config> <app>` on a free loopback port; wait for /ready."""
    port = free_port()
    full_env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "PYTHONPATH": str(REPO_ROOT),
        **env,
    }
    log_path = log_dir / f"{app.split(':')[0]}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [GUNICORN, "--config", config, app],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = RunningService(app, port, process, log_path, full_env)
    try:
        wait_until_ok(service, "/ready", timeout)
    except BaseException:
        service.stop()
        raise
    return service


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
