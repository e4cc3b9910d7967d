"""The local container engine: Docker where a Docker engine answers, else buildah and podman.

Both are driven through their command lines. The daemonless pair keeps
everything (images, layers, temporary files, its configuration) in one folder
of our own, so a build never touches the machine's other images and `clean()`
takes it all away. What this machine needs to run them (and what CI uses):
chroot isolation for builds, overlay storage, runc with the cgroupfs manager
(crun refuses hybrid cgroups), and lower default ulimits than podman's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# Podman's default ulimits are higher than an unprivileged container may ask for here.
ULIMITS = ("nofile=20000:20000", "nproc=32768:32768")
DAEMONLESS_TOOLS = ("buildah", "podman")


class EngineError(RuntimeError):
    """The engine is missing or refused an operation; the message says what to do."""


@dataclass(frozen=True)
class Layer:
    created_by: str
    size: int  # unpacked bytes


def docker_engine_answers(timeout: float = 15) -> bool:
    """A Docker engine, not just a client: `docker info` succeeds."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@dataclass
class Engine:
    """What the image tools need from an engine; the two kinds differ in commands only."""

    name: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    # -- commands ---------------------------------------------------------------------
    def build_command(
        self,
        dockerfile: str,
        context: str,
        tags: list[str],
        build_args: dict[str, str],
        extra: list[str] | None = None,
    ) -> list[str]:
        raise NotImplementedError

    def image_command(self, *args: str) -> list[str]:
        """pull, push, tag, rmi, inspect, run, ... with the engine's own CLI."""
        raise NotImplementedError

    # -- running them -----------------------------------------------------------------
    def run(
        self,
        command: list[str],
        *,
        output: IO[str] | None = None,
        check: bool = True,
        timeout: float | None = None,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            command,
            env=self.env,
            input=input_text,
            stdout=output if output is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if output is not None else subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            detail = "" if output is not None else (result.stderr or result.stdout).strip()
            raise EngineError(f"`{' '.join(command)}` failed ({result.returncode}): {detail}")
        return result

    def build(self, dockerfile, context, tags, build_args, *, output=None, extra=None) -> int:
        command = self.build_command(dockerfile, context, tags, build_args, extra)
        return self.run(command, output=output, check=False).returncode

    def image(self, *args: str, check: bool = True, timeout: float | None = None):
        return self.run(self.image_command(*args), check=check, timeout=timeout)

    def exists(self, reference: str) -> bool:
        return self.image("image", "inspect", reference, check=False).returncode == 0

    def inspect(self, reference: str) -> dict:
        return json.loads(self.image("image", "inspect", reference).stdout)[0]

    def size(self, reference: str) -> int:
        """Unpacked bytes, as `docker images` shows them."""
        return int(self.inspect(reference)["Size"])

    def layers(self, reference: str) -> list[Layer]:
        """Oldest first; instructions that add no files have size 0."""
        raise NotImplementedError

    def clean(self) -> None:
        """Remove what this engine stored for us (nothing for Docker's shared store)."""


@dataclass
class DockerEngine(Engine):
    name: str = "docker"

    def build_command(self, dockerfile, context, tags, build_args, extra=None):
        return ["docker", "build", *build_words(dockerfile, context, tags, build_args, extra)]

    def image_command(self, *args):
        return ["docker", *args]

    def layers(self, reference):
        result = self.image(
            "history", "--no-trunc", "--human=false", "--format", "{{json .}}", reference
        )
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return [Layer(row["CreatedBy"], int(row["Size"])) for row in reversed(rows)]


def build_words(dockerfile, context, tags, build_args, extra=None) -> list[str]:
    """The options and context of a `build`, the same for docker and buildah."""
    return [
        "--file",
        dockerfile,
        *(f"--tag={tag}" for tag in tags),
        *(f"--build-arg={key}={value}" for key, value in build_args.items()),
        *(extra or []),
        context,
    ]


@dataclass
class DaemonlessEngine(Engine):
    """buildah builds, podman pulls, pushes and runs, all in `root`.

    Their configuration files live in `root` too and reach every command through
    CONTAINERS_STORAGE_CONF, CONTAINERS_CONF and CONTAINERS_REGISTRIES_CONF, so
    no system-wide setting is read or changed.
    """

    name: str = "buildah/podman"
    root: Path = Path("build/engine")
    insecure_registries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        for sub in ("storage", "run", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._write_configuration()
        self.env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
            # buildah writes each layer to a temporary file before storing it.
            "TMPDIR": str(self.root / "tmp"),
        }

    def _write_configuration(self) -> None:
        overlay = ""
        if os.geteuid() != 0 and shutil.which("fuse-overlayfs"):
            overlay = '\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n'
        (self.root / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.root / "storage"}"\n'
            f'runroot = "{self.root / "run"}"\n' + overlay
        )
        runtime = 'runtime = "runc"\n' if shutil.which("runc") else ""
        (self.root / "containers.conf").write_text(
            "[containers]\n"
            f"default_ulimits = {json.dumps(list(ULIMITS))}\n"
            "[engine]\n"
            f"{runtime}"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        registries = "".join(
            f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
            for host in self.insecure_registries
        )
        # Short names resolve as Docker resolves them (python:3.11 -> docker.io/library).
        (self.root / "registries.conf").write_text(
            'unqualified-search-registries = ["docker.io"]\n'
            'short-name-mode = "permissive"\n' + registries
        )

    def build_command(self, dockerfile, context, tags, build_args, extra=None):
        # chroot: no namespaces needed; --layers: reuse each step; docker format: as
        # docker builds it (and with the parent links worker.py follows).
        options = ["--isolation", "chroot", "--layers", "--format", "docker"]
        words = build_words(dockerfile, context, tags, build_args, extra)
        return ["buildah", "build", *options, *words]

    def image_command(self, *args):
        return ["podman", *args]

    def layers(self, reference):
        result = self.image("history", "--no-trunc", "--format", "json", reference)
        rows = json.loads(result.stdout)
        return [Layer(row.get("CreatedBy", ""), int(row.get("size", 0))) for row in reversed(rows)]

    def clean(self) -> None:
        """Unmount what podman and buildah left mounted, then remove the folder."""
        if (self.root / "storage").is_dir():
            self.run(["buildah", "rm", "--all"], check=False)
            self.run(["podman", "rm", "--all", "--force", "--time", "0"], check=False)
            self.run(["podman", "unmount", "--all", "--force"], check=False)
        unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def unmount_below(folder: Path) -> None:
    """Overlay mounts a crashed build may have left (rmtree cannot remove them)."""
    prefix = str(folder.resolve()) + "/"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):  # the deepest first
        subprocess.run(["umount", "--lazy", target], capture_output=True, check=False)


def detect(root: Path, *, insecure_registries: tuple[str, ...] = ()) -> Engine:
    """Docker if an engine answers, else buildah and podman storing everything in `root`."""
    if docker_engine_answers():
        return DockerEngine()
    missing = [tool for tool in DAEMONLESS_TOOLS if shutil.which(tool) is None]
    if missing:
        raise EngineError(
            "No container engine here: `docker info` finds no Docker engine, and "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed. "
            "Start Docker, or install the daemonless pair (Debian/Ubuntu: "
            "`sudo apt-get install buildah podman runc uidmap fuse-overlayfs`)."
        )
    return DaemonlessEngine(root=root, insecure_registries=insecure_registries)


def free_bytes(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(folder).free


def require_free_disk(folder: Path, needed: int, what: str) -> None:
    """Fail before starting, with the numbers and the way out, when the disk is short."""
    free = free_bytes(folder)
    if free < needed:
        raise EngineError(
            f"{what} needs about {needed / 1e9:.0f} GB free in {folder}, and only "
            f"{free / 1e9:.1f} GB are: free some space, or point it at a larger disk "
            "(IMAGES_DIR=/path/with/room)."
        )
