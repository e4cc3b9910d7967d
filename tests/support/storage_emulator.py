"""gcp-storage-emulator on loopback: Cloud Storage's JSON API for tests, in memory.

with StorageEmulator() as emulator:
    emulator.upload("models", "resnet18.pth", data)
    env = emulator.env    # STORAGE_EMULATOR_HOST, which google-cloud-storage honours
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

from tests.support.servers import free_port

EMULATOR = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gcp-storage-emulator"


class StorageEmulator:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def __enter__(self) -> StorageEmulator:
        self.process = subprocess.Popen(
            [str(EMULATOR), "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--in-memory", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/storage/v1/b?project=test", timeout=2)
                return self
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError("gcp-storage-emulator exited at start") from None
                time.sleep(0.2)
        self.__exit__()
        raise TimeoutError("gcp-storage-emulator did not start in 60 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(10)

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def upload(self, bucket: str, name: str, data: bytes) -> str:
        client = self.client()
        found = client.lookup_bucket(bucket)
        target = found or client.create_bucket(bucket)
        target.blob(name).upload_from_string(data)
        return f"gs://{bucket}/{name}"
