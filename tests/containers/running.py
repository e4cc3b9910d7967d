"""Run the built images as Cloud Run would, and talk to them from their own loopback.

Each container gets a PORT other than 8080, a read-only root with a tmpfs
/tmp, and no network (`--network=none`, nothing a test starts listens beyond
loopback); a second container can join the first one's network, as v3's
gateway joins its model service. Requests run inside the container (probe.py).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tools.images.engine import DaemonlessEngine, Engine, EngineError

PROBE = (Path(__file__).parent / "probe.py").read_text()
START_TIMEOUT = 240.0
EXEC_ATTEMPTS = 3
# Cloud Run sends SIGTERM and waits this long before SIGKILL.
CLOUD_RUN_GRACE_SECONDS = 10.0


@dataclass
class Answer:
    status: int
    text: str
    seconds: float

    def json(self):
        return json.loads(self.text)


@dataclass
class Container:
    engine: Engine = field(repr=False)
    id: str
    name: str
    port: int
    started: float
    ready_seconds: float | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def probe(self, requests_: list[dict], timeout: float = 300) -> list[Answer]:
        command = self.engine.image_command("exec", "-i", self.id, "python", "-c", PROBE)
        for attempt in range(EXEC_ATTEMPTS):
            result = self.engine.run(
                command, input_text=json.dumps(requests_), timeout=timeout, check=False
            )
            if result.returncode == 0:
                return [Answer(**answer) for answer in json.loads(result.stdout)]
            # On a loaded machine runc now and then fails to start the exec'd process
            # ("read init-p: connection reset by peer"); the probe itself never ran.
            if "OCI runtime" not in result.stderr or attempt == EXEC_ATTEMPTS - 1:
                raise EngineError(f"the probe failed in {self.name}: {result.stderr.strip()}")
            time.sleep(1)
        raise AssertionError("not reached")

    def get(self, path: str) -> Answer:
        return self.probe([{"url": self.url(path)}])[0]

    def post_photo(self, path: str, photo: bytes, **form: str) -> dict:
        """A multipart upload in the field `image`, as the frontends send it (a request dict)."""
        prepared = requests.Request(
            "POST",
            self.url(path),
            files={"image": ("photo.jpg", photo, "image/jpeg")},
            data=form,
        ).prepare()
        return {
            "url": prepared.url,
            "method": "POST",
            "headers": {"Content-Type": prepared.headers["Content-Type"]},
            "body": base64.b64encode(prepared.body).decode(),
        }

    def execute(self, *command: str, check: bool = False):
        return self.engine.image("exec", self.id, *command, check=check)

    def running(self) -> bool:
        state = self.engine.image("inspect", "--format", "{{.State.Running}}", self.id, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        result = self.engine.image("logs", self.id, check=False)
        return (result.stdout or "") + (result.stderr or "")

    def wait_until_answering(self, path: str) -> Answer:
        """Poll `path` until it answers 200; record how long the start took."""
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited while starting:\n{self.logs()[-4000:]}")
            last = self.get(path)
            if last.status == 200:
                self.ready_seconds = time.monotonic() - self.started
                return last
            time.sleep(0.5)
        raise AssertionError(
            f"{self.name}: {path} never answered 200 in {START_TIMEOUT:g} s (last: {last})\n"
            f"{self.logs()[-4000:]}"
        )

    def terminate(self) -> tuple[int, float]:
        """SIGTERM, as Cloud Run stops an instance; (exit status, seconds it took)."""
        started = time.monotonic()
        self.engine.image("kill", "--signal", "TERM", self.id, check=False)
        waited = self.engine.image("wait", self.id, check=False, timeout=60)
        seconds = time.monotonic() - started
        status = int(waited.stdout.strip().splitlines()[-1]) if waited.stdout.strip() else -1
        return status, seconds

    def remove(self) -> None:
        self.engine.image("rm", "--force", self.id, check=False, timeout=60)


def start(
    engine: Engine,
    image: str,
    *,
    port: int,
    env: dict[str, str],
    join: Container | None = None,
    read_only: bool = True,
    mounts: dict[Path, str] | None = None,
) -> Container:
    """`mounts`: files or folders of the host, bind-mounted read-only at the given paths."""
    name = f"contract-{image.rsplit('/', 1)[-1].split(':')[0]}-{uuid.uuid4().hex[:6]}"
    flags = ["--detach", "--name", name, "--env", f"PORT={port}"]
    for key, value in env.items():
        flags += ["--env", f"{key}={value}"]
    for source, target in (mounts or {}).items():
        flags += ["--volume", f"{source}:{target}:ro"]
    flags += ["--network", f"container:{join.id}" if join else "none"]
    if read_only:
        flags += ["--read-only", "--tmpfs", "/tmp:rw,mode=1777"]
        if isinstance(engine, DaemonlessEngine):
            flags.append("--read-only-tmpfs=false")  # only the /tmp we give, as on Docker
    started = time.monotonic()
    result = engine.image("run", *flags, image, timeout=120)
    return Container(engine, result.stdout.strip().splitlines()[-1], name, port, started)
