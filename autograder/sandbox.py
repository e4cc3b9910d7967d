"""Confine a student's script: no network, no writes outside its scratch folder.

script_runner already runs a script in a throwaway copy with a scrubbed
environment; a hostile script could still write elsewhere on the grading
machine or open sockets. When the grader runs as root (Gradescope, a CI
container) the script therefore runs
  - in new mount and network namespaces (`unshare`): no network at all, and
    private empty tmpfs over the world-writable folders (/tmp, /var/tmp, ...),
    with only its own scratch folder bound back in;
  - as the unprivileged `nobody` (`setpriv`), so every file the grader and
    the system own is read-only to it, and root processes' environments are
    unreadable.
Elsewhere (a student's own laptop, not root) isolation is not possible
without privileges; the script then runs as the user, which only risks the
user's own files. `wrap()` says which happened.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NOBODY = 65534
# World-writable folders: a confined script gets private, empty ones.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")  # noqa: S108
_CONFINE = r"""
set -e
start=$1; shift
mount --make-rprivate /
# Park what must stay visible (the scratch folder, the Python and grader the
# recorders run) under a private /mnt, hide the shared folders behind empty
# private tmpfs, then bind the parked folders back at their own paths.
mount -t tmpfs -o mode=700,size=1m tmpfs /mnt
IFS=:
i=0
for path in $SANDBOX_KEEP; do
  mkdir "/mnt/$i"; mount --bind "$path" "/mnt/$i"; i=$((i + 1))
done
for folder in $SANDBOX_SHARED; do
  if [ -d "$folder" ]; then mount -t tmpfs -o mode=1777,size=64m tmpfs "$folder"; fi
done
for folder in $SANDBOX_HIDE; do
  mount -t tmpfs -o mode=755,size=1m tmpfs "$folder"
done
i=0
for path in $SANDBOX_KEEP; do
  mkdir -p "$path"; mount --bind "/mnt/$i" "$path"; i=$((i + 1))
done
unset IFS
cd "$start"
exec "$SANDBOX_SETPRIV" --reuid=65534 --regid=65534 --clear-groups \
  --inh-caps=-all --bounding-set=-all -- "$@"
"""


def available() -> bool:
    return (
        hasattr(os, "geteuid")
        and os.geteuid() == 0
        and all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount"))
        and Path("/mnt").is_dir()
    )


def _blocking_folder(path: Path) -> Path | None:
    """The topmost folder above `path` that others may not enter (None if all may)."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return parent
    return None


def _give_to_nobody(scratch: Path) -> None:
    os.chown(scratch, NOBODY, NOBODY)
    for folder, dirs, files in os.walk(scratch):
        for name in dirs + files:
            os.chown(Path(folder, name), NOBODY, NOBODY, follow_symlinks=False)


def wrap(command: list[str], *, scratch: Path, cwd: Path) -> tuple[list[str], dict, bool]:
    """(command to run, extra environment, whether it is confined)."""
    if not available():
        return command, {}, False
    _give_to_nobody(scratch)
    python = Path(sys.base_prefix).resolve()
    blocking = _blocking_folder(python)
    hidden = [Path(p) for p in SHARED_WRITABLE] + ([blocking] if blocking else [])
    needed = [scratch, Path(sys.prefix).resolve(), python, Path(__file__).resolve().parent]
    keep = [p for p in dict.fromkeys(needed) if any(p.is_relative_to(h) for h in hidden)]
    confined = [
        shutil.which("unshare"),
        "--mount",
        "--net",
        "--fork",
        "--kill-child",
        "--",
        "/bin/sh",
        "-c",
        _CONFINE,
        "confine",
        str(cwd),
        *command,
    ]
    env = {
        "SANDBOX_SETPRIV": shutil.which("setpriv"),
        "SANDBOX_KEEP": ":".join(map(str, keep)),
        "SANDBOX_SHARED": ":".join(SHARED_WRITABLE),
        "SANDBOX_HIDE": str(blocking) if blocking else "",
    }
    return confined, env, True
