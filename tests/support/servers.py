"""Start real project services on loopback for tests, the way `make serve` does.

Each service runs `tools/serve.sh <component>` in its own process group on a
free 127.0.0.1 port; `stop()` ends the whole group, workers included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE = REPO_ROOT / "tools" / "serve.sh"
STREAMLIT_HEALTH = "/_stcore/health"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningService:
    component: str
    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


class PortTaken(RuntimeError):
    """The free port we picked was taken by another process before the service bound it."""


def start_service(
    component: str,
    log_dir: Path,
    *,
    env: dict | None = None,
    port: int | None = None,
    ready_path: str | None = None,
    timeout: float = 90,
) -> RunningService:
    """Start `component`; wait until `ready_path` answers 200 (default: /ready or Streamlit's).

    A port picked here can be taken by a parallel test before the service binds
    it; then we pick another (an explicit `port` is used as given).
    """
    for _attempt in range(3):
        try:
            return _start_once(component, log_dir, env, port or free_port(), ready_path, timeout)
        except PortTaken:
            if port:
                raise
    raise RuntimeError(f"{component}: three free ports in a row were taken")


def _start_once(component, log_dir, env, port, ready_path, timeout) -> RunningService:
    service = _spawn(component, [str(SERVE), component], log_dir, env or {}, port)
    path = ready_path or (STREAMLIT_HEALTH if component.startswith("frontend") else "/ready")
    try:
        wait_until_ok(service, path, timeout)
    except RuntimeError:
        service.stop()
        if any(
            sign in service.log()
            for sign in ("Address already in use", "Connection in use", "is already in use")
        ):
            raise PortTaken(port) from None
        raise
    except BaseException:
        service.stop()
        raise
    return service


def wait_until_ok(service: RunningService, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.component} exited early:\n{service.log()[-3000:]}")
        try:
            if requests.get(service.url + path, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{service.component} not ready in {timeout}s:\n{service.log()[-3000:]}")


def start_gunicorn_app(
    app: str, config: str, log_dir: Path, *, env: dict, timeout: float = 120
) -> RunningService:
    """Run `gunicorn --config <config> <app>` on a free loopback port, for an app that
    serve.sh does not serve (one in tests/); wait for /ready."""
    command = [GUNICORN, "--config", config, app]
    service = _spawn(app, command, log_dir, {"PYTHONPATH": str(REPO_ROOT), **env}, free_port())
    try:
        wait_until_ok(service, "/ready", timeout)
    except BaseException:
        service.stop()
        raise
    return service


def _spawn(name: str, command: list[str], log_dir: Path, env: dict, port: int) -> RunningService:
    """Start `command` in its own process group on 127.0.0.1:`port`, its output in a log."""
    full_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", **env}
    log_path = log_dir / f"{name.split(':')[0]}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningService(name, port, process, log_path, full_env)
