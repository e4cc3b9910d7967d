"""The image tools without building anything: engine choice, its settings, stand-ins, sizes file.

Building and running happen in tests/containers with the real engine. Docker's
side is checked here with a recording `docker` on PATH, since no Docker engine
runs on these machines.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.images import engine as engine_module
from tools.images import sizes, standins
from tools.images.engine import DaemonlessEngine, DockerEngine, EngineError

REPO_ROOT = Path(__file__).resolve().parents[2]


def fake_docker(folder: Path, info_status: int) -> Path:
    """A `docker` client whose `info` answers with the given status and records every call."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{folder}/calls"\n'
        f'if [ "$1" = info ]; then [ {info_status} = 0 ] && echo 27.0.1; exit {info_status}; fi\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    return folder


@pytest.fixture
def path_with(monkeypatch):
    def put_first(folder: Path) -> None:
        monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")

    return put_first


def test_a_docker_client_without_an_engine_means_buildah_and_podman(tmp_path, path_with):
    path_with(fake_docker(tmp_path / "bin", info_status=1))
    chosen = engine_module.detect(tmp_path / "store")
    assert isinstance(chosen, DaemonlessEngine)
    assert "info" in (tmp_path / "bin" / "calls").read_text()


def test_an_answering_docker_engine_is_used(tmp_path, path_with):
    path_with(fake_docker(tmp_path / "bin", info_status=0))
    chosen = engine_module.detect(tmp_path / "store")
    assert isinstance(chosen, DockerEngine)
    assert chosen.build_command("d/Dockerfile", ".", ["t:1"], {"A": "b"}) == [
        "docker", "build", "--file", "d/Dockerfile", "--tag=t:1", "--build-arg=A=b", ".",
    ]  # fmt: skip


def test_no_engine_at_all_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, buildah or podman
    with pytest.raises(EngineError, match="apt-get install buildah podman"):
        engine_module.detect(tmp_path / "store")


def test_the_daemonless_pair_keeps_storage_and_settings_in_its_folder(tmp_path):
    chosen = DaemonlessEngine(root=tmp_path / "store", insecure_registries=("127.0.0.1:5000",))
    storage = Path(chosen.env["CONTAINERS_STORAGE_CONF"]).read_text()
    assert f'graphroot = "{tmp_path / "store" / "storage"}"' in storage
    assert 'driver = "overlay"' in storage
    containers = Path(chosen.env["CONTAINERS_CONF"]).read_text()
    assert '"nofile=20000:20000"' in containers
    assert 'cgroup_manager = "cgroupfs"' in containers
    registries = Path(chosen.env["CONTAINERS_REGISTRIES_CONF"]).read_text()
    assert 'location = "127.0.0.1:5000"\ninsecure = true' in registries
    assert chosen.env["TMPDIR"] == str(tmp_path / "store" / "tmp")
    command = chosen.build_command("f", ".", ["t"], {})
    assert command[:7] == [
        "buildah",
        "build",
        "--isolation",
        "chroot",
        "--layers",
        "--format",
        "docker",
    ]


def test_short_disk_fails_first_with_the_numbers(tmp_path):
    with pytest.raises(EngineError, match=r"needs about 1000000 GB free in .*IMAGES_DIR"):
        engine_module.require_free_disk(tmp_path, int(1e15), "make images")


def test_stand_ins_go_only_to_a_dockerfile_that_declares_them():
    chosen = standins.stand_ins("localhost/stand-in/python:3.11-slim-bookworm")
    backend = standins.build_args_for(REPO_ROOT / "deployment/Dockerfile.backend-base", chosen, {})
    assert {s.build_arg for s in backend} == {
        "PYTHON_IMAGE", "TORCH_INDEX_URL", "TORCH_LOCAL_VERSION", "PREFETCH_MODELS",
    }  # fmt: skip
    frontend = standins.build_args_for(
        REPO_ROOT / "deployment/Dockerfile.frontend-base", chosen, {}
    )
    assert [s.build_arg for s in frontend] == ["PYTHON_IMAGE"]
    app = standins.build_args_for(REPO_ROOT / "backend_v1/Dockerfile", chosen, {})
    assert app == []
    given = {"PYTHON_IMAGE": "mine"}
    assert "PYTHON_IMAGE" not in {
        s.build_arg
        for s in standins.build_args_for(
            REPO_ROOT / "deployment/Dockerfile.frontend-base", chosen, given
        )
    }


def test_each_stand_in_is_printed_with_what_it_replaces():
    (python, *_) = standins.stand_ins("localhost/x:1")
    assert standins.describe(python).startswith(
        "stand-in: PYTHON_IMAGE=localhost/x:1 instead of python:3.11-slim-bookworm"
    )


def test_the_sizes_section_is_replaced_in_place(tmp_path):
    document = tmp_path / "images.md"
    document.write_text(f"intro\n\n{sizes.BEGIN}\nold figures\n{sizes.END}\n\nafter\n")
    sizes.write_section(document, f"{sizes.BEGIN}\nnew figures\n{sizes.END}")
    assert document.read_text() == f"intro\n\n{sizes.BEGIN}\nnew figures\n{sizes.END}\n\nafter\n"


def test_history_entries_read_as_instructions():
    assert sizes.instruction("/bin/sh -c #(nop) USER 10001:10001") == "USER 10001:10001"
    assert (
        sizes.instruction("|2 A=1 B= /bin/sh -c pip install -r requirements/locks/serving.txt")
        == "RUN pip install -r requirements/locks/serving.txt"
    )
    assert (
        sizes.instruction("/bin/sh -c #(nop) COPY file:621fbd9d in requirements/locks/ ")
        == "COPY ... to requirements/locks/"
    )
