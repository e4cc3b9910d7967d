"""`make handout`: the student release and the Gradescope autograder, built from this repo.

    python -m tools.handout [--out build]

build/handout/                   the student release (below)
build/handout.zip                the same, zipped
build/gradescope_autograder.zip  setup.sh, run_autograder, autograder_args and the release
                                 (with the grader), all at the zip's root: Gradescope
                                 extracts it into /autograder/source
build/gradescope_setup.md        the assignment's outline on Gradescope: the autograder's
                                 points and the written questions, summing to 100

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

# Gradescope builds the autograder image by running setup.sh as root on its
# Ubuntu 22.04 or 24.04 base. The grader needs Python 3.11, which 24.04's archive
# no longer has: uv (bootstrapped from PyPI by the system Python) creates the
# venv from a python3.11 the system has, else from a managed CPython 3.11 it
# downloads, the same build on both images. The deadsnakes PPA would be a second
# package source to trust and lags new Ubuntu releases. Managed Pythons go to a
# world-readable folder so the grader's confined users can run the recorders.
SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# python3 and its venv module bootstrap uv; bubblewrap confines student scripts
# (Gradescope's containers usually refuse namespaces: the grader then confines
# them as an unprivileged user, see docs/grader-trust.md); setpriv is in util-linux.
apt-get install -y -qq --no-install-recommends \\
  ca-certificates python3 python3-venv bubblewrap util-linux >/dev/null
python3 -m venv /opt/autograder/uv
/opt/autograder/uv/bin/python -m pip install --quiet --upgrade pip
/opt/autograder/uv/bin/python -m pip install --quiet "uv==UV_VERSION"
export UV_PYTHON_INSTALL_DIR=/opt/autograder/python
/opt/autograder/uv/bin/uv venv --quiet --python 3.11 /autograder/venv
/opt/autograder/uv/bin/uv pip install --quiet --python /autograder/venv/bin/python \\
  -r /autograder/source/autograder/requirements.txt
chmod -R a+rX /opt/autograder
# The grader checks its sandbox before any submission: fail the build, not a student.
cd /autograder/source || exit 1
/autograder/venv/bin/python -c 'from autograder import sandbox; print(sandbox.detect().describe())'
# Optional: install the Google Cloud CLI here for gcloud's own words in the
# feedback. Points never depend on it: the grader carries gcloud's offline rules.
"""
UV_VERSION = "0.13.9"

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission; the submission is in
# /autograder/submission (a flat upload or a copy of the repo).
cd /autograder/source || exit 1
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


def setup_sh() -> str:
    return SETUP_SH.replace("UV_VERSION", UV_VERSION)


def gradescope_outline() -> str:
    """How to set up the Gradescope assignment so its points sum to the scoring table."""
    from autograder.rubric import load_rubric

    rubric = load_rubric()
    automatic = [i for i in rubric.items if i.kind != "manual"]
    offline = sum(i.points for i in automatic if i.kind == "auto")
    live = sum(i.points for i in automatic if i.kind == "live")
    lines = [
        "# Gradescope setup (generated by `make handout` from autograder/rubric.yaml)",
        "",
        "Create a **Programming Assignment** and upload `gradescope_autograder.zip`",
        "(Ubuntu 22.04 or 24.04 base image). Then set its outline to:",
        "",
        "| outline entry | points | graded by |",
        "| --- | ---: | --- |",
        f"| Autograder | {offline + live:g} | the autograder: {offline:g} offline checks "
        f"+ {live:g} `--live` probes |",
    ]
    for item in rubric.items:
        if item.kind == "manual":
            lines.append(f"| {item.question} written answer | {item.points:g} | you, by hand |")
    lines += [
        f"| **total** | **{rubric.total:g}** | |",
        "",
        "The autograder's results.json scores only its automatic points, so its maximum",
        f"is {offline + live:g}: the written answers are Gradescope questions of the same",
        "assignment, graded with the model answers in solution/answers.md. Checks not",
        "graded yet (a live probe in a run without `--live`) show as neutral, never failed.",
        "`autograder_args` in the zip holds the grader's options (`--live` by default).",
        "See docs/grader-trust.md for what the grader isolates on Gradescope.",
    ]
    return "\n".join(lines) + "\n"


def build_gradescope_zip(release: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        _text(bundle, "setup.sh", setup_sh(), executable=True)
        _text(bundle, "run_autograder", RUN_AUTOGRADER, executable=True)
        for path in sorted(release.rglob("*")):
            if path.is_file():
                # Gradescope extracts the zip into /autograder/source: the release
                # goes at the zip's root, beside setup.sh and run_autograder.
                _add(bundle, path, path.relative_to(release).as_posix())
        _text(bundle, "autograder_args", AUTOGRADER_ARGS)
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
    (out / "gradescope_setup.md").write_text(gradescope_outline(), encoding="utf-8")
    print(f"student release: {release} (+ {out / 'handout.zip'})")
    print(f"Gradescope autograder: {out / 'gradescope_autograder.zip'}")
    print(f"Gradescope outline: {out / 'gradescope_setup.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
