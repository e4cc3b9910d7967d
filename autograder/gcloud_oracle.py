"""The real gcloud CLI as an offline oracle: would gcloud accept this?

gcloud parses a command's flags, and a Cloud Build config, before it asks for
credentials. Run with an empty configuration and no account, it therefore
stops at "You do not currently have an active account selected" exactly when
everything it can check locally is right, and at a usage or parse error (with
its own message) when not. That is the verdict this module returns.

Every run is isolated: a fresh empty CLOUDSDK_CONFIG, an environment holding
only PATH, HOME, LANG and the CLOUDSDK_* settings below (no credentials, no
proxy or cloud variables from the caller), prompts, metadata-server lookups,
update checks and usage reporting off, and a timeout. Commands that could
change the installation or log in (components, auth, init, ...) are never run.

    from autograder import gcloud_oracle
    if gcloud_oracle.gcloud_available():
        verdict = gcloud_oracle.validate_build_config("deployment/cloudbuild_backend_v1.yaml")
        verdict.accepted, verdict.message
        gcloud_oracle.check_command(["gcloud", "run", "deploy", "backend-v1", ...])
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autograder.shell_words import gcloud_words

# The project every oracle run pretends to be in, so commands get past
# "the required property [project] is not set" to the credentials check.
ORACLE_PROJECT = "oracle-offline-project"
DEFAULT_TIMEOUT = 60.0
# Two gcloud processes at a time: each is mostly Python start-up on one core.
DEFAULT_WORKERS = 2

# What gcloud prints when it has parsed everything and needs an account next.
_CREDENTIALS_MARKERS = (
    "You do not currently have an active account selected",
    "no credentialed account",
    "does not have any valid credentials",
)
# First words after `gcloud` that are never replayed: they log in, install, or prompt.
_NEVER_RUN = frozenset(
    {"auth", "components", "init", "feedback", "survey", "interactive", "cheat-sheet", "help"}
)

# Verdict kinds.
ACCEPTED_OFFLINE = "accepted_offline"  # ran to completion offline (e.g. `config get-value`)
NEEDS_CREDENTIALS = "needs_credentials"  # parsed fine, stopped where an account is needed
REJECTED = "rejected"  # gcloud refused the command or config: its message says why
NOT_RUN = "not_run"  # not a gcloud command, or one of _NEVER_RUN
INCONCLUSIVE = "inconclusive"  # timed out or crashed: no verdict about the input


@dataclass(frozen=True)
class OracleVerdict:
    kind: str
    argv: tuple[str, ...]  # what was checked, starting with "gcloud"
    message: str  # gcloud's own words (its error, trimmed), or why nothing ran
    returncode: int | None = None

    @property
    def accepted(self) -> bool:
        return self.kind in (ACCEPTED_OFFLINE, NEEDS_CREDENTIALS)

    @property
    def rejected(self) -> bool:
        return self.kind == REJECTED


def gcloud_path() -> str | None:
    """The gcloud executable on PATH, or None."""
    return shutil.which("gcloud")


def gcloud_available() -> bool:
    return gcloud_path() is not None


def isolated_env(config_dir: str | os.PathLike, home: str | os.PathLike) -> dict[str, str]:
    """The whole environment of an oracle run: nothing of the caller's but PATH and LANG."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_PROJECT": ORACLE_PROJECT,
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_CORE_SHOW_STRUCTURED_LOGS": "never",
    }


def _gcloud_message(stderr: str) -> str:
    """gcloud's error from its stderr: from the first ERROR line on, trimmed."""
    lines = stderr.strip().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("ERROR:"):
            return "\n".join(lines[index : index + 6]).strip()
    return "\n".join(lines[-6:]).strip()


