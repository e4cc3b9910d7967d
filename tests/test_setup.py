"""`make setup`: CPU-only torch from the PyTorch CPU index when it answers, else the default index.

Each test runs the real Makefile with the real uv in a scratch copy (Makefile,
requirements/, the base Dockerfile that names the index), pointing
TORCH_CPU_INDEX at loopback only: a closed port, a listener that never answers,
or a PEP 503 index served by pytest-httpserver with stand-in torch and
torchvision wheels. SETUP_REQUIREMENTS names a one-line requirements file, so
the rest of the install stays small; CI's `make test` in the unzipped release
runs the full fallback for real.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support.servers import REPO_ROOT, free_port

TORCH_PINS = dict(
    re.findall(
        r"^(torch[a-z]*)==([0-9.]+)$", (REPO_ROOT / "requirements/torch.txt").read_text(), re.M
    )
)
# Something small from the default index that every checkout already needs.
SMALL_REQUIREMENT = "honcho==2.0.0\n"


def scratch_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "deployment").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "Makefile", root / "Makefile")
    shutil.copytree(REPO_ROOT / "requirements", root / "requirements")
    shutil.copy2(REPO_ROOT / "deployment/Dockerfile.backend-base", root / "deployment")
    (root / "small.txt").write_text(SMALL_REQUIREMENT)
    return root


def make_setup(root: Path, index: str, timeout_s: float = 5) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "setup",
            f"TORCH_CPU_INDEX={index}",
            f"TORCH_INDEX_TIMEOUT={timeout_s}",
            "SETUP_REQUIREMENTS=small.txt",
        ],
        cwd=root,
        # No proxy: the index is on loopback, and a proxy must not answer for it.
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def installed(root: Path) -> dict[str, str]:
    """name -> version of what the scratch .venv holds, as uv (the Makefile's installer) sees it."""
    python = str(root / ".venv/bin/python")
    listing = subprocess.run(
        ["python3", "-m", "uv", "pip", "list", "--python", python, "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("==", 1) for line in listing.stdout.splitlines() if "==" in line)


SHOW_TORCH_SETTINGS = "show: ; @echo $(TORCH_CPU_INDEX) $(TORCH_CPU_PINS)"


def test_the_makefile_asks_the_images_cpu_index_for_the_pinned_pair():
    result = subprocess.run(
        ["make", "--no-print-directory", "--eval", SHOW_TORCH_SETTINGS, "show"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    index, *pins = result.stdout.split()
    dockerfile = (REPO_ROOT / "deployment/Dockerfile.backend-base").read_text()
    assert f"ARG TORCH_INDEX_URL={index}\n" in dockerfile
    assert pins == [f"{name}=={version}+cpu" for name, version in TORCH_PINS.items()]
    assert set(TORCH_PINS) == {"torch", "torchvision"}


def test_a_closed_cpu_index_falls_back_to_the_default_index(tmp_path):
    root = scratch_checkout(tmp_path)
    port = free_port()  # bound, then released: nothing listens there
    result = make_setup(root, f"http://127.0.0.1:{port}/whl/cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not answer within 5 s" in result.stdout
    assert "torch comes from the default index" in result.stdout
    packages = installed(root)
    assert packages.get("honcho") == "2.0.0"
    assert "torch" not in packages  # nothing was taken from the closed index
    assert (root / ".venv/.installed").exists()


def test_a_cpu_index_that_never_answers_is_given_up_after_the_timeout(tmp_path):
    root = scratch_checkout(tmp_path)
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        result = make_setup(root, f"http://127.0.0.1:{port}/whl/cpu", timeout_s=1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not answer within 1 s" in result.stdout
    assert installed(root).get("honcho") == "2.0.0"


def stand_in_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A minimal pure-Python wheel called `name` at `version` (a local `+cpu` version)."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


@pytest.fixture
def cpu_index(httpserver):
    """A PEP 503 simple index on loopback holding stand-ins of the +cpu pair."""
    for name, version in TORCH_PINS.items():
        filename, data = stand_in_wheel(name, f"{version}+cpu")
        sha = hashlib.sha256(data).hexdigest()
        page = f'<html><body><a href="/files/{filename}#sha256={sha}">{filename}</a></body></html>'
        httpserver.expect_request(f"/whl/cpu/{name}/").respond_with_data(
            page, content_type="text/html"
        )
        httpserver.expect_request(f"/files/{filename}").respond_with_data(
            data, content_type="application/octet-stream"
        )
    return httpserver.url_for("/whl/cpu")


def test_an_answering_cpu_index_gives_the_cpu_builds(tmp_path, cpu_index):
    root = scratch_checkout(tmp_path)
    result = make_setup(root, cpu_index)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"CPU-only torch from {cpu_index}" in result.stdout
    packages = installed(root)
    for name, version in TORCH_PINS.items():
        assert packages.get(name) == f"{version}+cpu", packages
    assert packages.get("honcho") == "2.0.0"
