"""Folders for confined runs, removed even when the grader is killed; the users runs get.

Every grader process keeps its temporary folders under one session folder,
`<tmp>/autograder-<uid>/<pid>-<random>/`, and holds an flock on its `lock`
file while it lives. The kernel drops that lock when the process dies, however
it dies (SIGKILL from a batch timeout included), so the next grader to start,
or the end of a batch, removes every session whose lock it can take: nothing
is left behind for long.

When the grader runs as root, each confined run also gets a user of its own
(`UserPool`): a uid no one else uses, so that "every process of this uid" is
exactly "every process the run started", and one kill(-1) made as that uid
ends them all (confine.py --kill-all).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

# Far above the uids and subordinate-uid ranges distributions hand out.
USER_BASE = int(os.environ.get("AUTOGRADER_UID_BASE", "1900000000"))
USER_COUNT = 4096
_SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108


def _base() -> Path:
    """Where sessions live: outside /tmp, which confined commands may use (and Landlock
    then lets them read), so that nothing of the grader's is there for them to read."""
    if os.environ.get("AUTOGRADER_WORK_DIR"):
        return Path(os.environ["AUTOGRADER_WORK_DIR"])
    candidates = [Path("/var/lib/autograder"), Path("/run/autograder-work")]
    if os.geteuid() != 0:
        candidates = [Path.home() / ".cache" / "autograder-work"]
    for candidate in candidates:
        with contextlib.suppress(OSError):
            candidate.mkdir(mode=0o711, parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK | os.X_OK):
                return candidate
    return Path(tempfile.gettempdir())


def _root() -> Path:
    root = _base() / f"autograder-{os.geteuid()}"
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{root} is not a folder of this user's: refusing to use it")
    root.chmod(0o711)  # confined users traverse it to their own folders, never list it
    return root


def _lock_free(path: Path) -> bool:
    """Whether no living process holds the flock on `path` (taking and dropping it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


class _Session:
    """This process's folder of temporary folders, locked while the process lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._pid = 0

    def path(self) -> Path:
        with self._lock:
            if self._path is None or self._pid != os.getpid():
                root = _root()
                sweep_stale(root)
                path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
                path.chmod(0o711)
                fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends
                self._path, self._pid = path, os.getpid()
            return self._path


_SESSION = _Session()


def sweep_stale(root: Path | None = None) -> int:
    """Remove the session folders of grader processes that are gone; how many."""
    root = root or _root()
    removed = 0
    for session in root.iterdir():
        if session.is_dir() and _lock_free(session / "lock"):
            shutil.rmtree(session, ignore_errors=True)
            removed += 1
    return removed


@dataclass
class Workspace:
    """One confined run's folders.

    root     the run's folder (the grader's; others may only traverse it)
    scratch  what the command may change; the caller fills it before the run.
             Size-limited, and thrown away with the run.
    keep     what the command writes for the grader to read afterwards (logs)
    out      the command's stdout and stderr files (the grader's only)
    """

    root: Path

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def keep(self) -> Path:
        return self.root / "keep"

    @property
    def out(self) -> Path:
        return self.root / "out"


@contextlib.contextmanager
def workspace(prefix: str = "run-"):
    """A fresh Workspace, removed on exit (and by sweep_stale if this process dies)."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=_SESSION.path()))
    root.chmod(0o711)
    space = Workspace(root)
    for folder in (space.scratch, space.keep, space.out):
        folder.mkdir(mode=0o700)
    try:
        yield space
    finally:
        shutil.rmtree(root, ignore_errors=True)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(Path(folder, name), uid, gid, follow_symlinks=False)


def _state_dir() -> Path:
    for candidate in (Path("/run/autograder"), _root() / "state"):
        with contextlib.suppress(OSError):
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            if candidate.stat().st_uid == os.geteuid():
                return candidate
    raise RuntimeError("no private folder for the autograder's user locks")


class UserPool:
    """Unprivileged uids handed out one per confined run (root only).

    A uid's lock file is held while a run uses it and says "dirty" until the
    run has been cleaned up; a dirty file whose lock is free belongs to a
    grader that was killed, so its processes and files are removed before the
    uid is used again (and by sweep()).
    """

    def __init__(self, kill_all) -> None:
        self._kill_all = kill_all  # uid -> None: ends every process of uid

    def _folder(self) -> Path:
        folder = _state_dir() / "users"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    @contextlib.contextmanager
    def user(self):
        folder = self._folder()
        start = random.randrange(USER_COUNT)  # noqa: S311 (spreading, not secrecy)
        for offset in range(USER_COUNT):
            uid = USER_BASE + (start + offset) % USER_COUNT
            fd = os.open(folder / f"{uid}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                if os.pread(fd, 5, 0) == b"dirty":
                    self._clean(uid)
                os.pwrite(fd, b"dirty", 0)
                yield uid
            finally:
                self._release(uid)
                os.ftruncate(fd, 0)
                os.close(fd)
            return
        raise RuntimeError(f"all {USER_COUNT} grading users are busy")

    def _clean(self, uid: int) -> None:
        self._kill_all(uid)
        remove_files_of(uid)

    def _release(self, uid: int) -> None:
        # The run has already killed its processes (Confinement._stop); only files remain.
        remove_files_of(uid)

    def sweep(self) -> int:
        """Clean the uids of killed graders; how many."""
        cleaned = 0
        folder = self._folder()
        for entry in folder.iterdir():
            if not entry.name.isdigit() or entry.stat().st_size == 0:
                continue
            fd = os.open(entry, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                self._clean(int(entry.name))
                os.ftruncate(fd, 0)
                cleaned += 1
            finally:
                os.close(fd)
        return cleaned


def remove_files_of(uid: int) -> None:
    """Remove what `uid` left at the top of the shared writable folders (/tmp, ...)."""
    for shared in _SHARED_WRITABLE:
        with contextlib.suppress(OSError):
            for entry in os.scandir(shared):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
