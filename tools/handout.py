"""`make handout`: the student release and the Gradescope autograder, built from this repo.

    python -m tools.handout [--out build]

build/handout/                   the student release: the repo without solution/ and
                                 the other instructor-only files, every student file
                                 present as its untouched template
build/handout.zip                the same, zipped
build/gradescope_autograder.zip  setup.sh, run_autograder, autograder_args and source/
                                 (the release plus the grader)

The release is generated, never edited by hand (Otter-Grader's assign step):
a check refuses to build when any released file has the content of a
solution file, so a solution copied into deployment/ cannot leak.
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

# Instructor-only paths (relative to the repo root); globs allowed. Test
# modules that read solution/ are left out as well (see _instructor_test).
INSTRUCTOR_ONLY = (
    "solution",
    "docs",  # instructor guide, design notes that answer written questions, performance
    "tests/autograder",  # the grader's self-tests
    "*.instructor.*",
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


# A test module that reads the reference solution cannot run without it.
_USES_SOLUTION = re.compile(r"""["']solution(?:/|["'])""")


def _instructor_test(path: Path, relative: str) -> bool:
    return (
        relative.startswith("tests/")
        and path.suffix == ".py"
        and bool(_USES_SOLUTION.search(path.read_text(encoding="utf-8", errors="replace")))
    )


def released_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if _matches(relative, NEVER) or _matches(relative, INSTRUCTOR_ONLY):
            continue
        if path.is_file() and not path.is_symlink() and not _instructor_test(path, relative):
            files.append(path)
    return files


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


def build_release(root: Path, release: Path) -> Path:
    if release.exists():
        shutil.rmtree(release)
    for source in released_files(root):
        target = release / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    _student_files(release, root)
    _refuse_solution_content(release, root)
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
