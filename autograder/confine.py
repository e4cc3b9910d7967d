"""Start one command confined: resource limits, Landlock, an unprivileged user, then exec.

sandbox.py runs this file as a script (`python -I -S confine.py OPTIONS -- COMMAND...`)
between the grader and whatever it confines (bubblewrap, a student's script, gcloud).
Each step is one system call, made here in a single-threaded process: the grader
itself runs checks in threads, where setting limits or dropping privileges
between fork and exec (subprocess's preexec_fn) is not safe.

  --rlimit NAME=VALUE   cpu, as, fsize, nproc, nofile, core: soft and hard limit
  --landlock-ro PATH    with --landlock: read and execute beneath PATH
  --landlock-rw PATH    with --landlock: read and write beneath PATH
  --landlock            restrict files to the paths above, and TCP (landlock.py)
  --user UID:GID        become this user, with no supplementary groups
  --die-with-parent     SIGKILL when the grader goes away (set after --user)
  --reap                stay as the parent of COMMAND (a child subreaper): when it
                        ends, or on SIGTERM, every process it left behind is killed
  --kill-all            with --user: kill every process of that user, and exit
  --status-fd N         report a setup failure on fd N (then exit 125)

Only the standard library: it runs before anything is confined.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import time

SETUP_FAILED = 125
STATUS_FD = 3
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_LIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "as": resource.RLIMIT_AS,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


class _Options:
    def __init__(self) -> None:
        self.rlimits: list[tuple[int, int]] = []
        self.read_only: list[str] = []
        self.read_write: list[str] = []
        self.landlock = False
        self.user: tuple[int, int] | None = None
        self.die_with_parent = False
        self.reap = False
        self.kill_all = False
        self.status_fd: int | None = None
        self.command: list[str] = []


def _parse(argv: list[str]) -> _Options:
    options = _Options()
    words = iter(argv)
    for word in words:
        if word == "--":
            options.command = list(words)
            break
        if word == "--rlimit":
            name, value = next(words).split("=", 1)
            options.rlimits.append((_LIMITS[name], int(value)))
        elif word == "--landlock-ro":
            options.read_only.append(next(words))
        elif word == "--landlock-rw":
            options.read_write.append(next(words))
        elif word == "--user":
            uid, gid = next(words).split(":", 1)
            options.user = (int(uid), int(gid))
        elif word == "--status-fd":
            options.status_fd = int(next(words))
        elif word in ("--landlock", "--die-with-parent", "--reap", "--kill-all"):
            setattr(options, word[2:].replace("-", "_"), True)
        else:
            raise ValueError(f"unknown option {word}")
    return options


def _prctl(option: int, value: int) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _descendants(root: int) -> list[int]:
    """Every living process below `root`, from /proc (children first found, then theirs)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _end_descendants() -> None:
    """Kill and reap everything below this process, until nothing is left."""
    for _ in range(200):
        alive = _descendants(os.getpid())
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not alive:
            return
        time.sleep(0.01)


def _reap(command: list[str]) -> int:
    """Run `command` as a child; whatever it leaves behind is ended when it ends."""
    child = subprocess.Popen(command, close_fds=False)

    def stop(signum, frame):
        _end_descendants()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = child.wait()
    _end_descendants()
    return code if code >= 0 else 128 - code


def _set_up(options: _Options) -> None:
    for limit, value in options.rlimits:
        resource.setrlimit(limit, (value, value))
    if options.reap:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # the grader died: end what it started
    if options.landlock:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import landlock

        landlock.restrict(options.read_only, options.read_write)
    if options.user is not None:
        uid, gid = options.user
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    if options.die_with_parent:
        parent = os.getppid()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # after --user: a uid change clears it
        if os.getppid() != parent:
            raise OSError("the grader is gone")


def main(argv: list[str]) -> int:
    options = _parse(argv)
    try:
        _set_up(options)
        if options.kill_all:
            if options.user is None:
                raise ValueError("--kill-all needs --user")
            with contextlib.suppress(ProcessLookupError):
                # As that user, -1 means every process of that user (but this one):
                # the kernel signals them all under one lock, so none can fork away.
                os.kill(-1, signal.SIGKILL)
            return 0
        if not options.command:
            raise ValueError("no command given")
        if options.status_fd is not None and options.status_fd != STATUS_FD:
            # The prelude inside reports "started" on fd 3, whatever number it came as.
            os.dup2(options.status_fd, STATUS_FD, inheritable=True)
            os.close(options.status_fd)
            options.status_fd = STATUS_FD
        if options.reap:
            return _reap(options.command)
        os.execvp(options.command[0], options.command)  # noqa: S606 (no shell: argv as given)
    except (OSError, ValueError, ImportError) as exc:
        message = f"confine: {type(exc).__name__}: {exc}\n"
        if options.status_fd is not None:
            with contextlib.suppress(OSError):
                os.write(options.status_fd, message.encode())
        sys.stderr.write(message)
        return SETUP_FAILED
    return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
