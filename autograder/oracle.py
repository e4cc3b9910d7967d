"""gcloud_oracle with a verdict cache, and the fallback when gcloud is absent.

One gcloud run costs about a second; a class of thirty submissions that share
most commands would otherwise spend minutes re-asking the same question. A
verdict depends only on the command's words (with the grading tree's location
taken out) and the content of the files it names, so that is the cache key.
The cache is a folder of small JSON files: processes grading in parallel
share it, and each entry is written atomically.

Without gcloud, a Cloud Build config is checked against check-jsonschema's
vendored Cloud Build schema instead (weaker: it allows unknown keys), and
commands are not checked; either way the verdict says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import asdict
from functools import cache
from importlib import resources
from pathlib import Path

from autograder import gcloud_oracle
from autograder.gcloud_oracle import INCONCLUSIVE, NEEDS_CREDENTIALS, REJECTED, OracleVerdict
from autograder.shell_words import gcloud_words

FALLBACK_NOTE = (
    "gcloud is not installed here, so the config was checked against the Cloud Build "
    "JSON schema instead (unknown keys are not caught)"
)
_CACHE_VERSION = "1"


class Oracle:
    """Cached verdicts. `cache_dir` None keeps them in memory for this process only."""

    def __init__(self, cache_dir: Path | None = None, *, use_gcloud: bool = True) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.use_gcloud = use_gcloud and gcloud_oracle.gcloud_available()
        self._memory: dict[str, OracleVerdict] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.use_gcloud

    def validate_config(self, path: Path) -> OracleVerdict:
        content = Path(path).read_bytes()
        if not self.use_gcloud:
            return _schema_verdict(path, content)
        key = _key("config", [], [content])
        return self._cached(key, lambda: gcloud_oracle.validate_build_config(path))

    def check_commands(self, calls, *, tree: Path) -> list[OracleVerdict]:
        """Verdicts on one script's recorded gcloud calls, in order.

        As in gcloud_oracle.check_commands, the script's `gcloud config set`
        calls are applied first, so they are part of every command's key.
        Uncached commands go to gcloud together (a few at a time).
        """
        commands = [tuple(call.command) for call in calls]
        if not self.use_gcloud:
            return [
                OracleVerdict(INCONCLUSIVE, c, "gcloud is not installed: command not checked")
                for c in commands
            ]
        tree_text = str(tree)
        settings = [c for c in commands if _is_config_set(c)]
        keys = []
        for call, command in zip(calls, commands, strict=True):
            words = [w.replace(tree_text, "<TREE>") for s in settings for w in (*s, "\0")]
            words += [w.replace(tree_text, "<TREE>") for w in command]
            words.append(call.cwd.replace(tree_text, "<TREE>"))
            files = sorted(_files_named(command, tree, call.cwd))
            keys.append(_key("command", words, [f.read_bytes() for f in files]))
        verdicts = [self._lookup(key) for key in keys]
        if any(v is None for v in verdicts):
            cwd = calls[0].cwd if calls else None
            fresh = gcloud_oracle.check_commands(commands, cwd=cwd)
            for index, (key, verdict) in enumerate(zip(keys, fresh, strict=True)):
                if verdicts[index] is None:
                    verdicts[index] = self._store(key, verdict)
        return verdicts

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
    return gcloud_words(command[1:])[:2] == ["config", "set"]


def _files_named(argv: tuple[str, ...], tree: Path, cwd: str) -> set[Path]:
    """Files the command names (e.g. --config=x.yaml), whose content the verdict depends on."""
    found = set()
    for word in argv[1:]:
        value = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
        if not value or value.startswith("-") or len(value) > 4096:
            continue
        candidate = Path(cwd, value) if not os.path.isabs(value) else Path(value)
        try:
            if candidate.is_file():
                found.add(candidate.resolve())
        except OSError:
            continue
    return found


@cache
def _cloudbuild_schema() -> dict:
    source = resources.files("check_jsonschema.builtin_schemas.vendor") / "cloudbuild.json"
    return json.loads(source.read_text(encoding="utf-8"))


def _schema_verdict(path: Path, content: bytes) -> OracleVerdict:
    import jsonschema
    import yaml

    argv = ("check-jsonschema", "--builtin-schema", "vendor.cloudbuild", str(path))
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        return OracleVerdict(REJECTED, argv, f"not valid YAML: {exc}", 1)
    validator = jsonschema.Draft7Validator(_cloudbuild_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "." + ".".join(str(p) for p in first.absolute_path) if first.absolute_path else ""
        return OracleVerdict(REJECTED, argv, f"{where or 'the config'}: {first.message}", 1)
    return OracleVerdict(NEEDS_CREDENTIALS, argv, FALLBACK_NOTE, 0)
