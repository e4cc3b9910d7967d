"""The `docker` a cloudbuild-local step runs: docker's command line, the local engine's work.

    docker pull|push|tag|build ...   (through the run's bin/docker)

References to Artifact Registry go to the loopback registry; stand-ins are
added as build arguments where chosen; with buildah, --cache-from is mapped
as worker.py explains. Messages about the mapping start with [emulation].
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tools.cloudbuild_local import docker_cli, worker
from tools.cloudbuild_local.docker_cli import DockerUsageError
from tools.cloudbuild_local.registry import Registry
from tools.images import standins
from tools.images.engine import DaemonlessEngine

# Build arguments docker itself defines; an unconsumed one draws no warning.
PREDEFINED_ARGS = {
    "BUILDKIT_INLINE_CACHE", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "ALL_PROXY", "all_proxy",
}  # fmt: skip
_STEP_LINE = re.compile(r"^STEP \d+/\d+: ")
_CACHED_LINE = re.compile(r"^--> Using cache |^---> Using cache|^#\d+ CACHED")


class Shim:
    def __init__(self, state: worker.RunState) -> None:
        self.state = state
        self.engine = state.make_engine()
        self.daemonless = isinstance(self.engine, DaemonlessEngine)
        self.registry = Registry.attach(state.registry)

    def local(self, reference: str) -> str:
        return docker_cli.to_local(reference, self.state.registry)

    def say(self, line: str) -> None:
        print(line, flush=True)

    # -- commands -----------------------------------------------------------------------
    def pull(self, words: list[str]) -> int:
        reference = docker_cli.parse_pull(words)
        local = self.local(reference)
        repository, tag = docker_cli.repository_and_tag(reference)
        if ":" not in reference.rsplit("/", 1)[-1] and "@" not in reference:
            self.say("Using default tag: latest")
        result = self.engine.image("pull", local, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            self.say(
                f"Error response from daemon: manifest for {repository}:{tag} not found: "
                f"manifest unknown: Requested entity was not found."
            )
            self.say(f"[emulation] the engine said: {' '.join(detail)}")
            return 1
        self.state.record_pull(local)
        self.say(f"{tag}: Pulling from {repository.split('/', 1)[-1]}")
        self.say(f"Status: Downloaded newer image for {repository}:{tag}")
        self.say(f"{repository}:{tag}")
        return 0

    def push(self, words: list[str]) -> int:
        reference, every = docker_cli.parse_push(words)
        repository, tag = docker_cli.repository_and_tag(reference)
        local_repository = self.local(repository)
        if every:
            listed = self.engine.image(
                "images", "--format", "{{.Repository}}:{{.Tag}}", check=False
            ).stdout.split()
            tags = sorted(
                line.rsplit(":", 1)[1]
                for line in listed
                if line.rsplit(":", 1)[0] == local_repository
            )
        else:
            tags = [tag]
        if not tags or not all(self.engine.exists(f"{local_repository}:{t}") for t in tags):
            self.say(f"An image does not exist locally with the tag: {reference}")
            return 1
        self.say(f"The push refers to repository [{repository}]")
        for pushed_tag in tags:
            local = f"{local_repository}:{pushed_tag}"
            digest_file = Path(self.state.run_dir) / "digest"
            result = self.engine.run(
                self.engine.image_command("push", "--digestfile", str(digest_file), local)
                if self.daemonless
                else self.engine.image_command("push", local),
                check=False,
            )
            if result.returncode != 0:
                self.say((result.stderr or result.stdout).strip())
                return 1
            digest = digest_file.read_text().strip() if digest_file.exists() else ""
            self.say(f"{pushed_tag}: digest: {digest}")
            if self.daemonless:
                kept = worker.push_build_cache(self.engine, self.registry, local)
                if kept:
                    self.say(
                        f"[emulation] {kept} intermediate images of {repository}:{pushed_tag} "
                        f"kept under {repository}/{worker.CACHE_REPOSITORY} for --cache-from"
                    )
        return 0

    def tag(self, words: list[str]) -> int:
        source, target = docker_cli.parse_tag(words)
        if not self.engine.exists(self.local(source)):
            self.say(f"Error response from daemon: No such image: {source}")
            return 1
        self.engine.image("tag", self.local(source), self.local(target))
        return 0

    def build(self, words: list[str]) -> int:
        build = docker_cli.parse_build(words)
        dockerfile = Path(build.dockerfile or Path(build.context) / "Dockerfile")
        if not dockerfile.is_file():
            self.say(
                f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                f"lstat {dockerfile.resolve()}: no such file or directory"
            )
            return 1
        args = {}
        for key, value in build.build_args.items():
            value = os.environ.get(key) if value is None else value
            if value is not None:
                args[key] = self.local(value)
        declared = standins.declared_args(dockerfile)
        unconsumed = sorted(set(args) - declared - PREDEFINED_ARGS)
        if self.daemonless:  # docker takes its own arguments silently; buildah would warn
            args = {k: v for k, v in args.items() if k in declared or k not in PREDEFINED_ARGS}
        chosen = [standins.StandIn(**s) for s in self.state.stand_ins]
        for stand_in in standins.build_args_for(dockerfile, tuple(chosen), args):
            self.say(f"[emulation] {standins.describe(stand_in)}")
            args[stand_in.build_arg] = stand_in.value
        extra = []
        if build.target:
            extra += ["--target", build.target]
        if build.no_cache:
            extra.append("--no-cache")
        if build.pull:
            extra.append("--pull-always" if self.daemonless else "--pull")
        if build.cache_from:
            extra += self._cache_from(build.cache_from)
        tags = [self.local(tag) for tag in build.tags]
        command = self.engine.build_command(str(dockerfile), build.context, tags, args, extra)
        started = time.monotonic()
        instructions = cached = 0
        process = subprocess.Popen(
            command,
            env=self.engine.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            instructions += bool(_STEP_LINE.match(line)) and "FROM " not in line
            cached += bool(_CACHED_LINE.match(line))
        status = process.wait()
        if unconsumed:
            self.say(f"[Warning] One or more build-args {unconsumed} were not consumed")
        with self.state.builds_file.open("a") as builds:
            builds.write(
                json.dumps(
                    {
                        "step": int(os.environ.get("CLOUDBUILD_LOCAL_STEP", "-1")),
                        "dockerfile": str(dockerfile),
                        "tags": build.tags,
                        "instructions": instructions,
                        "cached": cached,
                        "seconds": round(time.monotonic() - started, 2),
                        "status": status,
                    }
                )
                + "\n"
            )
        return 0 if status == 0 else 1

    def _cache_from(self, sources: list[str]) -> list[str]:
        """Docker reuses a --cache-from image only once it is here (pulled); so do we."""
        pulled = self.state.pulled()
        for source in sources:
            local = self.local(source)
            if local not in pulled or not self.engine.exists(local):
                self.say(
                    f"[emulation] --cache-from {source}: no step of this build pulled it, so "
                    "there is nothing to reuse (Docker's builder reuses only local images)"
                )
                continue
            if not self.daemonless:
                continue
            loaded = worker.load_build_cache(self.engine, self.registry, local)
            self.say(
                f"[emulation] --cache-from {source}: pulled by this build; its {loaded} "
                "intermediate images loaded so buildah can reuse its layers"
            )
        return [f"--cache-from={self.local(s)}" for s in sources] if not self.daemonless else []


def main(argv: list[str]) -> int:
    state = worker.environment_for_shim()
    shim = Shim(state)
    if not argv:
        print("Usage: docker COMMAND (cloudbuild-local emulates build, pull, push, tag)")
        return 0
    command, words = argv[0], argv[1:]
    if command == "image" and words and words[0] in ("build", "pull", "push", "tag"):
        command, words = words[0], words[1:]
    handlers = {"build": shim.build, "pull": shim.pull, "push": shim.push, "tag": shim.tag}
    try:
        if command in handlers:
            return handlers[command](words)
        if command in ("login", "logout"):
            print("[emulation] the loopback registry needs no login")
            return 0
        if command in ("images", "version", "info") or (command == "image" and words[:1] == ["ls"]):
            return shim.engine.run(
                shim.engine.image_command(command, *words), check=False
            ).returncode
    except DockerUsageError as refused:
        print(str(refused), file=sys.stderr)
        return refused.status
    print(
        f"[emulation] `docker {command}` is not emulated by cloudbuild-local (it runs build, "
        "pull, push and tag); this step can only be tried on Cloud Build itself",
        file=sys.stderr,
    )
    return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
