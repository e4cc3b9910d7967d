"""Landlock: let a process give up file and TCP access before it runs a student's command.

Landlock (Linux 5.13+) lets an unprivileged process restrict itself and its
future children to the paths it lists, without namespaces or root, and it
survives setuid and exec. Docker's default seccomp profile allows its system
calls, so it still works where namespaces are refused: that is why the
"user" confinement level (sandbox.py) adds it when the kernel has it. Newer
ABIs add more: TCP bind/connect (ABI 4), and scoping of signals and abstract
unix sockets to the sandbox (ABI 6). Python has no binding for it, so this
module makes the three system calls with ctypes (their numbers are the same
on every architecture: they were added after the syscall tables were unified).

Only the standard library is used: confine.py imports this file as a sibling
module when it runs as a script.
"""

from __future__ import annotations

import ctypes
import os
import struct

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_VERSION_FLAG = 1  # LANDLOCK_CREATE_RULESET_VERSION
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_V1 = (1 << 13) - 1  # execute .. make_sym
_FS_BY_ABI = {1: _FS_V1, 2: _FS_V1 | 1 << 13, 3: _FS_V1 | 3 << 13}  # + refer, + truncate
_FS_LATEST = _FS_V1 | 7 << 13  # + ioctl_dev (ABI 5)
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | 1 << 14 | 1 << 15  # rights a file rule may hold
_NET_TCP = 3  # bind_tcp | connect_tcp (ABI 4)
_SCOPES = 3  # abstract unix sockets | signals (ABI 6)

READ_ONLY = EXECUTE | READ_FILE | READ_DIR


class LandlockError(OSError):
    pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI (0 when Landlock is missing or disabled)."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _VERSION_FLAG)
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def handled_fs(abi: int) -> int:
    return _FS_BY_ABI.get(abi, _FS_LATEST)


def restrict(read_only: list[str], read_write: list[str], *, deny_tcp: bool = True) -> int:
    """Restrict this process to the given paths (and no TCP, no outside signals).

    Paths that do not exist are skipped. Returns the ABI used. Raises
    LandlockError when Landlock is not available or a rule is refused.
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockError("Landlock is not available in this kernel")
    libc = _libc()
    fs = handled_fs(abi)
    net = _NET_TCP if deny_tcp and abi >= 4 else 0
    scoped = _SCOPES if abi >= 6 else 0
    attr = struct.pack("=QQQ", fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(_CREATE_RULESET, attr, ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise LandlockError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in read_only:
            _allow(libc, ruleset, path, READ_ONLY & fs)
        for path in read_write:
            _allow(libc, ruleset, path, fs)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise LandlockError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _allow(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY
        rule = struct.pack("=Qi", access, fd)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
    finally:
        os.close(fd)
