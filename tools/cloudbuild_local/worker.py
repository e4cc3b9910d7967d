"""One build's worker: an empty image store, the loopback registry, a workspace, a docker command.

Like a Cloud Build worker, each run starts with no images at all; only the
registry persists between runs, so a build can reuse layers only from what it
pulls. The run's `docker` is a small script on the steps' PATH that hands
every docker command to docker_shim.py, which runs it with the local engine.

With buildah there is one more thing to map. Docker's builder reuses the
layers of an image given with --cache-from (once pulled) by matching its
history; buildah reuses only intermediate images of its own. So a push also
keeps the pushed image's chain of intermediate images in the registry, under
<repository>/buildcache, and a build whose --cache-from names an image this
run pulled loads that chain first: the same layers become reusable under the
same condition. The run's output says so.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.cloudbuild_local import docker_cli
from tools.cloudbuild_local.registry import Registry
from tools.images import build as images_build
from tools.images import standins
from tools.images.engine import DaemonlessEngine, DockerEngine, Engine, detect

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "state.json"
CACHE_REPOSITORY = "buildcache"
CACHE_TRANSFERS = 4  # pushes or pulls of intermediate images at once
STAND_IN_REPOSITORY = "stand-in/python"
STAND_IN_TAG = "3.11-slim-bookworm"


@dataclass
class RunState:
    """What the docker command of a run needs to know, saved in the run's folder."""

    run_dir: str
    engine: str  # "docker" or "daemonless"
    engine_root: str
    registry: str
    stand_ins: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path) -> RunState:
        return cls(**json.loads((run_dir / STATE_FILE).read_text()))

    def save(self) -> None:
        (Path(self.run_dir) / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    def make_engine(self) -> Engine:
        if self.engine == "docker":
            return DockerEngine()
        return DaemonlessEngine(root=Path(self.engine_root), insecure_registries=(self.registry,))

    @property
    def pulled_file(self) -> Path:
        return Path(self.run_dir) / "pulled"

    def pulled(self) -> set[str]:
        if not self.pulled_file.exists():
            return set()
        return set(self.pulled_file.read_text().split())

    def record_pull(self, local_reference: str) -> None:
        with self.pulled_file.open("a") as pulled:
            pulled.write(local_reference + "\n")

    @property
    def builds_file(self) -> Path:
        return Path(self.run_dir) / "builds.jsonl"


def cache_repository(local_reference: str) -> str:
    repository, _ = docker_cli.repository_and_tag(local_reference)
    return f"{repository}/{CACHE_REPOSITORY}"


def ancestors(engine: Engine, reference: str) -> list[str]:
    """Ids of the image's unnamed parents, nearest first: buildah's intermediate images
    of its own Dockerfile, down to the image it starts FROM (which has a name)."""
    found = []
    current = engine.inspect(reference).get("Parent") or ""
    while current and engine.exists(current):
        parent = engine.inspect(current)
        names = [n for n in parent.get("RepoTags") or [] if f"/{CACHE_REPOSITORY}:" not in n]
        if names:
            break  # an image with a name of its own: where this Dockerfile starts
        found.append(current.removeprefix("sha256:"))
        current = parent.get("Parent") or ""
    return found


def push_build_cache(engine: Engine, registry: Registry, local_reference: str) -> int:
    """Keep the image's chain of intermediate images in the registry; how many were new."""
    image_id = engine.inspect(local_reference)["Id"].removeprefix("sha256:")
    repository = cache_repository(local_reference)
    remote_path = docker_cli.split_reference(repository)[1]
    missing = [
        (ancestor, f"{repository}:{image_id[:32]}-{depth:03d}")
        for depth, ancestor in enumerate(ancestors(engine, local_reference))
        if not registry.has(remote_path, f"{image_id[:32]}-{depth:03d}")
    ]
    # The layers are shared and already pushed: each push is a manifest, so run several.
    with ThreadPoolExecutor(max_workers=CACHE_TRANSFERS) as pool:
        list(pool.map(lambda pair: engine.image("push", *pair), missing))
    return len(missing)


def load_build_cache(engine: Engine, registry: Registry, local_reference: str) -> int:
    """Pull the chain a push kept for this (pulled) image; how many images came."""
    image_id = engine.inspect(local_reference)["Id"].removeprefix("sha256:")
    repository = cache_repository(local_reference)
    remote_path = docker_cli.split_reference(repository)[1]
    tags = sorted(t for t in registry.tags(remote_path) if t.startswith(image_id[:32] + "-"))
    with ThreadPoolExecutor(max_workers=CACHE_TRANSFERS) as pool:
        list(pool.map(lambda tag: engine.image("pull", f"{repository}:{tag}"), tags))
    return len(tags)


class Worker:
    """Set up and tear down one run: store, registry, stand-ins, workspace, docker command."""

    def __init__(self, base_dir: Path, build_id: str, *, use_stand_ins: bool) -> None:
        self.base_dir = base_dir.resolve()
        self.run_dir = self.base_dir / "runs" / build_id
        self.use_stand_ins = use_stand_ins
        self.registry = Registry(self.base_dir / "registry")
        self.engine: Engine | None = None
        self.state: RunState | None = None

    @property
    def workspace(self) -> Path:
        return self.run_dir / "workspace"

    @property
    def bin_dir(self) -> Path:
        return self.run_dir / "bin"

    def start(self) -> list[str]:
        """Start everything; return the lines that say what stands in for what."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for folder in (self.workspace, self.bin_dir, self.run_dir / "home"):
            folder.mkdir(parents=True)
        host = self.registry.start()
        self.engine = detect(self.run_dir / "engine", insecure_registries=(host,))
        notes = [
            f"an emulation of Cloud Build on this machine with {self.engine.name}, not Cloud "
            "Build itself",
            f"Artifact Registry is a registry on {host} (its data: {self.registry.data}); "
            "image names keep their Artifact Registry host as the first path component there",
            "the worker starts with an empty image store: a build reuses only what it pulls",
        ]
        if isinstance(self.engine, DaemonlessEngine):
            notes.append(
                "--cache-from: buildah reuses only its own intermediate images, so a push also "
                f"keeps them under <repository>/{CACHE_REPOSITORY}, and --cache-from of an "
                "image this run pulled loads them first"
            )
        else:
            self._forget_earlier_runs()
            notes.append(
                "Docker keeps its own build cache across runs; `docker builder prune` clears it"
            )
        chosen = []
        if self.use_stand_ins:
            python_image = self._python_stand_in()
            chosen = [asdict(s) for s in standins.stand_ins(python_image)]
            notes += [standins.describe(standins.StandIn(**s)) for s in chosen]
        self.state = RunState(
            run_dir=str(self.run_dir),
            engine="docker" if isinstance(self.engine, DockerEngine) else "daemonless",
            engine_root=str(self.run_dir / "engine"),
            registry=host,
            stand_ins=chosen,
        )
        self.state.save()
        self._write_commands()
        return notes

    def _python_stand_in(self) -> str:
        """The Python stand-in, kept in the registry as Docker Hub keeps the real one."""
        assert self.engine is not None
        reference = f"{self.registry.host}/{STAND_IN_REPOSITORY}:{STAND_IN_TAG}"
        if not self.registry.has(STAND_IN_REPOSITORY, STAND_IN_TAG):
            local = standins.import_python_stand_in(self.engine, images_build.stand_ins_dir())
            self.engine.image("push", local, reference)
            self.engine.image("rmi", local, check=False)
        return reference

    def _forget_earlier_runs(self) -> None:
        """Docker's store is shared: drop the images earlier runs left under the registry."""
        assert self.engine is not None
        listed = self.engine.image("images", "--format", "{{.Repository}}:{{.Tag}}", check=False)
        for reference in listed.stdout.split():
            if reference.startswith("127.0.0.1:"):
                self.engine.image("rmi", "--force", reference, check=False)

    def _write_commands(self) -> None:
        """`docker` runs the shim; `gcloud` is absent from the docker builder, as here."""
        python = shlex.quote(sys.executable)
        docker = self.bin_dir / "docker"
        docker.write_text(
            "#!/bin/sh\n"
            f"CLOUDBUILD_LOCAL_RUN={shlex.quote(str(self.run_dir))} "
            f"PYTHONPATH={shlex.quote(str(REPO_ROOT))} "
            f'exec {python} -m tools.cloudbuild_local.docker_shim "$@"\n'
        )
        gcloud = self.bin_dir / "gcloud"
        gcloud.write_text(
            "#!/bin/sh\n"
            'echo "bash: gcloud: command not found (the docker builder image has no gcloud; '
            'use a gcr.io/google.com/cloudsdktool/cloud-sdk step)" >&2\n'
            "exit 127\n"
        )
        for command in (docker, gcloud):
            command.chmod(0o755)

    def step_env(self, built_in: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.run_dir / "home"),
            "LANG": "C.UTF-8",
            "BUILDER_OUTPUT": str(self.run_dir / "builder-output"),
            **built_in,
        }

    def push(self, reference: str) -> tuple[int, str]:
        """Push an `images:` entry as the PUSH phase does (through the docker command)."""
        pushed = subprocess.run(
            [str(self.bin_dir / "docker"), "push", reference],
            env=self.step_env({}),
            capture_output=True,
            text=True,
            check=False,
        )
        return pushed.returncode, pushed.stdout + pushed.stderr

    def stop(self, keep: bool = False) -> None:
        if self.engine is not None and not keep:
            self.engine.clean()
        self.registry.stop()
        if not keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def fetch_source(source: Path, workspace: Path) -> tuple[int, str]:
    """Copy into the workspace what `gcloud builds submit SOURCE` would upload."""
    try:
        from autograder import gcloud_oracle

        files = (
            gcloud_oracle.list_files_for_upload(source)
            if gcloud_oracle.gcloud_available()
            else None
        )
        how = "the files gcloud would upload (.gcloudignore applied)"
    except (ImportError, RuntimeError):
        files = None
    if files is None:
        skipped = {".git", ".venv", "build"}
        files = [
            str(p.relative_to(source))
            for p in source.rglob("*")
            if p.is_file() and not skipped & set(p.relative_to(source).parts)
        ]
        how = "the source folder as it is (no gcloud here to apply .gcloudignore)"
    for relative in files:
        target = workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target)
    return len(files), how


def environment_for_shim() -> RunState:
    return RunState.load(Path(os.environ["CLOUDBUILD_LOCAL_RUN"]))
