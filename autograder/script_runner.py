"""Run a student's shell script safely and see which gcloud and docker commands it runs.

The script runs with `bash`, in a throwaway copy of the submission whose path
contains a space (so an unquoted path breaks as it would for a student with
one), from a working directory outside that copy (so a script that works only
from one folder shows it). Recording stand-ins for gcloud, docker, curl and
wget come first on PATH (see recording_cli.py): they log every call and answer
read-only questions (`gcloud config get-value project`, a service's URL) with
plausible values. The environment is scrubbed: no credentials, an empty gcloud
configuration, HTTP(S) proxies pointing at a closed loopback port. The script
runs confined (sandbox.py: bubblewrap namespaces, or an unprivileged user with
Landlock and limits, as this machine allows): its output goes to capped files,
its scratch space is size-limited, and every process it starts ends with it.

    from autograder.script_runner import run_script
    run = run_script("deployment/deploy_frontend_v1.sh", tree=repo_root)
    run.exit_code, run.stderr
    [call.argv for call in run.gcloud_calls]   # ("run", "deploy", "frontend-v1", ...)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autograder import sandbox
from autograder.workspace import workspace

RECORDER = Path(__file__).resolve().with_name("recording_cli.py")
RECORDED_PROGRAMS = ("gcloud", "docker", "curl", "wget")
DEFAULT_PROJECT = "student-project-123"
DEFAULT_TIMEOUT = 30.0
# A deploy script runs gcloud stand-ins and little else: generous, but bounded.
SCRIPT_LIMITS = sandbox.Limits(cpu_seconds=60, file_bytes=16 << 20, scratch_bytes=128 << 20)
# Never copied into the throwaway tree: large, private or irrelevant to a script.
COPY_IGNORE = (
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.pyc",
)
# A loopback port nothing listens on: any client that honours proxies fails fast here.
_DEAD_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class RecordedCall:
    program: str  # "gcloud", "docker", ...
    argv: tuple[str, ...]  # the arguments after the program name
    cwd: str  # the working directory at the time of the call

    @property
    def command(self) -> tuple[str, ...]:
        """The full command line, program first (what gcloud_oracle.check_command takes)."""
        return (self.program, *self.argv)

    def flag(self, name: str) -> str | None:
        """The value of `--name VALUE` or `--name=VALUE` (the last one given), or None."""
        value = None
        for index, word in enumerate(self.argv):
            if word == name and index + 1 < len(self.argv):
                value = self.argv[index + 1]
            elif word.startswith(name + "="):
                value = word.split("=", 1)[1]
        return value


@dataclass
class ScriptRun:
    script: str  # the script's path inside the tree, as given
    exit_code: int | None  # None when it was stopped at the timeout
    timed_out: bool
    stdout: str
    stderr: str
    calls: list[RecordedCall] = field(default_factory=list)
    project: str = DEFAULT_PROJECT
    copy_root: str = ""  # where the throwaway copy was (deleted after the run)
    isolated: bool = False  # ran confined (sandbox level bwrap or user)
    confinement: str = "none"  # the sandbox level it ran at

    @property
    def gcloud_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.program == "gcloud"]

    @property
    def docker_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.program == "docker"]

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def run_script(
    script: str,
    *,
    tree: str | os.PathLike,
    files: Mapping[str, str | os.PathLike] | None = None,
    project: str = DEFAULT_PROJECT,
    service_urls: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    isolate: bool = True,
    limits: sandbox.Limits = SCRIPT_LIMITS,
) -> ScriptRun:
    """Run `bash <tree>/<script>` in a throwaway copy of `tree` and record its calls.

    Paths in the recorded calls that pointed into the copy are rewritten to the
    original files (in `tree`, or the source given in `files`), so a recorded
    `gcloud builds submit --config ...` can be replayed through gcloud_oracle.

    tree          the folder to copy (a submission, or the assignment's own tree)
    files         extra files placed in the copy: {"deployment/x.sh": source path},
                  e.g. a flat upload's student files over the assignment tree
    project       what `gcloud config get-value project` answers
    service_urls  Cloud Run URLs the recorder reports, by service name
                  (others are made up: https://<name>-<hash>-nn.a.run.app)
    env           extra environment variables for the script
    cwd           a folder inside the copy to start in; default: an empty folder
                  outside it
    isolate       run at the grader's confinement level (sandbox.current()); False
                  runs at level "none" (tests of the runner itself)

    Raises sandbox.SandboxError when no confinement level can start the script
    (a failure of the grading machine, never of the script).
    """
    tree = Path(tree).resolve()
    if not tree.is_dir():
        raise FileNotFoundError(f"no such folder: {tree}")
    confinement = sandbox.current() if isolate else sandbox.unconfined()
    for attempt in sandbox.fallbacks(confinement):
        try:
            return _run_once(
                attempt,
                script,
                tree,
                files or {},
                project,
                service_urls or {},
                env or {},
                args,
                cwd,
                timeout,
                limits,
            )
        except sandbox.SandboxError as exc:
            failure = exc
    raise failure


def _run_once(
    confinement: sandbox.Confinement,
    script: str,
    tree: Path,
    files: Mapping[str, str | os.PathLike],
    project: str,
    service_urls: Mapping[str, str],
    env: Mapping[str, str],
    args: tuple[str, ...],
    cwd: str | None,
    timeout: float,
    limits: sandbox.Limits,
) -> ScriptRun:
    with workspace("script-") as space:
        scratch = space.scratch
        copy_root = scratch / "student submission"
        shutil.copytree(tree, copy_root, ignore=shutil.ignore_patterns(*COPY_IGNORE))
        for relative, source in files.items():
            target = copy_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        script_path = copy_root / script
        if not script_path.is_file():
            raise FileNotFoundError(f"{script} is not in {tree} (nor in `files`)")
        bin_dir, home, log = scratch / "bin", scratch / "home", space.keep / "calls.jsonl"
        for folder in (bin_dir, home, home / "gcloud-config", scratch / "elsewhere"):
            folder.mkdir()
        _install_recorders(bin_dir, confinement.python)
        run_env = _scrubbed_env(bin_dir, home, log, project, service_urls)
        run_env.update(env)
        start_in = copy_root / cwd if cwd is not None else scratch / "elsewhere"
        outcome = confinement.run(
            ["bash", str(script_path), *args],
            space,
            cwd=start_in,
            env=run_env,
            limits=limits,
            timeout=timeout,
        )
        calls = _read_calls(log, _PathMap(copy_root, tree, files))
    stderr = outcome.stderr
    if outcome.timed_out:
        stderr += f"\n[stopped after {timeout:g} s]"
    elif outcome.stopped == "scratch":
        stderr += f"\n[stopped: it wrote more than {limits.scratch_bytes >> 20} MB of files]"
    return ScriptRun(
        script=script,
        exit_code=outcome.exit_code,
        timed_out=outcome.timed_out,
        stdout=outcome.stdout,
        stderr=stderr,
        calls=calls,
        project=project,
        copy_root=str(copy_root),
        isolated=confinement.level != "none",
        confinement=confinement.level,
    )


def _install_recorders(bin_dir: Path, python: str) -> None:
    """The stand-ins, run by an interpreter the confined user can run (no site-packages)."""
    recorder = bin_dir / "recording_cli.py"
    shutil.copyfile(RECORDER, recorder)
    # The recorder reads gcloud's words with the grader's own splitter, its neighbour.
    shutil.copyfile(RECORDER.with_name("shell_words.py"), bin_dir / "shell_words.py")
    for program in RECORDED_PROGRAMS:
        wrapper = bin_dir / program
        wrapper.write_text(
            "#!/bin/sh\n"
            f'exec {shlex.quote(python)} -I -S {shlex.quote(str(recorder))} {program} "$@"\n'
        )
        wrapper.chmod(0o755)


def _scrubbed_env(
    bin_dir: Path, home: Path, log: Path, project: str, service_urls: Mapping[str, str]
) -> dict[str, str]:
    """Only what a script needs; the caller's credentials and cloud settings never pass."""
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "RECORDER_LOG": str(log),
        "RECORDER_PROJECT": project,
        "RECORDER_SERVICE_URLS": json.dumps(dict(service_urls)),
        # Should the script call the real gcloud by its full path, it finds no account.
        "CLOUDSDK_CONFIG": str(home / "gcloud-config"),
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = _DEAD_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


@dataclass(frozen=True)
class _PathMap:
    """Rewrites paths inside the throwaway copy (deleted after the run) to the originals."""

    copy_root: Path
    tree: Path
    files: Mapping[str, str | os.PathLike]

    def __call__(self, word: str) -> str:
        if str(self.copy_root) not in word:
            return word
        for relative, source in self.files.items():
            word = word.replace(str(self.copy_root / relative), str(Path(source).resolve()))
        return word.replace(str(self.copy_root), str(self.tree))


def _read_calls(log: Path, to_original: _PathMap) -> list[RecordedCall]:
    """The recorded calls, with paths in the copy pointing at the original files."""
    if not log.is_file():
        return []
    calls = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        argv = tuple(to_original(word) for word in entry["argv"])
        calls.append(RecordedCall(entry["program"], argv, to_original(entry["cwd"])))
    return calls
