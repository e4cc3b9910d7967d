"""`make cloudbuild-local CONFIG=...`: run a Cloud Build config here, before spending credits.

    python -m tools.cloudbuild_local CONFIG [SOURCE] [--substitutions _KEY=value,...]
        [--project ID] [--stand-ins] [--fresh-registry] [--keep]

It does what `gcloud builds submit SOURCE --config CONFIG` would make Cloud
Build do: the substitutions and their checks, the steps in waitFor order,
docker steps (and `entrypoint: bash` steps) on this machine's engine, pushes
and pulls against a registry on 127.0.0.1 standing in for Artifact Registry.
It fails at the step where Cloud Build would fail. Cloud SDK (gcloud) steps
are printed, not run; other builders are refused. Each run starts with an
empty image store; the registry, under build/cloudbuild-local/registry,
persists (--fresh-registry empties it: a project's very first build).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tools.cloudbuild_local import config as config_module
from tools.cloudbuild_local.config import ConfigError
from tools.cloudbuild_local.runner import BuildResult, Log, Runner
from tools.cloudbuild_local.substitution import SubstitutionError, parse_pairs
from tools.cloudbuild_local.worker import Worker, fetch_source
from tools.images import build as images_build
from tools.images.engine import EngineError, require_free_disk

REPO_ROOT = Path(__file__).resolve().parents[2]
# A cold backend build with the default index's torch stand-in needs the most.
DISK_NEEDED = {True: 30e9, False: 10e9}


def project_id(given: str | None) -> str:
    if given:
        return given
    gcloud = shutil.which("gcloud")
    if gcloud:
        # The student's own configured project, read locally (no network).
        found = subprocess.run(
            [gcloud, "config", "get-value", "project"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
        if found and found != "(unset)":
            return found
    return "local-project"


def gcloud_verdict(path: Path) -> str | None:
    """The real gcloud's offline verdict on the config, or None when it is absent."""
    try:
        from autograder import gcloud_oracle
    except ImportError:
        return None
    if not gcloud_oracle.gcloud_available():
        return None
    verdict = gcloud_oracle.validate_build_config(path)
    return None if verdict.accepted else f"{verdict.kind}: {verdict.message}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloudbuild-local", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("source", type=Path, nargs="?", default=REPO_ROOT)
    parser.add_argument("--substitutions", default="", help="_KEY=value,_OTHER=value")
    parser.add_argument("--project", help="$PROJECT_ID (default: gcloud's configured project)")
    parser.add_argument("--stand-ins", action="store_true", help="see tools/images/standins.py")
    parser.add_argument("--fresh-registry", action="store_true", help="start from no images")
    parser.add_argument("--keep", action="store_true", help="keep the run's store and workspace")
    parser.add_argument("--dir", type=Path, default=images_build.cloudbuild_local_dir())
    args = parser.parse_args(argv)

    build_id = str(uuid.uuid4())
    built_in = {
        "PROJECT_ID": project_id(args.project),
        "BUILD_ID": build_id,
        "PROJECT_NUMBER": "000000000000",
        "LOCATION": "global",
    }
    try:
        refused = gcloud_verdict(args.config)
        if refused:
            raise ConfigError(f"gcloud refuses the config ({refused})")
        config = config_module.load(args.config, built_in, parse_pairs(args.substitutions))
        require_free_disk(args.dir, int(DISK_NEEDED[args.stand_ins]), "cloudbuild-local")
    except (ConfigError, SubstitutionError, EngineError) as failed:
        print(f"cloudbuild-local: {failed}", file=sys.stderr)
        return 2
    if args.fresh_registry:
        shutil.rmtree(args.dir / "registry", ignore_errors=True)
    worker = Worker(args.dir, build_id, use_stand_ins=args.stand_ins)
    args.dir.mkdir(parents=True, exist_ok=True)
    with (args.dir / "last-run.log").open("w") as sink:
        log = Log(sink)
        try:
            for note in worker.start():
                log.line(f"cloudbuild-local: {note}")
            result = build(config, worker, built_in, log, args.source.resolve())
            report(result, worker, args.dir, log)
        except EngineError as failed:
            log.line(f"cloudbuild-local: {failed}")
            return 3
        finally:
            worker.stop(keep=args.keep)
    return 0 if result.status == "SUCCESS" else 1


def build(config, worker: Worker, built_in: dict, log: Log, source: Path) -> BuildResult:
    shown = ", ".join(f"{k}={v}" for k, v in config.substitutions.values.items() if v)
    log.line(f"cloudbuild-local: substitutions: {shown}")
    for ignored in config.ignored:
        log.line(f"cloudbuild-local: `{ignored}` has no effect here")
    log.line(f'starting build "{built_in["BUILD_ID"]}"')
    log.line("")
    log.line("FETCHSOURCE")
    count, how = fetch_source(source, worker.workspace)
    log.line(f"[emulation] {count} files copied into the workspace: {how}")
    log.line("BUILD")
    return Runner(config, worker, built_in, log).run(built_in["BUILD_ID"])


def report(result: BuildResult, worker: Worker, folder: Path, log: Log) -> None:
    builds = []
    builds_file = worker.run_dir / "builds.jsonl"
    if builds_file.exists():
        builds = [json.loads(line) for line in builds_file.read_text().splitlines()]
    summary = {**result.to_json(), "docker_builds": builds, "at": time.strftime("%FT%T")}
    (folder / "last-run.json").write_text(json.dumps(summary, indent=2))
    log.line("")
    log.line(f"cloudbuild-local: {result.status} in {result.seconds:.1f} s")
    for step in result.steps:
        name = step.id or f"#{step.index}"
        note = " (failure allowed)" if step.allowed else ""
        cache = [b for b in builds if b["step"] == step.index]
        if cache:
            b = cache[-1]
            note += f", {b['cached']} of {b['instructions']} instructions from the cache"
        log.line(f"  {name:<16} {step.status:<10} {step.seconds:7.1f} s{note}")
    log.line(f"  (details: {folder / 'last-run.json'}, log: {folder / 'last-run.log'})")


if __name__ == "__main__":
    sys.exit(main())
