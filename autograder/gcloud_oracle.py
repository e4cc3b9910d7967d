"""The real gcloud CLI as an offline oracle: would gcloud accept this?

gcloud parses a command's flags, and a Cloud Build config, before it asks for
credentials. Run with an empty configuration and no account, it therefore
stops at "You do not currently have an active account selected" exactly when
everything it can check locally is right, and at a usage or parse error (with
its own message) when not. That is the verdict this module returns. Points
never depend on it (gcloud_cli.py and cloudbuild_schema.py are the project's
own checks); it adds gcloud's own words to the feedback where it is installed.

Every command a student's script chose runs inside the grader's confinement
(sandbox.py: bubblewrap, or an unprivileged user with Landlock), with CPU,
memory and output limits, a fresh empty CLOUDSDK_CONFIG, an environment holding
only PATH, HOME, LANG and the CLOUDSDK_* settings below (no credentials, no
proxy or cloud variables from the caller), prompts, metadata-server lookups,
update checks and usage reporting off, and a timeout. It sees the grading tree
read-only and nothing else of the machine. Commands that read flags or
credentials from files, select a configuration, change the installation, name
files outside the submission, or log in or install (auth, components, init,
...) are never run (gcloud_cli.refusal).

    from autograder import gcloud_oracle
    if gcloud_oracle.gcloud_available():
        verdict = gcloud_oracle.validate_build_config("deployment/cloudbuild_backend_v1.yaml")
        verdict.accepted, verdict.message
        gcloud_oracle.check_command(["gcloud", "run", "deploy", "backend-v1", ...], tree=...)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autograder import gcloud_cli, sandbox
from autograder.workspace import workspace

# The project every oracle run pretends to be in, so commands get past
# "the required property [project] is not set" to the credentials check.
ORACLE_PROJECT = "oracle-offline-project"
DEFAULT_TIMEOUT = 60.0
# Two gcloud processes at a time: each is mostly Python start-up on one core.
DEFAULT_WORKERS = 2
# gcloud parsing one command: a second or two of CPU and a few hundred MB.
ORACLE_LIMITS = sandbox.Limits(
    cpu_seconds=30, memory_bytes=3 << 30, file_bytes=4 << 20, processes=64, scratch_bytes=64 << 20
)

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
REJECTED = "rejected"  # refused by gcloud (or by the project's own check): the message says why
NOT_RUN = "not_run"  # not a gcloud command, or one of _NEVER_RUN
REFUSED = "refused"  # never replayed: it would read outside the submission (gcloud_cli.refusal)
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
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
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
    tree: str | os.PathLike | None = None,
) -> OracleVerdict:
    """Would gcloud accept `argv` (["gcloud", "run", "deploy", ...])?

    `tree` is the grading tree: files the command names must be inside it, and
    gcloud sees it read-only. `cwd` matters for commands that read local files
    (a --config path, a source folder). `config_dir` is a CLOUDSDK_CONFIG to
    start from; it is copied, so `gcloud config set` calls recorded earlier can
    be replayed into one first.
    """
    argv = tuple(str(word) for word in argv)
    not_run = _not_run(argv, tree, cwd)
    if not_run is not None:
        return not_run
    executable = gcloud_path()
    if executable is None:
        return OracleVerdict(INCONCLUSIVE, argv, "gcloud is not installed on this machine")
    with workspace("gcloud-") as space:
        config = space.scratch / "config"
        if config_dir is not None:
            shutil.copytree(config_dir, config)
        else:
            config.mkdir()
        return _run_confined(executable, argv, cwd, config, space, tree, timeout)


def _not_run(argv: tuple[str, ...], tree, cwd) -> OracleVerdict | None:
    if not argv or Path(argv[0]).name != "gcloud":
        return OracleVerdict(NOT_RUN, argv, "not a gcloud command")
    first = next(iter(gcloud_cli.command_words(argv)), "")
    if first in _NEVER_RUN:
        return OracleVerdict(NOT_RUN, argv, f"`gcloud {first}` is never run by the oracle")
    refused = gcloud_cli.refusal(argv, tree=Path(tree) if tree else None, cwd=cwd)
    if refused:
        return OracleVerdict(REFUSED, argv, f"not replayed: {refused}")
    return None


def _run_confined(executable, argv, cwd, config, space, tree, timeout: float) -> OracleVerdict:
    """Run gcloud with `argv` confined, in the isolated environment, and classify its answer.

    gcloud works on a copy of `tree` (or of `cwd`) inside its own workspace, with
    every path into the original rewritten: the original may be in a folder the
    confined user cannot enter, and nothing else of the machine is shown to it.
    """
    home = space.scratch / "home"
    home.mkdir(exist_ok=True)
    source = Path(tree) if tree is not None else Path(cwd) if cwd and Path(cwd).is_dir() else None
    copy = space.scratch / "tree"
    words = list(argv)
    start_in = space.scratch
    if source is not None:
        shutil.copytree(source, copy, symlinks=True, ignore=_NOT_COPIED)
        original = str(source)
        words = [w.replace(original, str(copy)) for w in words]
        if cwd is not None and Path(cwd).is_dir():
            start_in = Path(str(cwd).replace(original, str(copy)))
    try:
        outcome = sandbox.run(
            [executable, *words[1:]],
            space,
            cwd=start_in if start_in.is_dir() else space.scratch,
            env=isolated_env(config, home),
            readable=[_sdk_root(executable)],
            limits=ORACLE_LIMITS,
            timeout=timeout,
        )
    except sandbox.SandboxError as exc:
        return OracleVerdict(INCONCLUSIVE, argv, f"gcloud could not run confined: {exc}")
    if outcome.timed_out:
        return OracleVerdict(INCONCLUSIVE, argv, f"gcloud did not finish in {timeout:g} s")
    if outcome.stopped:
        return OracleVerdict(INCONCLUSIVE, argv, f"gcloud was stopped ({outcome.stopped})")
    stderr = outcome.stderr
    if source is not None:
        stderr = stderr.replace(str(copy), str(source))
    stderr = stderr.replace(str(space.scratch) + "/", "")
    return classify(argv, outcome.exit_code, outcome.stdout, stderr)


# Never copied for gcloud: environments and caches a caller's folder may hold.
_NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)


def _sdk_root(executable: str) -> Path:
    """The Cloud SDK folder gcloud runs from (bin/gcloud's grandparent)."""
    return Path(os.path.realpath(executable)).parents[1]


def check_commands(
    commands: Iterable[Sequence[str]],
    *,
    cwd: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    tree: str | os.PathLike | None = None,
) -> list[OracleVerdict]:
    """check_command for each command, a few at a time; verdicts in the same order.

    `gcloud config set ...` commands are applied first, in order, to one shared
    throwaway configuration that every other command then starts from, the way
    they would have in the script that ran them.
    """
    commands = [tuple(str(word) for word in command) for command in commands]
    with workspace("gcloud-shared-") as shared_space:
        shared = shared_space.keep / "config"
        shared.mkdir()
        verdicts: dict[int, OracleVerdict] = {}
        for index, command in enumerate(commands):
            if _is_config_set(command):
                verdicts[index] = _config_set(command, shared, cwd, timeout, tree)
        # The same command twice (e.g. `config get-value project` in every script) runs once.
        unique = {commands[i] for i in range(len(commands)) if i not in verdicts}
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                command: pool.submit(
                    check_command, command, cwd=cwd, timeout=timeout, config_dir=shared, tree=tree
                )
                for command in sorted(unique)
            }
            results = {command: future.result() for command, future in futures.items()}
        for index, command in enumerate(commands):
            verdicts.setdefault(index, results.get(command))
    return [verdicts[index] for index in range(len(commands))]


