"""requirements/locks/: every component's full dependency set, agreeing with its requirements.

Checked offline against the dev environment, which `make setup` installs from
the dev lock: each lock holds its component's pins at the same versions, and
exactly the packages those pins pull in (as the installed metadata says), at
the versions the dev lock and the dev environment have. The images install
the same locks (tests/containers checks what they hold).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deployment import kit
from tools import locks

LOCK_NAMES = list(locks.LOCKS)


@cache
def lock_pins(lock: str) -> dict[str, str]:
    """{canonical name: version} of the lock's lines that apply to this Python and platform."""
    pins = {}
    for line in (locks.LOCK_DIR / f"{lock}.txt").read_text().splitlines():
        if not line[:1].isalnum():
            continue  # comments and the `# via` annotations
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def direct_pins(lock: str) -> dict[str, str]:
    pins = {}
    for source in locks.LOCKS[lock]:
        for line in kit.requirement_lines(source):
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    return pins


def left_out(name: str) -> bool:
    return name in locks.TORCH_PAIR or locks.is_cuda_only(name)


def test_every_component_has_a_lock_made_by_make_locks():
    for lock in LOCK_NAMES:
        header = (locks.LOCK_DIR / f"{lock}.txt").read_text().splitlines()[:2]
        assert header[1].strip("# ") == "make locks", f"{lock}: not written by `make locks`"


@pytest.mark.parametrize("lock", LOCK_NAMES)
def test_lock_holds_its_requirements_at_their_pinned_versions(lock):
    pins = lock_pins(lock)
    for name, version in direct_pins(lock).items():
        if left_out(name):
            assert name not in pins, f"{lock}: {name} is pinned outside the locks"
        else:
            assert pins.get(name) == version, (
                f"requirements pin {name}=={version}, the {lock} lock has {pins.get(name)}: "
                "run `make locks`"
            )


@pytest.mark.parametrize("lock", LOCK_NAMES)
def test_lock_holds_exactly_what_its_requirements_pull_in(lock):
    """Compiled from the current requirements: no package missing, none left over."""
    needed = {name for name in kit.distribution_closure(locks.LOCKS[lock]) if not left_out(name)}
    locked = set(lock_pins(lock))
    assert not needed - locked, f"{lock} lock lacks {sorted(needed - locked)}: run `make locks`"
    assert not locked - needed, f"{lock} lock holds unneeded {sorted(locked - needed)}"


def test_locks_leave_out_the_torch_pair_and_cuda():
    for lock in LOCK_NAMES:
        text = (locks.LOCK_DIR / f"{lock}.txt").read_text()
        names = {
            canonicalize_name(Requirement(line).name)
            for line in text.splitlines()
            if line[:1].isalnum()
        }
        assert not {n for n in names if left_out(n)}, lock


@pytest.mark.parametrize("lock", [name for name in LOCK_NAMES if name != "dev"])
def test_component_locks_agree_with_the_dev_lock(lock):
    dev = lock_pins("dev")
    for name, version in lock_pins(lock).items():
        assert dev.get(name) == version, f"{name}: {lock} lock {version}, dev lock {dev.get(name)}"


def test_the_dev_environment_is_the_dev_lock():
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differing = {
        name: (version, installed.get(name))
        for name, version in lock_pins("dev").items()
        if installed.get(name) != version
    }
    assert not differing, f"locked vs installed: {differing}; run `make setup`"


def test_cuda_only_names():
    assert locks.is_cuda_only("nvidia-cudnn-cu13")
    assert locks.is_cuda_only("cuda-bindings")
    assert locks.is_cuda_only("triton")
    assert not locks.is_cuda_only("numpy")
    assert not locks.is_cuda_only("tritonclient")
