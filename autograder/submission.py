"""Find a submission's student-authored files, in a full repo copy or a flat upload.

Everything else a check needs (Dockerfiles, app code, templates) comes from the
assignment's own tree, so a flat upload of only the student's files grades the
same as a full copy of the repo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignment
from autograder.feedback import CheckFailed

# Folders never searched in a flat upload: tool caches, virtual environments,
# and a reference solution that happened to be copied along.
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    "__MACOSX",
    "solution",
}
_MAX_FILES_SCANNED = 20_000


@dataclass
class Submission:
    root: Path
    assignment_root: Path
    files: dict[str, Path] = field(default_factory=dict)  # logical name -> actual file
    layout: str = "repo"  # "repo" (a full copy) or "flat" (files found by name)

    @property
    def name(self) -> str:
        return self.root.name

    def path(self, logical: str) -> Path | None:
        return self.files.get(logical)

    def require(self, logical: str) -> Path:
        """The student file, or a CheckFailed saying where it was expected."""
        found = self.files.get(logical)
        if found is None:
            expected = (
                f"{logical} in the repository"
                if self.layout == "repo"
                else f"a file named {Path(logical).name} in the upload"
            )
            raise CheckFailed(
                what="the file is missing",
                expected=expected,
                found="no such file",
                fix=f"create {logical} from its template (see the README) and submit it",
                where=logical,
            )
        if found.is_symlink():
            raise CheckFailed(
                what="the file is a symbolic link",
                expected="a regular file",
                found=f"a link to {os.readlink(found)}",
                fix="submit the file itself, not a link to it",
                where=logical,
            )
        return found

    def read(self, logical: str) -> str:
        path = self.require(logical)
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CheckFailed(
                what="the file is not UTF-8 text",
                fix="save it as plain UTF-8 text",
                where=logical,
            ) from None

    def assignment_file(self, relative: str) -> Path:
        return self.assignment_root / relative


def load_submission(root: Path, assignment_root: Path | None = None) -> Submission:
    root = Path(root).resolve()
    assignment_root = (assignment_root or assignment.ASSIGNMENT_ROOT).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"the submission folder {root} does not exist")
    submission = Submission(root=root, assignment_root=assignment_root)
    direct = {name: root / name for name in assignment.STUDENT_FILES if (root / name).is_file()}
    # A copy of the repo has deployment/ (with the templates and Dockerfiles);
    # only an upload without it is searched by file name.
    if (root / "deployment").is_dir() or root == assignment_root:
        submission.layout = "repo"
        submission.files = direct
        answers = _short_answer_file(root, assignment_root)
        if answers:
            submission.files[assignment.SHORT_ANSWER_FILE] = answers
        return submission
    submission.layout = "flat"
    submission.files = _find_by_name(root)
    return submission


def _short_answer_file(folder: Path, assignment_root: Path) -> Path | None:
    """The filled short-answer file: one that differs from the template if there are several."""
    names = [
        child
        for child in sorted(folder.iterdir())
        if child.is_file() and child.name.lower() in assignment.SHORT_ANSWER_NAMES
    ]
    template = assignment_root / assignment.SHORT_ANSWER_FILE
    template_bytes = template.read_bytes() if template.is_file() else b""
    filled = [p for p in names if not p.is_symlink() and p.read_bytes() != template_bytes]
    return (filled or names or [None])[0]


def _find_by_name(root: Path) -> dict[str, Path]:
    """Every student file found by its base name; the shallowest match wins."""
    wanted = {Path(name).name: name for name in assignment.STUDENT_FILES}
    candidates: dict[str, list[Path]] = {}
    scanned = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            scanned += 1
            if scanned > _MAX_FILES_SCANNED:
                break
            path = Path(folder) / name
            if path.is_symlink():
                continue  # a link could point outside the upload
            logical = wanted.get(name)
            if logical is None and name.lower() in assignment.SHORT_ANSWER_NAMES:
                logical = assignment.SHORT_ANSWER_FILE
            if logical:
                candidates.setdefault(logical, []).append(path)
    found = {}
    for logical, paths in candidates.items():
        exact = [p for p in paths if p.relative_to(root).as_posix() == logical]
        found[logical] = (
            exact[0] if exact else min(paths, key=lambda p: (len(p.relative_to(root).parts), p))
        )
    return found
