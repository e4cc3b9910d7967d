"""Confine what a student wrote: layered, self-tested, and never failing on the student.

Everything the grader runs on a student's behalf (their scripts, and the real
gcloud replaying the commands they recorded) runs through `Confinement.run`,
at the strongest of three levels this machine allows:

  bwrap  Linux namespaces through bubblewrap (Debian's `bubblewrap`): the command
         sees only the system folders (read-only) and its own copy, has no network,
         its own process tree (a pid namespace: when it ends, everything it started
         ends) and a size-limited scratch space that vanishes with it. When the
         grader is root it also runs as a uid of its own. bubblewrap is the
         well-kept tool for exactly this (Flatpak's sandbox); with --unshare-user
         it works as root, as root without CAP_SYS_ADMIN and as a plain user,
         which hand-written mount scripts did not.
  user   where namespaces are refused (Docker's default seccomp profile, which
         Gradescope-like containers use) but the grader is root: a uid of its own
         per run, resource limits, and Landlock where the kernel has it (files
         outside the copy and the system folders unreadable, no TCP). Every
         process of that uid is killed at the end, so nothing outlives the run.
  none   neither (a student's laptop, macOS): the grader's own user, with resource
         limits; a subreaper ends what the command leaves behind (Linux). A
         script can read and change whatever the grading user can: never grade
         a class at this level.

`detect()` runs a self-test of each level, strongest first, before anything is
graded, and keeps the first that passes; `--confinement` (or the environment
variable AUTOGRADER_CONFINEMENT) forces one. The self-test measures what the
level protects (can the probe read a file outside, reach a loopback port?), and
`describe()` states it. A run whose sandbox fails to start raises SandboxError:
a failure of the grader's environment, which the checks never charge to the student.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from autograder import landlock
from autograder.workspace import UserPool, Workspace, chown_tree, workspace

LEVELS = ("bwrap", "user", "none")
CHOICES = ("auto", *LEVELS)
ENV_LEVEL = "AUTOGRADER_CONFINEMENT"
CONFINE = Path(__file__).resolve().with_name("confine.py")
# Read-only everywhere: what scripts and gcloud need to run.
SYSTEM_FOLDERS = ("/usr", "/etc")
# Merged-/usr systems make these symbolic links into /usr; others have real folders.
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Inside the sandbox, before the command: say "started" on fd 3 (then close it, so the
# command never has it), copy the seed into the scratch tmpfs (bwrap), limit the
# processes of a user namespace (a non-root grader's bwrap: counted in the namespace
# only, unlike a limit set outside, which would count every process of the grader's
# user), and start the command in its folder.
_PRELUDE = (
    'printf started >&3; exec 3>&-; if [ "$1" != - ]; then cp -pR "$1/." "$2/" || '
    '{ echo "the submission does not fit in the scratch space" >&2; exit 97; }; fi; '
    'if [ "$4" != - ]; then ulimit -u "$4"; fi; '
    'cd "$3" || exit 97; shift 4; exec "$@"'
)


class SandboxError(RuntimeError):
    """The sandbox itself failed: the grader's environment, never the student's doing."""


@dataclass(frozen=True)
class Limits:
    """What one confined command may use. Every process gets the rlimits on its own."""

    cpu_seconds: int = 60
    memory_bytes: int = 4 << 30  # address space: Python and gcloud reserve far more than they use
    file_bytes: int = 16 << 20  # any one file written, stdout and stderr included
    processes: int = 256  # with a uid of its own (or a user namespace): the whole run
    open_files: int = 1024
    scratch_bytes: int = 128 << 20  # what the command may add to its scratch folder
    output_kept: int = 64 << 10  # of each stream, for messages


@dataclass
class Outcome:
    exit_code: int | None  # None when stopped
    stdout: str
    stderr: str
    stopped: str = ""  # why it was stopped: "timeout", "scratch", or "" (it ended)
    output_cut: bool = False  # a stream reached Limits.file_bytes

    @property
    def timed_out(self) -> bool:
        return self.stopped == "timeout"


@dataclass(frozen=True)
class Confinement:
    level: str
    python: str  # an interpreter confined commands can run (the recorders use it)
    dedicated_users: bool  # each run gets a uid of its own (the grader is root)
    landlock_abi: int = 0  # > 0: the user level restricts files (and TCP from ABI 4)
    bwrap: str = ""
    facts: tuple[tuple[str, str], ...] = ()  # what the self-test measured
    tried: tuple[str, ...] = ()  # stronger levels that failed their self-test, and why
    forced: bool = False  # chosen by --confinement: never replaced by a weaker level
    _pool: UserPool | None = field(default=None, compare=False, repr=False)

    # -- what it protects -----------------------------------------------------------------
    def describe(self) -> str:
        """A paragraph for the grading output: the level, what it protects, what not."""
        facts = dict(self.facts)
        head = f"Confinement: {self.level} ({_SUMMARY[self.level]})."
        lines = [head]
        if self.level == "bwrap":
            lines.append(
                "Student scripts and the gcloud replays see only the system folders "
                "(read-only) and their own copy of the submission; no network; their own "
                "process tree, ended with them; a size-limited scratch space; "
                + ("a uid of their own." if self.dedicated_users else "the grading user's uid.")
            )
        elif self.level == "user":
            landlock_text = (
                f"Landlock (ABI {self.landlock_abi}) hides every file outside their copy, "
                "the system folders and /tmp, /var/tmp, /dev/shm (where permissions apply)"
                + (" and blocks TCP." if self.landlock_abi >= 4 else "; the network stays open.")
                if self.landlock_abi
                else "No Landlock in this kernel: they can read any world-readable file "
                "(keep other submissions and the reference solution out of reach: chmod o-rx) and "
                "use the network."
            )
            who = (
                "a uid of their own (never root) with CPU, memory, output, file-size and "
                "process limits; every process of that uid is killed when the run ends. "
                if self.dedicated_users
                else "the grading user with CPU, memory, output and file-size limits; a "
                "subreaper ends every process they leave behind. "
            )
            lines.append("Student scripts and the gcloud replays run as " + who + landlock_text)
        else:
            lines.append(
                "Student scripts and the gcloud replays run as the grading user, with CPU, "
                "memory and output limits: they can read and change whatever this user can. "
                "Fine for checking your own work; never grade a class at this level."
            )
        measured = ", ".join(f"{name}: {value}" for name, value in self.facts)
        if measured:
            lines.append(f"Self-test: {measured}.")
        if self.tried:
            lines.append("Not available here: " + "; ".join(self.tried) + ".")
        if facts.get("outside file") == "readable" and self.level != "none":
            lines.append("Warning: a file outside the copy was readable in the self-test.")
        return " ".join(lines)

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        command: Sequence[str],
        space: Workspace,
        *,
        cwd: Path,
        env: Mapping[str, str],
        readable: Sequence[Path] = (),
        limits: Limits = Limits(),
        timeout: float = 30.0,
        seed: bool = True,
    ) -> Outcome:
        """Run `command` confined in `space`; raises SandboxError if the sandbox fails.

        The command may change space.scratch (its content is the starting point,
        seen at the same path) and space.keep, and read `readable` (folders or files,
        read-only) besides the system folders. `cwd` is a folder in one of those.
        """
        env = dict(env)
        env.setdefault("TMPDIR", str(space.scratch / ".tmp"))
        (space.scratch / ".tmp").mkdir(exist_ok=True)
        if self.dedicated_users and self._pool is not None:
            with self._pool.user() as uid:
                chown_tree(space.scratch, uid, uid)
                chown_tree(space.keep, uid, uid)
                return self._run(command, space, cwd, env, readable, limits, timeout, seed, uid)
        return self._run(command, space, cwd, env, readable, limits, timeout, seed, None)

    def _run(self, command, space, cwd, env, readable, limits, timeout, seed, uid) -> Outcome:
        seed_bytes = _tree_bytes(space.scratch)
        status_read, status_write = os.pipe()
        argv = [*self._launcher(space, readable, limits, uid), "--status-fd", str(status_write)]
        argv += ["--", *self._inner(space, readable, limits, seed_bytes, seed)]
        argv += ["/bin/sh", "-c", _PRELUDE, "prelude"]
        argv += [str(space.root / ".seed") if self.level == "bwrap" and seed else "-"]
        inner_nproc = str(limits.processes) if self.level == "bwrap" and uid is None else "-"
        argv += [str(space.scratch), str(cwd), inner_nproc, *command]
        stdout_path, stderr_path = space.out / "stdout", space.out / "stderr"
        try:
            with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
                process = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(status_write,),
                    start_new_session=True,
                )
            os.close(status_write)
            status_write = -1
            stopped = self._wait(process, space, limits, timeout, seed_bytes, uid)
            status = _read_all(status_read)
        finally:
            if status_write >= 0:
                os.close(status_write)
            os.close(status_read)
        stdout, cut_out = _read_kept(stdout_path, limits)
        stderr, cut_err = _read_kept(stderr_path, limits)
        if not status.startswith(b"started"):
            why = status.decode(errors="replace").strip() or stderr.strip()[-500:]
            raise SandboxError(f"the {self.level} sandbox did not start: {why or 'no message'}")
        code = None if stopped else process.returncode
        if code is not None and code < 0:
            code = 128 - code  # killed by a signal, as a shell reports it
        return Outcome(code, stdout, stderr, stopped, cut_out or cut_err)

    def _launcher(self, space, readable, limits, uid) -> list[str]:
        argv = [sys.executable, "-I", "-S", str(CONFINE)]
        rlimits = {
            "cpu": limits.cpu_seconds,
            "as": limits.memory_bytes,
            "fsize": limits.file_bytes,
            "nofile": limits.open_files,
            "core": 0,
        }
        if uid is not None:
            # Counted per uid: meaningful for a uid of its own (else see _PRELUDE).
            rlimits["nproc"] = limits.processes
        for name, value in rlimits.items():
            argv += ["--rlimit", f"{name}={value}"]
        if self.level == "user" and self.landlock_abi:
            argv.append("--landlock")
            for path in (*_system_paths(), *_python_paths(self.python), *map(str, readable)):
                argv += ["--landlock-ro", path]
            writable = [space.scratch, space.keep, space.out / "stdout", space.out / "stderr"]
            for path in (*map(str, writable), *_SHARED_WRITABLE_PATHS):
                argv += ["--landlock-rw", path]
        if uid is not None:
            argv += ["--user", f"{uid}:{uid}"]
        # A pid namespace (bwrap) or a uid of its own ends every process of the run;
        # otherwise a subreaper collects and ends what the command leaves behind.
        argv.append("--die-with-parent" if self.level == "bwrap" or uid is not None else "--reap")
        return argv

    def _inner(self, space, readable, limits, seed_bytes, seed) -> list[str]:
        if self.level != "bwrap":
            return []
        argv = [self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-net"]
        argv += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534"]
        argv += ["--hostname", "grading-sandbox"]
        for folder in SYSTEM_FOLDERS:
            argv += ["--ro-bind", folder, folder]
        for link in SYSTEM_LINKS:
            if os.path.islink(link):
                argv += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                argv += ["--ro-bind", link, link]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        for shared in ("/tmp", "/var/tmp", "/dev/shm"):  # noqa: S108
            argv += ["--size", str(limits.scratch_bytes), "--tmpfs", shared]
        for path in (*_python_paths(self.python), *map(str, readable)):
            if not any(path == f or path.startswith(f + "/") for f in SYSTEM_FOLDERS):
                argv += ["--ro-bind", path, path]
        if seed:
            argv += ["--ro-bind", str(space.scratch), str(space.root / ".seed")]
        argv += ["--size", str(seed_bytes + limits.scratch_bytes)]
        argv += ["--tmpfs", str(space.scratch), "--bind", str(space.keep), str(space.keep)]
        return [*argv, "--"]

    def _wait(self, process, space, limits, timeout, seed_bytes, uid) -> str:
        """Wait for the run; stop it at the timeout or when its scratch grows too big."""
        over_size = threading.Event()
        done = threading.Event()
        if self.level != "bwrap":  # a tmpfs of fixed size does this inside bwrap

            def watch() -> None:
                while not done.wait(0.2):
                    if _tree_bytes(space.scratch) > seed_bytes + limits.scratch_bytes:
                        over_size.set()
                        self._stop(process, uid)
                        return

            threading.Thread(target=watch, daemon=True, name="scratch-watch").start()
        try:
            process.wait(timeout=timeout)
            stopped = "scratch" if over_size.is_set() else ""
        except subprocess.TimeoutExpired:
            self._stop(process, uid)
            stopped = "timeout"
        finally:
            done.set()
            self._stop(process, uid)  # what a finished run left running
        return stopped

    def _stop(self, process: subprocess.Popen, uid: int | None) -> None:
        if uid is not None:
            _kill_user(uid)
        if self.level != "bwrap" and uid is None and process.poll() is None:
            # The reaper ends every descendant on SIGTERM, then exits.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


_SUMMARY = {
    "bwrap": "bubblewrap namespaces: isolated",
    "user": "no namespaces here: an unprivileged user and limits",
    "none": "no isolation: the grading user's own rights",
}
_SHARED_WRITABLE_PATHS = ("/tmp", "/var/tmp", "/dev/shm", "/dev/null", "/dev/zero", "/dev/full")  # noqa: S108


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    return b"".join(chunks)


def _read_kept(path: Path, limits: Limits) -> tuple[str, bool]:
    """The end of an output file (what a message needs), and whether it hit the size limit."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size > limits.output_kept:
            handle.seek(size - limits.output_kept)
            data = b"[... %d bytes not shown ...]\n" % (size - limits.output_kept) + handle.read()
        else:
            data = handle.read()
    text = data.decode("utf-8", errors="replace")
    cut = size >= limits.file_bytes
    if cut:
        text += f"\n[output stopped at {limits.file_bytes >> 20} MB: the limit for one run]"
    return text, cut


