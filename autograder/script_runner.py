"""Run a student's shell script safely and see which gcloud and docker commands it runs.

The script runs with `bash`, in a throwaway copy of the submission whose path
contains a space (so an unquoted path breaks as it would for a student with
one), from a working directory outside that copy (so a script that works only
from one folder shows it). Recording stand-ins for gcloud, docker, curl and
wget come first on PATH (see recording_cli.py): they log every call and answer
read-only questions (`gcloud config get-value project`, a service's URL) with
plausible values. The environment is scrubbed: no credentials, an empty gcloud
configuration, HTTP(S) proxies pointing at a closed loopback port so nothing
leaves the machine, and a timeout that ends the script's whole process group.

    from autograder.script_runner import run_script
    run = run_script("deployment/deploy_frontend_v1.sh", tree=repo_root)
    run.exit_code, run.stderr
    [call.argv for call in run.gcloud_calls]   # ("run", "deploy", "frontend-v1", ...)
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autograder import sandbox

RECORDER = Path(__file__).resolve().with_name("recording_cli.py")
RECORDED_PROGRAMS = ("gcloud", "docker", "curl", "wget")
DEFAULT_PROJECT = "student-project-123"
DEFAULT_TIMEOUT = 30.0
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
    isolated: bool = False  # ran confined by sandbox.py (no network, read-only system)

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
    isolate: bool = False,
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
    isolate       confine the script (no network, no writes outside the scratch
                  folder) when the grader runs as root; see sandbox.py
    """
    tree = Path(tree).resolve()
    if not tree.is_dir():
        raise FileNotFoundError(f"no such folder: {tree}")
    with tempfile.TemporaryDirectory(prefix="script-run-") as scratch_dir:
        scratch = Path(scratch_dir)
        copy_root = scratch / "student submission"
        shutil.copytree(tree, copy_root, ignore=shutil.ignore_patterns(*COPY_IGNORE))
        for relative, source in (files or {}).items():
            target = copy_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        script_path = copy_root / script
        if not script_path.is_file():
            raise FileNotFoundError(f"{script} is not in {tree} (nor in `files`)")
        bin_dir, home, log = scratch / "bin", scratch / "home", scratch / "calls.jsonl"
        for folder in (bin_dir, home, home / "gcloud-config", scratch / "elsewhere"):
            folder.mkdir()
        _install_recorders(bin_dir)
        run_env = _scrubbed_env(bin_dir, home, log, project, service_urls or {})
        run_env.update(env or {})
        start_in = copy_root / cwd if cwd is not None else scratch / "elsewhere"
        command = ["bash", str(script_path), *args]
        confined = False
        if isolate:
            command, extra_env, confined = sandbox.wrap(command, scratch=scratch, cwd=start_in)
            run_env.update(extra_env)
        exit_code, timed_out, stdout, stderr = _run(command, start_in, run_env, timeout)
        calls = _read_calls(log, _PathMap(copy_root, tree, files or {}))
    return ScriptRun(
        script=script,
        exit_code=exit_code,
        timed_out=timed_out,
        stdout=stdout,
        stderr=stderr,
        calls=calls,
        project=project,
        copy_root=str(copy_root),
        isolated=confined,
    )


def _install_recorders(bin_dir: Path) -> None:
    for program in RECORDED_PROGRAMS:
        wrapper = bin_dir / program
        wrapper.write_text(
            "#!/bin/sh\n"
            f'exec {shlex.quote(sys.executable)} {shlex.quote(str(RECORDER))} {program} "$@"\n'
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


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, bool, str, str]:
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout ends every child
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return process.returncode, False, stdout, stderr
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        stdout, stderr = process.communicate()
        return None, True, stdout, stderr + f"\n[stopped after {timeout:g} s]"
    finally:
        _kill_group(process.pid)  # background jobs the script left behind


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)


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
