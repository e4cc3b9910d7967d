"""The sandbox at each level this machine offers: hostile scripts made here, their harm measured.

Every test runs at every confinement level whose self-test passes (as root
here: bwrap, user and none). What a level promises is asserted as promised;
at level none, what it says it does not protect is asserted too, so the
statement the grader prints is checked against what really happens.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder import sandbox, workspace
from autograder.script_runner import run_script
from tests.autograder.builders import REPO_ROOT

# Outside /tmp, /var/tmp and /dev/shm, which the user level lets scripts use.
CANARY_BASE = "/var/lib" if os.geteuid() == 0 else str(Path.home())


@pytest.fixture(params=sandbox.LEVELS)
def level(request, monkeypatch) -> sandbox.Confinement:
    """Each level, made the process's current one (skipped where its self-test fails)."""
    try:
        confinement = sandbox._tested(request.param)
    except Exception as exc:
        pytest.skip(f"{request.param} is not available on this machine: {exc}")
    monkeypatch.setitem(sandbox._selected, "current", confinement)
    return confinement


@pytest.fixture
def canaries():
    """World-readable files outside the submission: another student's, and the grader's own."""
    folder = Path(tempfile.mkdtemp(prefix="canaries-", dir=CANARY_BASE))
    folder.chmod(0o755)
    outside = folder / "answers.md"
    outside.write_text("another student's answers\n")
    outside.chmod(0o644)
    grader_file = REPO_ROOT / "solution" / "answers.md"  # world-readable in this checkout
    assert grader_file.stat().st_mode & 0o004
    yield {"outside": outside, "grader": grader_file}
    shutil.rmtree(folder)


def _script(tmp_path: Path, text: str) -> Path:
    tree = tmp_path / "submission"
    tree.mkdir(exist_ok=True)
    (tree / "hostile.sh").write_text(text)
    return tree


def _protects_files(confinement: sandbox.Confinement) -> bool:
    return confinement.level == "bwrap" or (
        confinement.level == "user" and confinement.landlock_abi > 0
    )


def test_files_outside_the_copy_stay_unread_and_unchanged(level, canaries, tmp_path):
    before = {name: path.read_bytes() for name, path in canaries.items()}
    # Writes go to the other student's file only: at level none they succeed, by design,
    # and this checkout's solution/ must stay intact.
    tree = _script(
        tmp_path,
        'for f in {outside} {grader}; do cat "$f" && echo "READ $f"; done\n'
        "echo owned >> {outside} && echo WROTE\nexit 0\n".format(**canaries),
    )
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=20)
    assert run.confinement == level.level
    assert canaries["grader"].read_bytes() == before["grader"]
    if _protects_files(level) or level.dedicated_users:
        assert canaries["outside"].read_bytes() == before["outside"]
        assert "WROTE" not in run.stdout
    if _protects_files(level):
        assert "READ" not in run.stdout, run.stdout
        assert "another student's answers" not in run.stdout + run.stderr
        assert "Model answers" not in run.stdout + run.stderr
    else:
        assert f"READ {canaries['outside']}" in run.stdout  # exactly what the statement warns


def test_a_script_runs_unprivileged_without_network(level, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    # At level none (root here) writing /etc would succeed: that level is not asked to.
    etc = "touch /etc/confined-was-here 2>/dev/null && echo wrote-etc\n"
    tree = _script(
        tmp_path,
        "id -u\n"
        f"if (exec 5<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo net-open; "
        "else echo net-cut; fi\n" + (etc if level.level != "none" else ""),
    )
    try:
        run = run_script("hostile.sh", tree=tree, cwd=".", timeout=20)
    finally:
        server.close()
    uid, net, *rest = run.stdout.split()
    assert rest == []
    assert not Path("/etc/confined-was-here").exists()
    if level.level != "none":
        assert uid != "0"
    if level.level == "bwrap" or level.landlock_abi >= 4:
        assert net == "net-cut"
    else:
        assert net == "net-open"  # what the statement says: the network stays open


def test_background_children_end_with_the_run(level, tmp_path):
    marker = f"300.{os.getpid()}{time.monotonic_ns() % 100000}"
    tree = _script(
        tmp_path,
        f"sleep {marker} &\nsetsid sleep {marker} &\n"
        f"nohup setsid bash -c 'sleep {marker}' >/dev/null 2>&1 &\nexit 0\n",
    )
    started = time.monotonic()
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=20)
    assert run.exit_code == 0
    assert time.monotonic() - started < 15  # the run did not wait for its children
    assert not sandbox._still_running(marker)


