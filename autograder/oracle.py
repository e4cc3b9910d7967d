"""The verdicts the checks use: the project's own rules decide, gcloud adds its words.

Whether a Cloud Build config or a gcloud command would be refused is decided by
the project's own checks (cloudbuild_schema.py, gcloud_cli.py: gcloud's offline
rules, vendored), so a submission gets the same points wherever it is graded.
Where gcloud is installed, its own verdict (gcloud_oracle, confined) is asked
too: its words join the feedback, and when it disagrees with the project's
check the disagreement is kept for the instructor (`disagreements`), never
charged to the student.

One gcloud run costs about a second; a class of thirty submissions that share
most commands would otherwise spend minutes re-asking the same question. A
gcloud verdict depends only on the command's words (with the grading tree's
location taken out) and the content of the files it names, so that is the cache
key. The cache is a folder of small JSON files: processes grading in parallel
share it, and each entry is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

from autograder import cloudbuild_schema, gcloud_cli, gcloud_oracle
from autograder.feedback import CheckFailed
from autograder.gcloud_oracle import (
    INCONCLUSIVE,
    NEEDS_CREDENTIALS,
    REFUSED,
    REJECTED,
    OracleVerdict,
)
from autograder.safe_yaml import load_yaml_file

FALLBACK_NOTE = (
    "gcloud is not installed here: the config was checked against gcloud's own rules, "
    "which the grader carries (the same verdict gcloud gives offline)"
)
_CACHE_VERSION = "2"


@dataclass(frozen=True)
class Disagreement:
    """gcloud and the project's own check gave different verdicts (for the instructor)."""

    what: str  # the config file or the command line
    project: str  # the project's verdict: "accepted" or its message
    gcloud: str  # gcloud's verdict: "accepted" or its message


