"""The grader as instructors run it, in the three environments it meets (marker: environments).

  root                   a grading machine or a CI container
  root-no-sys-admin      root without CAP_SYS_ADMIN: how Gradescope and most Docker
                         containers look to the grader (`setpriv --bounding-set=-sys_admin`)
  non-root               an instructor's own account (`setpriv --reuid`), grading a copy
                         of the assignment it can read

In each, the reference solution gets every automatic point at every confinement
level the environment offers, and a hostile submission made here harms nothing:
canary files outside it stay unread and unchanged (another student's, a
world-readable file of the grader's own tree, a root-only file named by
--flags-file), its background children do not outlive the grader, its 300 MB of
output neither reaches the feedback nor grows the grader, and nothing it read
leaks into results.json. The group takes minutes: `make test-environments`
(CI runs it); the default run leaves it out.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from autograder import sandbox
from tests.autograder.builders import REPO_ROOT, solution_files, write_submission

pytestmark = [pytest.mark.environments, pytest.mark.slow, pytest.mark.timeout(1800)]

UNPRIVILEGED = 64123  # the non-root instructor: a uid with no account and no rights
SECRET = "root-only-secret-7c41e2"
ENVIRONMENTS = ("root", "root-no-sys-admin", "non-root")


def _reachable(path: str) -> bool:
    return all(p.stat().st_mode & 0o001 for p in Path(path).resolve().parents) and bool(
        Path(path).resolve().stat().st_mode & 0o005
    )


def _non_root_python() -> tuple[str, str] | None:
    """(an interpreter the unprivileged uid can run, the venv's site-packages for it)."""
    site = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/{version}"):
        if Path(candidate).is_file() and _reachable(candidate) and _reachable(site):
            return candidate, site
    return None


@pytest.fixture(scope="module")
def place():
    """A world-readable copy of the assignment and a folder for submissions and results."""
    if os.geteuid() != 0:
        pytest.skip("the three environments are made from root (setpriv)")
    base = Path(tempfile.mkdtemp(prefix="grader-environments-", dir="/var/lib"))
    base.chmod(0o755)
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assignment = base / "assignment"
    for name in listed:
        if (REPO_ROOT / name).is_file():
            (assignment / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, assignment / name)
    for path in [assignment, *assignment.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    work = base / "work"
    work.mkdir()
    os.chown(work, UNPRIVILEGED, UNPRIVILEGED)
    yield assignment, work
    shutil.rmtree(base, ignore_errors=True)


def grade(place, environment: str, submission: Path, *args: str) -> tuple[dict, str, int]:
    """Run `pytest autograder` in `environment`; (results.json, output, peak grader RSS kB)."""
    assignment, work = place
    results = work / f"results-{time.monotonic_ns()}.json"
    command = ["-m", "pytest", "autograder", "-p", "no:cacheprovider", "-q"]
    command += ["--submission", str(submission), "--results-json", str(results), *args]
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(work)}
    if environment == "non-root":
        found = _non_root_python()
        if found is None:
            pytest.skip("no interpreter and site-packages the unprivileged uid can read")
        python, site = found
        env["PYTHONPATH"] = site
        prefix = ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}"]
        argv = [*prefix, "--clear-groups", "--", python, *command]
    elif environment == "root-no-sys-admin":
        argv = ["setpriv", "--bounding-set=-sys_admin", "--", sys.executable, *command]
    else:
        argv = [sys.executable, *command]
    log = work / f"log-{time.monotonic_ns()}.txt"
    with log.open("w") as handle:
        process = subprocess.Popen(
            argv, cwd=assignment, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        peak = 0
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss // 1024)
            time.sleep(0.2)
    output = log.read_text(errors="replace")
    assert results.is_file(), output[-3000:]
    return json.loads(results.read_text()), output, peak


def _levels(environment: str) -> list[str]:
    if environment == "non-root":
        return ["bwrap", "user", "none"]  # user: Landlock on the grader's own uid
    return list(sandbox.LEVELS)


@pytest.mark.parametrize(
    ("environment", "level"),
    [(e, level) for e in ENVIRONMENTS for level in _levels(e)],
)
def test_the_reference_solution_gets_every_automatic_point(place, environment, level):
    submission = write_submission(place[1] / f"solution-{environment}-{level}", solution_files())
    _chmod_for_all(submission)
    data, output, _ = grade(place, environment, submission, "--confinement", level, "--no-gcloud")
    offline = [t for t in data["tests"] if "auto" in t["tags"]]
    assert sum(t["score"] for t in offline) == sum(t["max_score"] for t in offline) == 74, output
    assert data["extra_data"]["confinement"]["level"] == level
    assert f"Confinement: {level}" in output


@pytest.fixture(scope="module")
def hostile(place):
    """The reference solution with four scripts and one config replaced by hostile ones."""
    assignment, work = place
    canaries = Path(tempfile.mkdtemp(prefix="canaries-", dir="/var/lib"))
    canaries.chmod(0o755)
    other = canaries / "other-student-answers.md"
    other.write_text("another student's answers\n")
    other.chmod(0o644)
    root_only = canaries / "root-only.yaml"
    root_only.write_text(f"--region: {SECRET}\n")
    root_only.chmod(0o600)
    grader_file = assignment / "solution" / "answers.md"  # world-readable: the grader's tree
    marker = f"303.{os.getpid()}"
    files = solution_files()
    files["deployment/submit_build_backend_v1.sh"] = (
        "#!/usr/bin/env bash\n"
        f"cat {other} {grader_file} {root_only} /etc/shadow\n"
        f"echo owned >> {other}\necho owned >> {grader_file}\n"
        f"sleep {marker} &\nsetsid sleep {marker} &\n"
        f"nohup setsid bash -c 'sleep {marker}' >/dev/null 2>&1 &\nexit 0\n"
    )
    files["deployment/deploy_backend_v2.sh"] = (
        "#!/usr/bin/env bash\nyes 'output that never ends' | head -c 300000000\n"
    )
    files["deployment/deploy_backend_v1.sh"] = files["deployment/deploy_backend_v1.sh"].replace(
        '--set-env-vars="MODEL_NAME=resnet50"',
        f'--set-env-vars="MODEL_NAME=resnet50" --flags-file={root_only}',
    )
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    files["deployment/cloudbuild_frontend_v1.yaml"] = bomb
    submission = write_submission(work / f"hostile-{time.monotonic_ns()}", files)
    _chmod_for_all(submission)
    before = {p: p.read_bytes() for p in (other, grader_file, root_only)}
    yield submission, before, marker
    shutil.rmtree(canaries, ignore_errors=True)


HOSTILE_LOST = {
    "Q1.backend_v1.submit_build",  # never submits a build
    "Q3.backend_v1.deploy_runs",  # --flags-file is refused
    "Q6.backend_v2.deploy_runs",  # 300 MB of output, no deploy
    "Q6.backend_v2.deploy_service",
    "Q6.backend_v2.deploy_access",
    "Q1.frontend_v1.config_valid",  # the alias bomb
    "Q1.frontend_v1.base_build",
    "Q1.frontend_v1.app_build",
    "Q1.frontend_v1.images_pushed",
    "Q2.frontend_v1.pull_base",
    "Q2.frontend_v1.cache_from",
}  # Q1.one_repository compares the other three configs: the bomb is charged once, above


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_hostile_submission_harms_nothing_and_loses_only_its_own_points(
    place, hostile, environment
):
    submission, before, marker = hostile
    data, output, peak = grade(place, environment, submission)
    text = json.dumps(data) + output
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path} was changed"
    assert "another student's answers" not in text
    assert "Model answers" not in text  # the grader's own solution/answers.md
    assert SECRET not in text
    assert "root:" not in text  # /etc/shadow
    assert not sandbox._still_running(marker)
    assert peak < 300_000, f"the grader's memory peaked at {peak} kB"
    lost = {t["number"] for t in data["tests"] if t.get("status") == "failed" and t["max_score"]}
    assert lost == HOSTILE_LOST, lost ^ HOSTILE_LOST
    tests = {t["number"]: t for t in data["tests"]}
    assert "--flags-file" in tests["Q3.backend_v1.deploy_runs"]["output"]
    assert "expand into an enormous document" in tests["Q1.frontend_v1.config_valid"]["output"]
    assert data["extra_data"]["environment_errors"] == []


def _chmod_for_all(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)


@pytest.mark.parametrize("level", sandbox.LEVELS)
def test_a_venv_that_is_a_symbolic_link_grades_at_every_level(tmp_path, level):
    """The grader run through a .venv that links elsewhere (issue 17, 1a)."""
    link = tmp_path / ".venv"
    link.symlink_to(Path(sys.prefix))
    submission = write_submission(tmp_path / "solution", solution_files())
    results = tmp_path / "results.json"
    command = ["-m", "pytest", "autograder", "-p", "no:cacheprovider", "-q", "--no-gcloud"]
    command += ["--submission", str(submission), "--results-json", str(results)]
    graded = subprocess.run(
        [str(link / "bin" / "python"), *command, "--confinement", level],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    data = json.loads(results.read_text())
    offline = [t for t in data["tests"] if "auto" in t["tags"]]
    assert sum(t["score"] for t in offline) == 74, graded.stdout[-3000:]
