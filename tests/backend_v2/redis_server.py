"""A throwaway Redis server from Debian's redis-server package, on loopback only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.servers import free_port

REDIS_SERVER = "redis-server"


@dataclass
class RedisServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def kill(self) -> None:
        """Gone at once, as a crashed or replaced store: connections refused."""
        self.thaw()
        self.process.kill()
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted (by the kernel), nothing answers."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def restarted(self) -> RedisServer:
        """A new, empty redis-server on the same port (this one killed first)."""
        self.kill()
        return start_redis(self.log_path.parent, port=self.port)

    def stop(self) -> None:
        self.thaw()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(work_dir: Path, timeout: float = 20, port: int | None = None) -> RedisServer:
    """Start redis-server on 127.0.0.1 (a free port unless given) with no persistence;
    wait until it answers."""
    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed; the session store tests need Debian's package: "
            "`apt-get install redis-server` (the tests start and stop it themselves)."
        )
    port = port or free_port()
    log_path = work_dir / f"redis-{port}.log"
    options = {
        "--bind": "127.0.0.1",
        "--port": str(port),
        "--save": "",  # no snapshots and no append-only file: nothing on disk
        "--appendonly": "no",
        "--dir": str(work_dir),
        "--logfile": str(log_path),
    }
    process = subprocess.Popen(
        [binary, *(part for pair in options.items() for part in pair)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    server = RedisServer(process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited early:\n{log_path.read_text()[-2000:]}")
        try:
            if server.client().ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"redis-server did not answer in {timeout}s")