class Oracle:
    """Verdicts on configs and commands. `cache_dir` None keeps gcloud's in memory only."""

    def __init__(self, cache_dir: Path | None = None, *, use_gcloud: bool = True) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.use_gcloud = use_gcloud and gcloud_oracle.gcloud_available()
        self._memory: dict[str, OracleVerdict] = {}
        self._lock = threading.Lock()
        self.disagreements: list[Disagreement] = []

    @property
    def available(self) -> bool:
        """Whether gcloud adds its words (the verdicts are the same either way)."""
        return self.use_gcloud

    def validate_config(self, path: Path) -> OracleVerdict:
        """The config's verdict. Call it only once safe_yaml accepted the file."""
        argv = ("gcloud", "builds", "submit", "--no-source", "--config", Path(path).name)
        try:
            problem = cloudbuild_schema.check(load_yaml_file(Path(path), Path(path).name))
        except CheckFailed as failure:
            # The grader's YAML safety checks refuse it (an alias bomb...): gcloud never sees it.
            return OracleVerdict(REJECTED, argv, failure.what, 1)
        project = (
            OracleVerdict(REJECTED, argv, problem, 1)
            if problem
            else OracleVerdict(NEEDS_CREDENTIALS, argv, "" if self.use_gcloud else FALLBACK_NOTE, 0)
        )
        if not self.use_gcloud:
            return project
        content = Path(path).read_bytes()
        key = _key("config", [], [content])
        words = self._cached(key, lambda: gcloud_oracle.validate_build_config(path))
        return self._combine(project, words, Path(path).name)

    def check_commands(self, calls, *, tree: Path) -> list[OracleVerdict]:
        """Verdicts on one script's recorded gcloud calls, in order.

        The project's own check decides each one (gcloud_cli.check); gcloud, where
        installed, is asked about those the grader may replay, its `config set`
        calls applied first as in gcloud_oracle.check_commands (so they are part of
        every command's cache key). Uncached commands go to gcloud together.
        """
        commands = [tuple(call.command) for call in calls]
        projects = []
        for call, command in zip(calls, commands, strict=True):
            problem = gcloud_cli.check(command, tree=tree, cwd=call.cwd)
            if problem is None:
                projects.append(OracleVerdict(NEEDS_CREDENTIALS, command, "", 0))
            else:
                kind = REJECTED
                message = problem.message if problem.refused else f"ERROR: {problem.message}"
                projects.append(OracleVerdict(kind, command, message, 1))
        if not self.use_gcloud:
            return projects
        words = self._gcloud_words(calls, commands, tree)
        return [
            self._combine(project, word, " ".join(command))
            for project, word, command in zip(projects, words, commands, strict=True)
        ]

    def _gcloud_words(self, calls, commands, tree: Path) -> list[OracleVerdict]:
        tree_text = str(tree)
        settings = [c for c in commands if _is_config_set(c)]
        keys = []
        unsafe: dict[int, OracleVerdict] = {}
        for index, (call, command) in enumerate(zip(calls, commands, strict=True)):
            words = [w.replace(tree_text, "<TREE>") for s in settings for w in (*s, "\0")]
            words += [w.replace(tree_text, "<TREE>") for w in command]
            words.append(call.cwd.replace(tree_text, "<TREE>"))
            files = sorted(_files_named(command, tree, call.cwd))
            refused = _unsafe_yaml(files)
            if refused:
                unsafe[index] = OracleVerdict("not_run", command, refused)
            keys.append(_key("command", words, [f.read_bytes() for f in files]))
        verdicts = [unsafe.get(i) or self._lookup(key) for i, key in enumerate(keys)]
        if any(v is None for v in verdicts):
            # All together (each starts from the script's `config set` calls), except
            # those naming a file the grader's YAML checks refuse: never handed to gcloud.
            asked = [i for i in range(len(commands)) if i not in unsafe]
            cwd = calls[0].cwd if calls else None
            fresh = gcloud_oracle.check_commands([commands[i] for i in asked], cwd=cwd, tree=tree)
            for index, verdict in zip(asked, fresh, strict=True):
                if verdicts[index] is None:
                    verdicts[index] = self._store(keys[index], verdict)
        return verdicts

    def _combine(self, project: OracleVerdict, gcloud: OracleVerdict, what: str) -> OracleVerdict:
        """The project's verdict, with gcloud's words; a disagreement is kept for the instructor."""
        if gcloud.kind in (INCONCLUSIVE, REFUSED) or gcloud.kind == "not_run":
            return project
        if project.rejected and gcloud.rejected:
            said = gcloud.message.splitlines()[0] if gcloud.message else ""
            return replace(project, message=f"{project.message}\ngcloud itself says: {said}")
        if project.rejected != gcloud.rejected:
            with self._lock:
                self.disagreements.append(
                    Disagreement(
                        what,
                        project.message if project.rejected else "accepted",
                        gcloud.message if gcloud.rejected else "accepted",
                    )
                )
        return project

    def _lookup(self, key: str) -> OracleVerdict | None:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        stored = self._read(key)
        if stored is not None:
            with self._lock:
                self._memory[key] = stored
        return stored

    def _store(self, key: str, verdict: OracleVerdict) -> OracleVerdict:
        if verdict.kind != INCONCLUSIVE:  # a timeout says nothing about the input
            self._write(key, verdict)
        with self._lock:
            self._memory[key] = verdict
        return verdict

    def _cached(self, key: str, compute) -> OracleVerdict:
        found = self._lookup(key)
        return found if found is not None else self._store(key, compute())

    def _read(self, key: str) -> OracleVerdict | None:
        if not self.cache_dir:
            return None
        entry = self.cache_dir / f"{key}.json"
        try:
            data = json.loads(entry.read_text())
            return OracleVerdict(
                data["kind"], tuple(data["argv"]), data["message"], data["returncode"]
            )
        except (OSError, ValueError, KeyError):
            return None

    def _write(self, key: str, verdict: OracleVerdict) -> None:
        if not self.cache_dir:
            return
        fd, temporary = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(verdict), handle)
        os.replace(temporary, self.cache_dir / f"{key}.json")


def _key(kind: str, words: list[str], contents: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in (_CACHE_VERSION, _gcloud_identity(), kind, *words):
        digest.update(part.encode() + b"\0")
    for content in contents:
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


@cache
def _gcloud_identity() -> str:
    """Which gcloud answered: a new install must not reuse the old verdicts."""
    path = gcloud_oracle.gcloud_path()
    if not path:
        return "none"
    real = Path(path).resolve()
    return f"{real}:{real.stat().st_mtime_ns}"


def _is_config_set(command: tuple[str, ...]) -> bool:
    return gcloud_oracle._is_config_set(command)


def _unsafe_yaml(files: list[Path]) -> str | None:
    """Why gcloud must not read one of these YAML files (safe_yaml refuses it), or None."""
    for path in files:
        if path.suffix.lower() not in (".yaml", ".yml", ".json"):
            continue
        try:
            load_yaml_file(path, path.name)
        except CheckFailed as failure:
            return f"not replayed: {path.name} fails the grader's YAML checks ({failure.what})"
    return None


def _files_named(argv: tuple[str, ...], tree: Path, cwd: str) -> set[Path]:
    """Files of the tree the command names (e.g. --config=x.yaml): its verdict depends on
    their content. A file outside the tree is never read: such a command is refused."""
    found = set()
    tree = Path(os.path.realpath(tree))
    for word in argv[1:]:
        value = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
        if not value or value.startswith("-") or len(value) > 4096:
            continue
        candidate = Path(cwd, value) if not os.path.isabs(value) else Path(value)
        try:
            if candidate.is_file() and tree in candidate.resolve().parents:
                found.add(candidate.resolve())
        except OSError:
            continue
    return found
