"""Everything the checks of one grading run share, each computed once.

A script is run once even though several rubric items look at what it did; a
config is parsed once even though six items ask about it. A computation that
fails is remembered as its CheckFailed, so every item that depends on it
reports the same cause.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignment, cloudbuild, deliverables
from autograder.feedback import CheckFailed
from autograder.gcloud_cli import command_words
from autograder.oracle import Oracle
from autograder.safe_yaml import load_yaml_text
from autograder.script_runner import ScriptRun, run_script
from autograder.shell_words import gcloud_key_values
from autograder.submission import Submission
from autograder.timer import waiting_for_shared_work

# The photo the live probe uploads to a backend's /predict (Chelsea the cat,
# from scikit-image's samples, CC0: see probe_image.jpg.license). Shipped with
# the grader, so the probe depends on the student's service only.
PROBE_IMAGE = Path(__file__).with_name("probe_image.jpg")
# Copied into the tree scripts run in: what the Dockerfiles and scripts refer to.
# The rest of the repository (tests/, the grader, instructor files) stays out of reach.
_TREE_IGNORE = (
    ".git",
    ".venv",
    "venv",
    "solution",
    "docs",  # instructor documents: some explain the written questions' answers
    "*.instructor.*",
    "tests",
    "bench",
    "autograder",
    "build",
    "dist",
    "__pycache__",
    # Tools' caches in the master (mypy's is tens of MB): copied for every script
    # run and gcloud check, they cost time, and the oracle's confined copy fails.
    ".*_cache",
    "node_modules",
    "*.pyc",
    ".flask_session",
)


@dataclass
class Options:
    live: bool = False
    allow_local_urls: bool = False
    probe_image: Path = PROBE_IMAGE
    probe_image_url: str | None = None  # also ask /predict to fetch this URL (no points)
    script_timeout: float = 30.0
    probe_timeout: float = 30.0
    oracle_cache: Path | None = None
    use_gcloud: bool = True
    project: str = "student-project-123"


@dataclass
class GradingContext:
    submission: Submission
    options: Options = field(default_factory=Options)
    oracle: Oracle | None = None
    _memo: dict = field(default_factory=dict, repr=False)
    _scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    _locks: dict = field(default_factory=dict, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.oracle is None:
            self.oracle = Oracle(self.options.oracle_cache, use_gcloud=self.options.use_gcloud)

    # -- memoisation -----------------------------------------------------------------
    def memo(self, key, compute: Callable):
        """compute() once per key; a CheckFailed is remembered and raised again.

        Thread-safe (the engine's prefetch fills the memo from a pool): one lock
        per key. Shared work is no check's own (timer.py): whether a check waits
        for a value another thread is computing or computes it itself, its clock
        stops; that work (a script's run, gcloud's verdict) has limits of its own.
        """
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            with waiting_for_shared_work():  # another check's (or the prefetch's) work
                lock.acquire()
        try:
            if key not in self._memo:
                try:
                    with waiting_for_shared_work():
                        self._memo[key] = (True, compute())
                except CheckFailed as failure:
                    self._memo[key] = (False, failure)
        finally:
            lock.release()
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def background(self, tasks: list[Callable[[], object]], workers: int, wait: bool) -> None:
        """Run tasks in this context's own pool (closed with it); their failures are
        remembered by the memo and reported by the checks that need them."""
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
        futures = [self._pool.submit(_quietly, task) for task in tasks]
        if wait:
            for future in futures:
                future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    # -- student files ---------------------------------------------------------------
    def text(self, logical: str) -> str:
        return self.memo(("text", logical), lambda: self.submission.read(logical))

    def template_text(self, logical: str) -> str | None:
        template = assignment.TEMPLATES.get(logical)
        if template is None:
            return None
        path = self.submission.assignment_file(template)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    # -- Cloud Build configs ---------------------------------------------------------
    def config(self, component: str) -> cloudbuild.BuildConfig:
        logical = assignment.cloudbuild_file(component)

        def compute():
            data = load_yaml_text(self.text(logical), logical)
            return cloudbuild.read_config(data, logical, self.submit_substitutions(component))

        return self.memo(("config", component), compute)

    def submit_substitutions(self, component: str) -> dict[str, str]:
        """--substitutions the submit script passes (they override the config's defaults)."""
        try:
            run = self.script_run(assignment.submit_script(component))
        except CheckFailed:
            return {}
        values: dict[str, str] = {}
        for call in run.gcloud_calls:
            if command_words(call.command)[:2] != ["builds", "submit"]:
                continue
            raw = call.flag("--substitutions")
            if raw:
                values.update(gcloud_key_values(raw))
        return values

    # -- deliverables ----------------------------------------------------------------
    def services(self) -> dict:
        return self.memo(("deliverables",), lambda: deliverables.load(self.text(deliverables.FILE)))

    def version_urls(self, version: str) -> dict[str, deliverables.ServiceUrl]:
        return self.memo(
            ("urls", version),
            lambda: deliverables.version_urls(
                self.services(), version, self.options.allow_local_urls
            ),
        )

    def known_service_urls(self) -> dict[str, str]:
        """Service name -> URL from deliverables.yaml, for the recorder's `describe` answers."""
        urls: dict[str, str] = {}
        for version in assignment.VERSIONS:
            try:
                for service in self.version_urls(version).values():
                    if service.service_name:
                        urls[service.service_name] = service.url
            except CheckFailed:
                continue
        return urls

    # -- scripts ---------------------------------------------------------------------
    def grading_tree(self) -> Path:
        """The assignment's tree with the student's files in place, built once."""
        return self.memo(("tree",), self._build_tree)

    def _build_tree(self) -> Path:
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="autograder-")
            tree = Path(self._scratch.name) / "tree"
            shutil.copytree(
                self.submission.assignment_root,
                tree,
                ignore=shutil.ignore_patterns(*_TREE_IGNORE),
                symlinks=True,
            )
            for logical, source in self.submission.files.items():
                if source.is_symlink() or not source.is_file():
                    continue
                target = tree / logical
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                if logical.endswith(".sh"):
                    target.chmod(0o755)
        return Path(self._scratch.name) / "tree"

    def script_run(self, logical: str) -> ScriptRun:
        def compute():
            self.submission.require(logical)
            tree = self.grading_tree()
            run = self._run(logical, tree, ())
            if not run.succeeded and not run.timed_out and _wants_arguments(tree / logical):
                # A script with a required argument gets the project id, the usual one.
                retry = self._run(logical, tree, (self.options.project,))
                if retry.succeeded:
                    return retry
            return run

        return self.memo(("run", logical), compute)

    def _run(self, logical: str, tree: Path, args: tuple[str, ...]) -> ScriptRun:
        return run_script(
            logical,
            tree=tree,
            project=self.options.project,
            service_urls=self.known_service_urls(),
            args=args,
            cwd=".",
            timeout=self.options.script_timeout,
            isolate=True,
        )

    def command_verdicts(self, logical: str):
        """[(call, verdict)] for every gcloud call the script made, via the cached oracle."""

        def compute():
            calls = self.script_run(logical).gcloud_calls
            verdicts = self.oracle.check_commands(calls, tree=self.grading_tree())
            return list(zip(calls, verdicts, strict=True))

        return self.memo(("verdicts", logical), compute)

    def config_verdict(self, component: str):
        """gcloud's verdict on the config, asked only once our safe parser accepted it
        (an alias bomb never reaches gcloud's own YAML loader)."""
        logical = assignment.cloudbuild_file(component)

        def compute():
            self.config(component)
            return self.oracle.validate_config(self.submission.require(logical))

        return self.memo(("config-verdict", component), compute)

    def logical_path(self, value: str, cwd: str) -> str | None:
        """A path a recorded command named, as a repo-relative name (None if outside)."""
        tree = self.grading_tree().resolve()
        path = Path(value) if os.path.isabs(value) else Path(cwd) / value
        try:
            relative = Path(os.path.normpath(path)).relative_to(tree)
        except ValueError:
            return None
        return relative.as_posix() or "."


def _quietly(task: Callable[[], object]) -> None:
    """A background task: its failures are remembered by the memo and reported by the checks."""
    with contextlib.suppress(Exception):
        task()


def _wants_arguments(script: Path) -> bool:
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(marker in text for marker in ("$1", "${1", "$@", "getopts", "$#"))
