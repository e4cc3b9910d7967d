"""Start each contender as its own process group on loopback, measure it, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from bench.assets import MULTIPART_CONTENT_TYPE, multipart_body

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE = REPO_ROOT / "tools" / "serve.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    # SIGTERM lets a server finish what it is doing; SIGKILL for one whose
    # graceful shutdown costs the machine more than it saves (LitServe's).
    stop_signal: int = signal.SIGTERM

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pss_bytes(self) -> int:
        """Proportional set size of the whole server: every process of its group."""
        root = psutil.Process(self.process.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker may be restarting
                total += process.memory_full_info().pss
        return total

    def stop(self) -> None:
        """Signal the whole process group, then wait until every member is gone.

        Waiting for the leader alone is not enough: LitServe's inference workers
        outlive it for a while, polling at full speed, and would slow the next
        contender down.
        """
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, self.stop_signal)
        deadline = time.monotonic() + 5
        while _group_alive(group) and time.monotonic() < deadline:
            self.process.poll()  # reap the leader so it does not linger as a zombie
            time.sleep(0.1)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait(10)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def spawn(
    name: str, command: list[str], env: dict, log_dir: Path, port: int, tree: Path = REPO_ROOT
) -> Server:
    """Start `command` from the checkout `tree` (this one unless told: a baseline's
    `git worktree` runs its own code with this environment's packages)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, "PYTHONPATH": str(tree), "HOST": "127.0.0.1", **env}
    full_env["PORT"] = str(port)
    full_env["PATH"] = f"{Path(sys.executable).parent}:{full_env.get('PATH', '')}"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, cwd=tree, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Server(name, port, process, log_path)


def wait_ready(server: Server, probe, timeout: float = 180, interval: float = 0.02) -> float:
    """Seconds from now until `probe(url)` is true; raises if the server dies or never is."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} exited early:\n{tail}")
        try:
            if probe(server.url):
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(interval)
    server.stop()
    raise TimeoutError(f"{server.name} not ready after {timeout}s; see {server.log_path}")


def ready_endpoint(url: str) -> bool:
    return requests.get(url + "/ready", timeout=2).status_code == 200


def predicts(photo: bytes):
    """A probe for servers without /ready: one real prediction succeeds."""
    body = multipart_body("probe.jpg", photo)

    def probe(url: str) -> bool:
        response = requests.post(
            url + "/predict", data=body, headers={"Content-Type": MULTIPART_CONTENT_TYPE},
            timeout=60,
        )  # fmt: skip
        return response.status_code == 200

    return probe


def start_backend_v1(
    model: str, weights: Path, log_dir: Path, tree: Path = REPO_ROOT, **env: str
) -> Server:
    """backend_v1 exactly as it ships (`make serve`), apart from the model and weights;
    from another checkout `tree` (a baseline commit) when given."""
    return start_backend("backend_v1", model, weights, log_dir, tree, **env)


def start_backend_v2(model: str, weights: Path, log_dir: Path, **env: str) -> Server:
    """backend_v2 as it ships, its default model `model`: callers who choose none use it.
    Its sessions (none are made: no caller chooses) go to a folder of this run's."""
    sessions = log_dir / "backend_v2-sessions"
    env = {"SESSION_DIR": str(sessions), "SECRET_KEY": "bench-only", **env}
    return start_backend("backend_v2", model, weights, log_dir, REPO_ROOT, **env)


def start_backend(
    component: str, model: str, weights: Path, log_dir: Path, tree: Path, **env: str
) -> Server:
    port = free_port()
    server = spawn(
        f"{component}-{model}-{port}",
        [str(tree / "tools" / "serve.sh"), component],
        {"MODEL_NAME": model, "MODEL_WEIGHTS": str(weights), **env},
        log_dir,
        port,
        tree,
    )
    wait_ready(server, ready_endpoint)
    return server


def start_original_kit(model: str, weights: Path, log_dir: Path, photo: bytes) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "2", "--timeout", "600",
        "--bind", f"127.0.0.1:{port}", "bench.baselines.original_kit:app",
    ]  # fmt: skip
    env = {"MODEL_NAME": model, "MODEL_WEIGHTS": str(weights)}
    server = spawn(f"original_kit-{model}-{port}", command, env, log_dir, port)
    wait_ready(server, predicts(photo), interval=0.2)
    # Each worker loads its own model: warm both up before measuring.
    for _ in range(4):
        predicts(photo)(server.url)
    return server


def start_litserve(
    model: str, weights: Path, log_dir: Path, photo: bytes, *, max_batch: int
) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "bench.litserve_app", "--model", model, "--weights", str(weights),
        "--port", str(port), "--max-batch", str(max_batch),
    ]  # fmt: skip
    server = spawn(f"litserve-b{max_batch}-{model}-{port}", command, {}, log_dir, port)
    # After SIGTERM, LitServe's workers kept the machine so busy for 5-30 s that
    # the harness's own 0.1 s sleeps took up to 12 s; after SIGKILL they are gone in 1.5 s.
    server.stop_signal = signal.SIGKILL
    wait_ready(server, predicts(photo), interval=0.2)
    for _ in range(4):
        predicts(photo)(server.url)
    return server


def start_gateway(model: str, upstream: Server, log_dir: Path) -> Server:
    port = free_port()
    server = spawn(
        f"v3_gateway-{port}",
        [str(SERVE), "v3_gateway"],
        {"MODEL_SERVICES": f"{model}={upstream.url}"},
        log_dir,
        port,
    )
    wait_ready(server, ready_endpoint)
    return server


def start_passthrough_proxy(upstream: Server, log_dir: Path, photo: bytes) -> Server:
    """bench/baselines/passthrough_proxy.py under the gateway's own gunicorn configuration."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--config", "v3_gateway/gunicorn.conf.py",
        "bench.baselines.passthrough_proxy:create_app()",
    ]  # fmt: skip
    server = spawn(f"passthrough-{port}", command, {"UPSTREAM_URL": upstream.url}, log_dir, port)
    wait_ready(server, predicts(photo), interval=0.1)
    return server


def cold_starts(model: str, weights: Path, log_dir: Path, runs: int) -> list[float]:
    """Seconds from process start to /ready answering 200, `runs` times."""
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.monotonic()
        server = spawn(
            f"coldstart-{model}-{port}",
            [str(SERVE), "backend_v1"],
            {"MODEL_NAME": model, "MODEL_WEIGHTS": str(weights)},
            log_dir,
            port,
        )
        try:
            wait_ready(server, ready_endpoint, interval=0.01)
            times.append(time.monotonic() - started)
        finally:
            server.stop()
    return times


def import_times(runs: int) -> list[float]:
    """Seconds for a bare `import torch, torchvision` in a fresh interpreter."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
        times.append(time.monotonic() - started)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)