def _is_config_set(command: tuple[str, ...]) -> bool:
    return gcloud_cli.command_words(command)[:2] == ["config", "set"]


def _config_set(command, shared: Path, cwd, timeout: float, tree) -> OracleVerdict:
    """Run a `gcloud config set` into the shared configuration (a copy, written back)."""
    not_run = _not_run(command, tree, cwd)
    if not_run is not None:
        return not_run
    executable = gcloud_path()
    if executable is None:
        return OracleVerdict(INCONCLUSIVE, command, "gcloud is not installed on this machine")
    with workspace("gcloud-set-") as space:
        config = space.keep / "config"
        shutil.copytree(shared, config)
        verdict = _run_confined(executable, command, cwd, config, space, tree, timeout)
        shutil.rmtree(shared)
        shutil.copytree(config, shared)
    return verdict


def validate_build_config(
    path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT
) -> OracleVerdict:
    """Would `gcloud builds submit --config PATH` accept this Cloud Build config?

    gcloud reads the file with its own parser (unknown keys, wrong types and bad
    YAML are rejected with the field's path, e.g. `.steps[0].foo: unused`).
    It reads a copy, alone in its folder; `--no-source` keeps it from looking
    at, or packing, any folder. Call it only on a file the grader's own YAML
    checks (safe_yaml) accepted: an alias bomb must never reach gcloud's loader.
    """
    config = Path(path).resolve()
    if not config.is_file():
        return OracleVerdict(INCONCLUSIVE, ("gcloud",), f"no such file: {config}")
    executable = gcloud_path()
    argv = ("gcloud", "builds", "submit", "--no-source", "--config", config.name)
    if executable is None:
        return OracleVerdict(INCONCLUSIVE, argv, "gcloud is not installed on this machine")
    with workspace("gcloud-config-") as space:
        shutil.copyfile(config, space.scratch / config.name)
        (space.scratch / "config").mkdir()
        return _run_confined(executable, argv, None, space.scratch / "config", space, None, timeout)


def list_files_for_upload(
    directory: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """The files `gcloud builds submit DIRECTORY` would upload (its .gcloudignore applied).

    Raises RuntimeError when gcloud is missing or fails. Only for the project's own
    folders (trusted): it runs unconfined.
    """
    executable = gcloud_path()
    if executable is None:
        raise RuntimeError("gcloud is not installed on this machine")
    directory = Path(directory).resolve()
    # The project's own folders only (its tests): trusted, so not confined.
    with workspace("gcloud-list-") as space:
        (space.scratch / "home").mkdir()
        outcome = sandbox.unconfined().run(
            [executable, "meta", "list-files-for-upload", str(directory)],
            space,
            cwd=directory,
            env=isolated_env(space.scratch / "config", space.scratch / "home"),
            limits=ORACLE_LIMITS,
            timeout=timeout,
        )
    if outcome.exit_code != 0:
        raise RuntimeError(f"gcloud meta list-files-for-upload failed: {outcome.stderr.strip()}")
    return sorted(line for line in outcome.stdout.splitlines() if line.strip())
