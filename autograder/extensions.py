"""Going-further work: found, described, never graded.

The README's optional "Going further" exercises live in files of their own:
`deployment/extensions/*` and, for deploy on push from GitHub, a workflow
under `.github/workflows/`. This module lists them after the score with what
each one appears to do and hints worth knowing, read as text only (nothing is
run): they are worth no points and never cost any.

Student files are untrusted: links are not followed, folders are walked to a
bounded depth and count, and at most MAX_BYTES of a file are read.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignment
from autograder.feedback import CheckFailed
from autograder.safe_yaml import load_yaml_text
from autograder.shell_words import split_commands

# Where extension work goes, relative to a repository-shaped submission.
EXTENSION_FOLDERS = ("deployment/extensions", ".github/workflows")
MAX_FILES = 40
MAX_DEPTH = 4
MAX_BYTES = 256 * 1024
# Graded services: an extension that makes one of them private breaks its live check.
GRADED_SERVICES = frozenset(
    f"{role}-{version}" for role in ("backend", "frontend") for version in assignment.VERSIONS
)
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "__MACOSX", "solution"}
HEADING = "Going further (feedback only: no points, never a deduction):"


@dataclass
class ExtensionFile:
    path: str  # relative to the submission, with forward slashes
    kind: str  # "shell script", "Cloud Build config", "GitHub Actions workflow", ...
    facts: list[str] = field(default_factory=list)  # what it appears to do
    hints: list[str] = field(default_factory=list)  # worth knowing, never a fault


def find_files(root: Path, layout: str) -> tuple[list[Path], bool]:
    """The extension files of a submission (no links), and whether the cap cut the list."""
    root = Path(root)
    # A flat upload: any folder named "extensions", and .github/workflows, anywhere.
    tops = [root / folder for folder in EXTENSION_FOLDERS] if layout == "repo" else [root]
    found: list[Path] = []
    for top in tops:
        if top.is_symlink() or not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top, followlinks=False):
            here = Path(folder)
            depth = len(here.relative_to(top).parts)
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and depth < MAX_DEPTH)
            if layout != "repo" and not _is_extension_folder(here.relative_to(root)):
                continue
            for name in sorted(files):
                path = here / name
                if not path.is_symlink() and path.is_file():
                    found.append(path)
                    if len(found) > MAX_FILES:
                        return found[:MAX_FILES], True
    return found, False


def _is_extension_folder(relative: Path) -> bool:
    parts = relative.parts
    return "extensions" in parts or (".github", "workflows") in itertools.pairwise(parts)


def describe(path: Path, relative: str) -> ExtensionFile:
    size = path.stat().st_size
    if size > MAX_BYTES:
        return ExtensionFile(relative, "file", [f"not read: {size} bytes is too large"])
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".sh" or text.startswith("#!"):
        return _shell(relative, text)
    if path.suffix in (".yaml", ".yml"):
        return _yaml(relative, text)
    return ExtensionFile(relative, "file", ["not a script or YAML file: listed only"])


# ---- shell scripts -----------------------------------------------------------------------


def _flag(words: list[str], name: str) -> str | None:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def _gcloud_words(words: list[str]) -> list[str]:
    """The command words after gcloud (alpha/beta dropped), flags excluded."""
    return [w for w in words[1:] if not w.startswith("-") and w not in ("alpha", "beta")]


def _shell(relative: str, text: str) -> ExtensionFile:
    note = ExtensionFile(relative, "shell script")
    try:
        commands = split_commands(text)
    except ValueError as exc:
        note.hints.append(f"could not be read as shell ({exc}); check its quotes")
        return note
    for command in commands:
        words = command.words
        if not words or Path(words[0]).name != "gcloud":
            continue
        verbs = _gcloud_words(words)
        if verbs[:2] == ["run", "deploy"] and len(verbs) > 2:
            _deploy_facts(note, verbs[2], words)
        elif "add-iam-policy-binding" in verbs:
            role = _flag(words, "--role") or "a role"
            target = verbs[verbs.index("add-iam-policy-binding") + 1 :][:1]
            where = f" on {target[0]}" if target else ""
            note.facts.append(f"grants {role}{where} to {_flag(words, '--member') or '?'}")
        elif verbs[:3] == ["builds", "triggers", "create"]:
            note.facts.append("creates a Cloud Build trigger")
        elif verbs[:2] == ["iam", "workload-identity-pools"] and "create" in verbs[2:4]:
            note.facts.append("sets up Workload Identity Federation")
        elif verbs[:3] == ["iam", "service-accounts", "create"] and len(verbs) > 3:
            note.facts.append(f"creates the service account {verbs[3]}")
        elif verbs[:3] == ["storage", "buckets", "create"]:
            note.facts.append("creates a Cloud Storage bucket")
        elif "delete" in verbs[:4] or verbs[:2] == ["storage", "rm"]:
            note.facts.append(f"removes something: gcloud {' '.join(verbs[:3])}")
    if not note.facts:
        note.facts.append("runs no gcloud command this reader recognises")
    return note


def _deploy_facts(note: ExtensionFile, service: str, words: list[str]) -> None:
    details = []
    private = "--no-allow-unauthenticated" in words
    if private:
        details.append("private (--no-allow-unauthenticated)")
    account = _flag(words, "--service-account")
    if account:
        details.append(f"runs as {account}")
    env = " ".join(
        filter(None, [_flag(words, "--set-env-vars"), _flag(words, "--update-env-vars")])
    )
    if "BACKEND_AUTH=id-token" in env:
        details.append("calls its backend with ID tokens")
    if "MODEL_WEIGHTS=gs://" in env:
        details.append("reads its weights from Cloud Storage")
    if _flag(words, "--add-volume"):
        details.append("mounts a volume")
    note.facts.append(f"deploys {service}" + (f": {', '.join(details)}" if details else ""))
    if private and service in GRADED_SERVICES:
        note.hints.append(
            f"this makes {service} private, but Q3/Q6 grade {service} as a public service "
            f"(the live check calls it without a token): deploy the private variant under "
            f"its own name, e.g. {service}-private"
        )


# ---- YAML: Cloud Build configs and GitHub workflows ----------------------------------------


def _yaml(relative: str, text: str) -> ExtensionFile:
    try:
        data = load_yaml_text(text, relative)
    except CheckFailed as exc:
        return ExtensionFile(relative, "YAML file", hints=[f"could not be read: {exc.what}"])
    if not isinstance(data, dict):
        return ExtensionFile(relative, "YAML file", ["not a mapping: listed only"])
    if "jobs" in data:
        return _workflow(relative, data, text)
    if "steps" in data:
        return _cloudbuild(relative, data)
    return ExtensionFile(relative, "YAML file", ["neither a Cloud Build config nor a workflow"])


def _cloudbuild(relative: str, data: dict) -> ExtensionFile:
    note = ExtensionFile(relative, "Cloud Build config")
    steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    deploys = []
    for step in steps:
        if not isinstance(step, dict):
            continue
        args = step.get("args") if isinstance(step.get("args"), list) else []
        words = [str(step.get("entrypoint") or ""), *map(str, args)]
        line = " ".join(words)
        if "run deploy" in line or "run services update" in line:
            deploys.append(str(step.get("name") or "?"))
    note.facts.append(f"{len(steps)} steps")
    if deploys:
        note.facts.append(f"deploys to Cloud Run (builder {deploys[0]})")
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        if not options.get("logging") and not data.get("logsBucket"):
            note.hints.append(
                "a trigger or a workflow that runs this build as its own service account "
                "needs `options: logging: CLOUD_LOGGING_ONLY` (or a logs bucket)"
            )
    else:
        note.facts.append("no step deploys (no `gcloud run deploy`)")
    return note


def _workflow(relative: str, data: dict, text: str) -> ExtensionFile:
    note = ExtensionFile(relative, "GitHub Actions workflow")
    # YAML 1.1 reads the key `on` as True.
    trigger = data.get("on", data.get(True))
    if trigger == "push" or (isinstance(trigger, (dict, list)) and "push" in trigger):
        note.facts.append("runs on push")
    uses = [
        step
        for job in (data.get("jobs") or {}).values()
        if isinstance(job, dict)
        for step in (job.get("steps") or [])
        if isinstance(step, dict) and "google-github-actions/auth" in str(step.get("uses", ""))
    ]
    inputs = [step.get("with") or {} for step in uses]
    if any(isinstance(i, dict) and "workload_identity_provider" in i for i in inputs):
        note.facts.append("signs in with Workload Identity Federation")
        if "id-token: write" not in text.replace("'", "").replace('"', ""):
            note.hints.append("Workload Identity Federation needs `permissions: id-token: write`")
    elif any(isinstance(i, dict) and "credentials_json" in i for i in inputs):
        note.hints.append(
            "signs in with a key file: Workload Identity Federation needs no stored secret"
        )
    if "FILL-ME" in text:
        note.hints.append("still holds FILL-ME placeholders")
    return note


# ---- the report ----------------------------------------------------------------------------


def review(root: Path, layout: str) -> tuple[list[ExtensionFile], bool]:
    """Every extension file described; never raises for a student's file."""
    paths, truncated = find_files(root, layout)
    notes = []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        try:
            notes.append(describe(path, relative))
        except Exception as exc:  # feedback only: a file this reader trips on is listed as such
            notes.append(
                ExtensionFile(relative, "file", hints=[f"not read ({type(exc).__name__})"])
            )
    return notes, truncated


def feedback_text(notes: list[ExtensionFile], truncated: bool = False) -> str:
    if not notes:
        return ""
    lines = [HEADING]
    for note in notes:
        lines.append(f"- {_printable(note.path)} ({note.kind})")
        lines += [f"    {_printable(fact)}" for fact in note.facts]
        lines += [f"    hint: {_printable(hint)}" for hint in note.hints]
    if truncated:
        lines.append(f"(only the first {MAX_FILES} files are listed)")
    return "\n".join(lines)


def _printable(text: str) -> str:
    """A student's text on one line, without control characters (they reach a terminal)."""
    return "".join(c if c.isprintable() else "?" for c in text)[:300]


def gradescope_entry(feedback: str) -> dict:
    """The feedback as a results.json test that is information only: like a check not
    graded yet, it has no score and no status, so Gradescope shows it neutral (a 0/0
    test would show as passed) and it adds nothing to the total."""
    return {
        "name": "Going further (feedback only, no points)",
        "number": "extensions",
        "output": feedback,
        "visibility": "visible",
        "tags": ["extensions"],
    }
