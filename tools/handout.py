"""`make handout`: the student release and the Gradescope autograder, built from this repo.

    python -m tools.handout [--out build]

build/handout/                   the student release (below)
build/handout.zip                the same, zipped
build/gradescope_autograder.zip  setup.sh, run_autograder, autograder_args and source/
                                 (the release plus the grader)

The release is generated from this master repository, never edited by hand
(Otter-Grader's assign step): the repository minus what only instructors and
developers use (INSTRUCTOR_ONLY), with the tests that concern students
(RELEASED_TESTS), every student file as its untouched template, and every
block between a "BEGIN MASTER ONLY" and an "END MASTER ONLY" line taken out of
the text files (the README's developer section, the Makefile's bench target).
It refuses to build when a released file has the content of a solution file,
or names an instructor-only path or section (docs/release.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from autograder import assignment  # noqa: E402

# Left out of the release (paths relative to the repo root; globs allowed).
INSTRUCTOR_ONLY = (
    "solution",
    "docs",  # instructor guide, design notes that answer written questions, performance
    "DEVELOPERS.md",
    "bench",  # benchmarks, their results and lab notes
    ".ci",
    "tools/handout.py",  # this builder: it reads solution/
    "deployment/estimate_image_sizes.py",  # the sizes behind docs/images.md (Q4's cost)
    "*.instructor.*",
)
# The tests a student's `make test` runs: the apps' public behaviour, the
# frontends, the commands and the README. Every other test stays here: the
# grader's self-tests and whatever reads solution/, the serving internals and
# the benchmarks, and the tests that demonstrate what a written question asks
# (v2's sessions and its global-variable counterexample for Q7, v3's faults for Q8).
RELEASED_TESTS = (
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/support",
    "tests/test_make_targets.py",
    "tests/test_readme.py",
    "tests/test_setup.py",
    "tests/apiclient",
    "tests/backend_v1/__init__.py",
    "tests/backend_v1/conftest.py",
    "tests/backend_v1/test_app.py",
    "tests/frontend_v1",
    "tests/frontend_v2",
    "tests/v3_gateway/__init__.py",
    "tests/v3_gateway/conftest.py",
    "tests/v3_gateway/test_app.py",
    "tests/v3_gateway/test_gateway_live.py",
    "tests/v3_gateway/test_openapi.py",
    "tests/v3_gateway/test_procfile.py",
    "tests/v3_gateway/test_routes.py",
)
# Never part of any release: tools' state, environments, build output.
NEVER = (
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.pyc",
    ".flask_session",
    "*.egg-info",
    "bench/results/*.tmp",
)
# A block of lines that only the master repository keeps.
MASTER_ONLY_BEGIN = "BEGIN MASTER ONLY"
MASTER_ONLY_END = "END MASTER ONLY"
# What a released file may not name: instructor-only paths (outside URLs), the
# developers' guide, and Markdown sections written for instructors.
_URL = re.compile(r"[a-z][a-z+.-]*://\S+")
_INSTRUCTOR_REFERENCE = re.compile(r"(?<![\w.-])(?:solution|docs)/|\bDEVELOPERS\.md\b")
_INSTRUCTOR_HEADING = re.compile(r"^#+ .*\b(?:instructors?|reference solution)\b", re.I | re.M)

TEMPLATE_DELIVERABLES = """\
# The URLs of your deployed Cloud Run services: replace each FILL-ME with the
# URL `gcloud run deploy` printed, e.g. https://backend-v1-abcdefghij-nn.a.run.app
services:
  v1:
    back_end: FILL-ME
    front_end: FILL-ME
  v2:
    back_end: FILL-ME
    front_end: FILL-ME
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3.11 python3.11-venv
python3.11 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
/autograder/venv/bin/python -m pip install -r /autograder/source/autograder/requirements.txt
# Optional: install the Google Cloud CLI in this image to use it as the
# offline oracle; without it Cloud Build configs are checked against the
# Cloud Build JSON schema instead (the grader says so in its output).
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission; the submission is in
# /autograder/submission (a flat upload or a copy of the repo).
cd /autograder/source
read -r -a extra < /autograder/source/autograder_args || true
/autograder/venv/bin/python -m pytest autograder -p no:cacheprovider \\
  --submission /autograder/submission \\
  --results-json /autograder/results/results.json \\
  "${extra[@]}" || true