def classify(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> OracleVerdict:
    """Turn one gcloud run's outcome into a verdict (exposed for tests and reuse)."""
    argv = tuple(argv)
    if any(marker in stderr for marker in _CREDENTIALS_MARKERS):
        return OracleVerdict(NEEDS_CREDENTIALS, argv, _gcloud_message(stderr), returncode)
    if returncode == 0:
        return OracleVerdict(ACCEPTED_OFFLINE, argv, stdout.strip()[:500], returncode)
    if "ERROR:" in stderr:
        return OracleVerdict(REJECTED, argv, _gcloud_message(stderr), returncode)
    return OracleVerdict(
        INCONCLUSIVE,
        argv,
        f"gcloud exited {returncode} without an error message: {stderr.strip()[-500:]}",
        returncode,
    )


def check_command(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    config_dir: str | os.PathLike | None = None,
) -> OracleVerdict:
    """Would gcloud accept `argv` (["gcloud", "run", "deploy", ...])?

    `cwd` matters for commands that read local files (a --config path, a source
    folder). `config_dir` is a CLOUDSDK_CONFIG to start from; it is copied, so
    `gcloud config set` calls recorded earlier can be replayed into one first.
    """
    argv = tuple(str(word) for word in argv)
    if not argv or Path(argv[0]).name != "gcloud":
        return OracleVerdict(NOT_RUN, argv, "not a gcloud command")
    first = next(iter(gcloud_words(argv[1:])), "")
    if first in _NEVER_RUN:
        return OracleVerdict(NOT_RUN, argv, f"`gcloud {first}` is never run by the oracle")
    executable = gcloud_path()
    if executable is None:
        return OracleVerdict(INCONCLUSIVE, argv, "gcloud is not installed on this machine")
    with tempfile.TemporaryDirectory(prefix="gcloud-oracle-") as scratch:
        if cwd is not None and not Path(cwd).is_dir():
            cwd = scratch  # e.g. a recorded folder that no longer exists
        config = Path(scratch) / "config"
        if config_dir is not None:
            shutil.copytree(config_dir, config)
        else:
            config.mkdir()
        home = Path(scratch) / "home"
        home.mkdir()
        return _run_isolated(executable, argv, cwd, config, home, timeout)


def _run_isolated(executable: str, argv, cwd, config, home, timeout: float) -> OracleVerdict:
    """Run gcloud with `argv` in the isolated environment and classify what it said."""
    try:
        result = subprocess.run(
            [executable, *argv[1:]],
            cwd=cwd,
            env=isolated_env(config, home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return OracleVerdict(INCONCLUSIVE, argv, f"gcloud did not finish in {timeout:g} s")
    return classify(argv, result.returncode, result.stdout, result.stderr)


def check_commands(
    commands: Iterable[Sequence[str]],
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
) -> list[OracleVerdict]:
    """check_command for each command, a few at a time; verdicts in the same order.

    `gcloud config set ...` commands are applied first, in order, to one shared
    configuration that every other command then starts from, the way they
    would have in the script that ran them.
    """
    commands = [tuple(str(word) for word in command) for command in commands]
    with tempfile.TemporaryDirectory(prefix="gcloud-oracle-shared-") as shared:
        verdicts: dict[int, OracleVerdict] = {}
        for index, command in enumerate(commands):
            if _is_config_set(command):
                verdicts[index] = _config_set(command, shared, cwd, timeout)
        # The same command twice (e.g. `config get-value project` in every script) runs once.
        unique = {commands[i] for i in range(len(commands)) if i not in verdicts}
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                command: pool.submit(
                    check_command, command, cwd=cwd, timeout=timeout, config_dir=shared
                )
                for command in sorted(unique)
            }
            results = {command: future.result() for command, future in futures.items()}
        for index, command in enumerate(commands):
            verdicts.setdefault(index, results.get(command))
    return [verdicts[index] for index in range(len(commands))]


def _is_config_set(command: tuple[str, ...]) -> bool:
    return gcloud_words(command[1:])[:2] == ["config", "set"]


def _config_set(command, shared: str, cwd, timeout: float) -> OracleVerdict:
    """Run a `gcloud config set` into the shared configuration itself."""
    executable = gcloud_path()
    if executable is None:
        return OracleVerdict(INCONCLUSIVE, command, "gcloud is not installed on this machine")
    with tempfile.TemporaryDirectory(prefix="gcloud-oracle-home-") as home:
        return _run_isolated(executable, command, cwd, shared, home, timeout)


def validate_build_config(
    path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT
) -> OracleVerdict:
    """Would `gcloud builds submit --config PATH` accept this Cloud Build config?

    gcloud reads the file with its own parser (unknown keys, wrong types and bad
    YAML are rejected with the field's path, e.g. `.steps[0].foo: unused`).
    `--no-source` keeps it from looking at, or packing, any folder.
    """
    config = Path(path).resolve()
    if not config.is_file():
        return OracleVerdict(INCONCLUSIVE, ("gcloud",), f"no such file: {config}")
    return check_command(
        ["gcloud", "builds", "submit", "--no-source", "--config", str(config)],
        cwd=config.parent,
        timeout=timeout,
    )


def list_files_for_upload(
    directory: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """The files `gcloud builds submit DIRECTORY` would upload (its .gcloudignore applied).

    Raises RuntimeError when gcloud is missing or fails.
    """
    executable = gcloud_path()
    if executable is None:
        raise RuntimeError("gcloud is not installed on this machine")
    with tempfile.TemporaryDirectory(prefix="gcloud-oracle-") as scratch:
        result = subprocess.run(
            [executable, "meta", "list-files-for-upload", str(directory)],
            env=isolated_env(scratch, scratch),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"gcloud meta list-files-for-upload failed: {result.stderr.strip()}")
    return sorted(line for line in result.stdout.splitlines() if line.strip())