def test_huge_output_goes_to_a_capped_file_not_to_memory(level, tmp_path):
    tree = _script(tmp_path, "yes 'a line of output that never ends' | head -c 300000000\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=60)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 100_000, f"the grader grew by {grown_kb} kB"
    assert len(run.stdout) < 100_000
    assert "[output stopped at 16 MB" in run.stdout
    assert not run.succeeded


def test_the_scratch_space_has_a_size_limit(level, tmp_path):
    limits = sandbox.Limits(scratch_bytes=8 << 20, file_bytes=4 << 20)
    tree = _script(
        tmp_path,
        "for i in $(seq 1 100); do head -c 3000000 /dev/zero > fill-$i || exit 3; done\n"
        "echo wrote-all\n",
    )
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=60, limits=limits)
    assert "wrote-all" not in run.stdout
    assert not run.succeeded


def test_a_timeout_ends_the_whole_tree_and_says_so(level, tmp_path):
    marker = f"301.{os.getpid()}{time.monotonic_ns() % 100000}"
    tree = _script(tmp_path, f"setsid sleep {marker} &\nwhile true; do sleep 0.1; done\n")
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=2)
    assert run.timed_out
    assert "stopped after 2 s" in run.stderr
    assert not sandbox._still_running(marker)


def test_the_statement_says_what_the_level_protects(level):
    text = level.describe()
    assert text.startswith(f"Confinement: {level.level}")
    if level.level == "none":
        assert "never grade a class at this level" in text
    facts = dict(level.facts)
    assert facts["background processes"] == "ended"
    assert facts["outside file"] == ("hidden" if _protects_files(level) else "readable")


def test_a_forced_level_that_cannot_work_is_refused(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_BWRAP", "/bin/false")  # bubblewrap refusing every namespace
    with pytest.raises(sandbox.SandboxError, match="did not start"):
        sandbox.detect("bwrap")
    sandbox._tested.cache_clear()
    try:
        chosen = sandbox.detect("auto")
    finally:
        sandbox._tested.cache_clear()
    assert chosen.level != "bwrap"
    assert any(reason.startswith("bwrap:") for reason in chosen.tried)
    assert "Not available here: bwrap" in chosen.describe()


def test_a_sandbox_that_fails_to_start_is_retried_one_level_down(monkeypatch, tmp_path):
    """A run that cannot start at the chosen level degrades instead of failing the student."""
    broken = sandbox.dataclasses.replace(sandbox._tested("bwrap"), bwrap="/bin/false")
    monkeypatch.setitem(sandbox._selected, "current", broken)
    tree = _script(tmp_path, "echo still-graded\n")
    run = run_script("hostile.sh", tree=tree, cwd=".", timeout=20)
    assert run.stdout.strip() == "still-graded"
    assert run.confinement != "bwrap"
    forced = sandbox.dataclasses.replace(broken, forced=True)
    monkeypatch.setitem(sandbox._selected, "current", forced)
    with pytest.raises(sandbox.SandboxError):
        run_script("hostile.sh", tree=tree, cwd=".", timeout=20)


def test_temp_folders_and_processes_of_a_killed_grader_are_removed(tmp_path):
    """SIGKILL the grader mid-run: the next one (or the batch's end) cleans up after it."""
    marker = f"302.{os.getpid()}{time.monotonic_ns() % 100000}"
    tree = _script(tmp_path, f"setsid sleep {marker} &\nsleep 60\n")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from autograder.script_runner import run_script; "
            f"run_script('hostile.sh', tree={str(tree)!r}, cwd='.', timeout=120)",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "AUTOGRADER_CONFINEMENT": "user" if os.geteuid() == 0 else "none"},
    )
    session_root = workspace._root()
    deadline = time.monotonic() + 60
    while not sandbox._still_running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sandbox._still_running(marker), "the hostile script never started"
    sessions = [p for p in session_root.iterdir() if p.name.startswith(f"{child.pid}-")]
    assert sessions
    child.kill()
    child.wait()
    workspace.sweep_stale()
    if os.geteuid() == 0:
        workspace.UserPool(sandbox._kill_user).sweep()
    assert not any(p.exists() for p in sessions)
    deadline = time.monotonic() + 10
    while sandbox._still_running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sandbox._still_running(marker)


def test_a_venv_that_is_a_symbolic_link_still_runs_the_recorders(tmp_path):
    """Issue 17, 1a: the grader started through a .venv linking elsewhere (here, into /tmp)."""
    link = tmp_path / ".venv"
    link.symlink_to(Path(sys.prefix))
    tree = _script(tmp_path, "gcloud config get-value project\n")
    probe = subprocess.run(
        [
            str(link / "bin" / "python"),
            "-c",
            "from autograder.script_runner import run_script; "
            f"run = run_script('hostile.sh', tree={str(tree)!r}, cwd='.', timeout=30); "
            "print(run.confinement, run.exit_code, run.stdout.strip(), len(run.gcloud_calls))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    level, code, project, calls = probe.stdout.split()
    assert level == sandbox.current().level  # the strongest here, not a fallback
    assert (code, project, calls) == ("0", "student-project-123", "1"), probe.stderr