def _tree_bytes(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


def _system_paths() -> list[str]:
    found = [*SYSTEM_FOLDERS, "/proc", "/sys", "/dev"]
    found += [link for link in SYSTEM_LINKS if os.path.exists(link)]
    return found


def _python_paths(python: str) -> list[str]:
    """The installation an interpreter needs: its prefix (bin/ and lib/)."""
    real = Path(python).resolve()
    return [str(real.parent.parent)] if real.parent.name == "bin" else [str(real.parent)]


def _kill_user(uid: int) -> None:
    """SIGKILL every process of `uid` (confine.py --kill-all, made as that uid)."""
    subprocess.run(
        [sys.executable, "-I", "-S", str(CONFINE), "--user", f"{uid}:{uid}", "--kill-all"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )


# -- choosing the level -----------------------------------------------------------------------


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _python_candidates() -> list[str]:
    seen = []
    for candidate in (
        os.path.realpath(sys.executable),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
        shutil.which("python3") or "",
    ):
        if candidate and os.path.isfile(candidate) and candidate not in seen:
            seen.append(os.path.realpath(candidate))
    return seen


def _world_reachable(path: str) -> bool:
    """Whether any user may reach `path`: every folder above searchable by others."""
    current = Path(path).resolve()
    for folder in current.parents:
        if not folder.stat().st_mode & 0o001:
            return False
    return bool(current.stat().st_mode & 0o005)


_PROBE = r"""
id -u > "$KEEP/uid"
for python in $PYTHONS; do
  if "$python" -I -S -c 'import json, hashlib, base64' 2>/dev/null; then
    printf %s "$python" > "$KEEP/python"; break
  fi
done
if cat "$OUTSIDE" >/dev/null 2>&1; then echo readable; else echo hidden; fi > "$KEEP/outside"
if (exec 5<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo open; else echo cut; fi > "$KEEP/net"
sleep "$NAP" &
setsid sleep "$NAP" &
"""


def _self_test(level: str) -> Confinement:
    """Run the probe at `level`; the Confinement it supports, or SandboxError why not."""
    root = _is_root()
    abi = landlock.abi_version() if level == "user" else 0
    if level == "user" and not root and abi < 1:
        raise SandboxError("needs root (a user of its own) or Landlock (neither is here)")
    bwrap = os.environ.get("AUTOGRADER_BWRAP") or shutil.which("bwrap") or ""
    if level == "bwrap" and not bwrap:
        raise SandboxError("bubblewrap (bwrap) is not installed")
    candidates = [
        p for p in _python_candidates() if not root or level == "none" or _world_reachable(p)
    ]
    if not candidates:
        raise SandboxError("no Python interpreter a confined user can run")
    pool = UserPool(_kill_user) if root and level != "none" else None
    trial = Confinement(level, candidates[0], pool is not None, abi, bwrap, _pool=pool)
    nap = f"300.{os.getpid()}{time.monotonic_ns() % 100000}"  # a name to look for afterwards
    with workspace("selftest-") as space, _listener() as port:
        outside = space.root / "outside.txt"  # world-readable, outside the probe's reach
        outside.write_text("canary\n")
        outside.chmod(0o644)
        (space.scratch / "probe.sh").write_text(_PROBE)
        env = {
            "PATH": "/usr/bin:/bin",
            "KEEP": str(space.keep),
            "PYTHONS": " ".join(candidates),
            "OUTSIDE": str(outside),
            "PORT": str(port),
            "NAP": nap,
        }
        readable = [Path(q) for p in candidates[1:] for q in _python_paths(p)]
        outcome = trial.run(
            ["bash", "probe.sh"], space, cwd=space.scratch, env=env, readable=readable, timeout=60
        )
        keep = space.keep
        names = ("uid", "python", "outside", "net")
        found = {n: (keep / n).read_text().strip() for n in names if (keep / n).is_file()}
    if outcome.exit_code != 0 or "python" not in found:
        raise SandboxError(
            f"the self-test failed (exit {outcome.exit_code}): {outcome.stderr.strip()[-300:]}"
        )
    if level != "none" and found.get("uid") == "0":
        raise SandboxError("the probe ran as root")
    facts = [
        ("user", "root" if found.get("uid") == "0" else "not root"),
        ("outside file", found.get("outside", "?")),
        ("network", found.get("net", "?")),
        ("background processes", "LEFT RUNNING" if _still_running(nap) else "ended"),
    ]
    if level != "none" and dict(facts)["background processes"] != "ended":
        raise SandboxError("a background process outlived the probe")
    return Confinement(
        level, found["python"], pool is not None, abi, bwrap, tuple(facts), _pool=pool
    )


def _still_running(nap: str) -> bool:
    """Whether a `sleep NAP` the probe started in the background lives on."""
    wanted = f"sleep\x00{nap}\x00".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes() == wanted:
                    return True
    return False


@contextlib.contextmanager
def _listener():
    """A loopback port that accepts connections: can the probe reach the network?"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def detect(requested: str = "auto") -> Confinement:
    """The strongest level that passes its self-test (or exactly `requested`)."""
    if requested not in CHOICES:
        raise ValueError(f"unknown confinement {requested!r}: choose one of {', '.join(CHOICES)}")
    if requested != "auto":
        return dataclasses.replace(_self_test(requested), forced=True)
    tried = []
    for level in LEVELS:
        try:
            confinement = _tested(level)
        except Exception as exc:  # any failure of a level is a reason to try the next
            tried.append(f"{level}: {exc}")
            continue
        return dataclasses.replace(confinement, tried=tuple(tried))
    raise SandboxError("no confinement level works here: " + "; ".join(tried))


@cache
def _tested(level: str) -> Confinement:
    return _self_test(level)


_selected: dict[str, Confinement] = {}
_selected_lock = threading.Lock()


def select(requested: str = "auto") -> Confinement:
    """Detect the confinement every later run of this process uses (current())."""
    confinement = detect(requested)
    with _selected_lock:
        _selected["current"] = confinement
    return confinement


def current() -> Confinement:
    """The process-wide confinement: as select() chose, else detected once (from
    AUTOGRADER_CONFINEMENT, or auto)."""
    with _selected_lock:
        if "current" not in _selected:
            _selected["current"] = detect(os.environ.get(ENV_LEVEL) or "auto")
        return _selected["current"]


@cache
def unconfined() -> Confinement:
    """Level "none" without a self-test: for running the grader's own tools in tests."""
    return Confinement("none", os.path.realpath(sys.executable), dedicated_users=False)


def fallbacks(confinement: Confinement):
    """`confinement`, then (unless it was forced) each weaker level that passes its self-test.

    A sandbox that passed its self-test can still fail to start one run (a
    machine out of processes, a full disk): the run is then retried one level
    down rather than failing the student's check.
    """
    yield confinement
    if confinement.forced:
        return
    for level in LEVELS[LEVELS.index(confinement.level) + 1 :]:
        try:
            yield _tested(level)
        except Exception:  # noqa: S112 (a level that fails its self-test is skipped)
            continue


def run(command: Sequence[str], space: Workspace, **options) -> Outcome:
    """Confinement.run at the process's level, falling back as `fallbacks` says."""
    failure: SandboxError | None = None
    for confinement in fallbacks(current()):
        try:
            return confinement.run(command, space, **options)
        except SandboxError as exc:
            failure = exc
    raise failure or SandboxError("no confinement level could start the command")
