"""What a check reports when it does not pass: a message a student can act on.

A check raises `CheckFailed` (expected / found / how to fix), `Skipped` (what
it checks depends on another file that fails its own checks: that file is
charged, this item loses nothing), `Pending` (the check needs something this
run was not given, e.g. `--live`), or returns normally (passed). Nothing else
should escape a check; the engine turns any other exception into a short "the
grader could not check this" message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CheckFailed(Exception):
    """A requirement is not met. `where` names the student file (and step) concerned."""

    what: str
    expected: str = ""
    found: str = ""
    fix: str = ""
    where: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        lines = [head]
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.found:
            lines.append(f"  found:    {self.found}")
        if self.fix:
            lines.append(f"  how to fix: {self.fix}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class Pending(Exception):
    """The check was not run in this mode (live probes without --live, hand grading)."""


@dataclass
class Skipped(Exception):
    """Part of this item depends on another file that fails its own checks.

    The other file loses its points; this item keeps its own and says what to
    fix first. A check raises it only once everything it can judge on its own
    has passed.
    """

    blocked_by: str  # the file (or part of one) to fix first
    unchecked: str  # what could not be checked until then
    where: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.where}: " if self.where else ""
        return (
            f"{head}skipped: fix {self.blocked_by} first (no points lost here)\n"
            f"  not checked until then: {self.unchecked}"
        )

    def __str__(self) -> str:
        return self.render()
