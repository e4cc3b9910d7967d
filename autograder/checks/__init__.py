"""The checks rubric items name: `check: <name>` in rubric.yaml -> a function here.

Each check takes the grading context and the item's target (a component, a
version or a question) and either returns (passed; optionally a note string),
or raises CheckFailed / Pending.
"""

from __future__ import annotations

from collections.abc import Callable

Check = Callable[..., str | None]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"two checks are named {name!r}")
        CHECKS[name] = function
        return function

    return register


def load_checks() -> dict[str, Check]:
    """Import every check module (each registers its checks) and return the registry."""
    from autograder.checks import build, deliverables, deploy, live, submit, written  # noqa: F401

    return CHECKS