"""
# --live: probe the deployed services when the student submits.
AUTOGRADER_ARGS = "--live\n"


def _matches(relative: str, patterns: tuple[str, ...]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        if "/" in pattern:
            if relative == pattern or relative.startswith(pattern + "/"):
                return True
            if fnmatch.fnmatch(relative, pattern):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def _released_test(relative: str) -> bool:
    return any(relative == kept or relative.startswith(kept + "/") for kept in RELEASED_TESTS)


def released_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if _matches(relative, NEVER) or _matches(relative, INSTRUCTOR_ONLY):
            continue
        if relative.startswith("tests/") and not _released_test(relative):
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def strip_master_only(text: str, name: str) -> str:
    """`text` without its master-only blocks (marker lines included)."""
    kept: list[str] = []
    opened_at = None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if MASTER_ONLY_BEGIN in line:
            if opened_at is not None:
                raise SystemExit(f"{name}:{number}: a master-only block opens inside another")
            opened_at = number
        elif MASTER_ONLY_END in line:
            if opened_at is None:
                raise SystemExit(f"{name}:{number}: a master-only block ends that never began")
            opened_at = None
        elif opened_at is None:
            kept.append(line)
    if opened_at is not None:
        raise SystemExit(f"{name}:{opened_at}: a master-only block never ends")
    return "".join(kept)


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # binary: copied as it is


def instructor_references(text: str, markdown: bool = False) -> list[str]:
    """The instructor-only paths (and, in Markdown, sections) `text` names, if any."""
    found = [m.group(0) for m in _INSTRUCTOR_REFERENCE.finditer(_URL.sub("", text))]
    if markdown:
        found += [m.group(0) for m in _INSTRUCTOR_HEADING.finditer(text)]
    return found


def _release_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    text = _text_of(source)
    if text is not None and MASTER_ONLY_BEGIN in text:
        stripped = strip_master_only(text, source.name)
        if source.suffix == ".md":  # no double blank line where a block was
            stripped = re.sub(r"\n{3,}", "\n\n", stripped)
        target.write_text(stripped, encoding="utf-8")


def _student_files(release: Path, root: Path) -> None:
    """Every student file as its untouched template (the release never holds answers)."""
    for logical, template in assignment.TEMPLATES.items():
        shutil.copy2(root / template, release / logical)
    deliverables = release / "deliverables.yaml"
    if not deliverables.exists():
        deliverables.write_text(TEMPLATE_DELIVERABLES)
    shutil.copy2(root / assignment.SHORT_ANSWER_FILE, release / assignment.SHORT_ANSWER_FILE)


def _refuse_solution_content(release: Path, root: Path) -> None:
    solution = root / "solution"
    if not solution.is_dir():
        return
    secret = {p.read_bytes(): p.name for p in solution.rglob("*") if p.is_file()}
    for path in release.rglob("*"):
        if path.is_file() and path.read_bytes() in secret:
            raise SystemExit(
                f"refusing to release {path.relative_to(release)}: it is "
                f"solution/{secret[path.read_bytes()]}"
            )


def _refuse_instructor_references(release: Path) -> None:
    problems = []
    for path in sorted(release.rglob("*")):
        text = _text_of(path) if path.is_file() else None
        found = instructor_references(text, path.suffix == ".md") if text else []
        if found:
            problems.append(f"  {path.relative_to(release)}: {', '.join(dict.fromkeys(found))}")
    if problems:
        raise SystemExit(
            "refusing to release files that name what students do not get "
            "(reword them, or put the lines between BEGIN/END MASTER ONLY markers):\n"
            + "\n".join(problems)
        )


def build_release(root: Path, release: Path) -> Path:
    if release.exists():
        shutil.rmtree(release)
    for source in released_files(root):
        _release_file(source, release / source.relative_to(root))
    _student_files(release, root)
    _refuse_solution_content(release, root)
    _refuse_instructor_references(release)
    return release


def _zip_folder(folder: Path, archive: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                _add(bundle, path, prefix + path.relative_to(folder).as_posix())


def _add(bundle: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, path.read_bytes())


def _text(bundle: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    bundle.writestr(info, text)


def build_gradescope_zip(release: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        _text(bundle, "setup.sh", SETUP_SH, executable=True)
        _text(bundle, "run_autograder", RUN_AUTOGRADER, executable=True)
        for path in sorted(release.rglob("*")):
            if path.is_file():
                _add(bundle, path, "source/" + path.relative_to(release).as_posix())
        _text(bundle, "source/autograder_args", AUTOGRADER_ARGS)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.handout", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    release = build_release(REPO_ROOT, out / "handout")
    _zip_folder(release, out / "handout.zip", prefix="handout/")
    build_gradescope_zip(release, out / "gradescope_autograder.zip")
    print(f"student release: {release} (+ {out / 'handout.zip'})")
    print(f"Gradescope autograder: {out / 'gradescope_autograder.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
