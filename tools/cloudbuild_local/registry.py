"""The stand-in for Artifact Registry: a real registry server on 127.0.0.1, its data kept on disk.

Debian's docker-registry (the CNCF distribution registry, the same server as
Docker's registry:2 image) runs as a process; where only a Docker engine is
at hand, the registry:2 image runs instead. Its data folder outlives the run:
like Artifact Registry, it is the one thing a second build finds again.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.images.engine import EngineError, docker_engine_answers

SERVER_COMMANDS = ("docker-registry", "registry")  # Debian's name, then upstream's
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the registry's child, before exec: the kernel ends it when its parent ends.

    A run killed outright (a timeout's SIGKILL, a closed terminal) never gets to
    stop its registry, which would then hold its port and folder for good.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Registry:
    def __init__(self, data: Path) -> None:
        self.data = data.resolve()
        self.host = ""
        self._process: subprocess.Popen | None = None
        self._container: str | None = None

    @classmethod
    def attach(cls, host: str) -> Registry:
        """The running registry of a run, from its docker command (never started here)."""
        registry = cls(Path("."))
        registry.host = host
        return registry

    def start(self) -> str:
        self.data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.host = f"127.0.0.1:{port}"
        server = next(filter(None, map(shutil.which, SERVER_COMMANDS)), None)
        if server:
            config = self.data.parent / "registry.yml"
            config.write_text(
                json.dumps(  # YAML is a superset of JSON
                    {
                        "version": 0.1,
                        "log": {"level": "warn", "accesslog": {"disabled": True}},
                        "storage": {
                            "filesystem": {"rootdirectory": str(self.data)},
                            "delete": {"enabled": True},
                        },
                        "http": {"addr": self.host},
                    }
                )
            )
            log = (self.data.parent / "registry.log").open("ab")
            self._process = subprocess.Popen(
                [server, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # started before any thread: safe
            )
        elif docker_engine_answers():
            started = subprocess.run(
                ["docker", "run", "--detach", "--rm", "--publish", f"{self.host}:5000",
                 "--volume", f"{self.data}:/var/lib/registry", "registry:2"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if started.returncode != 0:
                raise EngineError(f"the registry:2 container did not start: {started.stderr}")
            self._container = started.stdout.strip()
        else:
            raise EngineError(
                "No registry server: install Debian's docker-registry "
                "(`sudo apt-get install docker-registry`), or start Docker (registry:2 image)."
            )
        self._wait_until_answering()
        return self.host

    def _wait_until_answering(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if self._request("")[0] == 200:
                    return
            time.sleep(0.2)
        self.stop()
        log = self.data.parent / "registry.log"
        raise EngineError(f"the registry on {self.host} did not answer (its log: {log})")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(5)
        if self._container:
            subprocess.run(
                ["docker", "rm", "--force", self._container], capture_output=True, check=False
            )
            self._container = None

    def _request(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://{self.host}/v2/{path}", method=method, headers={"Accept": MANIFEST_TYPES}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our loopback registry
                return answer.status, answer.read()
        except urllib.error.HTTPError as failed:
            return failed.code, b""

    def has(self, repository: str, tag: str) -> bool:
        return self._request(f"{repository}/manifests/{tag}", "HEAD")[0] == 200

    def tags(self, repository: str) -> list[str]:
        status, body = self._request(f"{repository}/tags/list")
        if status != 200:
            return []
        return json.loads(body).get("tags") or []
