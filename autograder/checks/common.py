"""What every check of a student file goes through first, and helpers the checks share.

Present and not the template (`filled_in`), a script that parses and runs
(`working_script`), gcloud's verdict on its commands (`refused_calls`), and
reading what a recorded command did (`gcloud_words`, `split_by_space`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from autograder import assignment
from autograder.context import GradingContext
from autograder.feedback import CheckFailed
from autograder.gcloud_cli import command_words
from autograder.gcloud_oracle import OracleVerdict
from autograder.script_runner import RecordedCall, ScriptRun


def attempted(ctx: GradingContext, logical: str) -> bool:
    """Whether the student wrote anything in this file (present, and not the untouched template).

    A file that depends on one never attempted cannot be spared its checks: there
    is no mistake elsewhere to charge instead.
    """
    try:
        text = ctx.text(logical)
    except CheckFailed:
        return False
    template = ctx.template_text(logical)
    return template is None or text.strip() != template.strip()


def filled_in(ctx: GradingContext, logical: str) -> str:
    """The file's text, once it is neither the untouched template nor has placeholders left."""
    text = ctx.text(logical)
    template = ctx.template_text(logical)
    if template is not None and text.strip() == template.strip():
        raise CheckFailed(
            what="this is still the untouched template",
            expected=f"your own {logical}, completed from the template",
            found="the template, unchanged",
            fix="replace every FILL-ME in the file (the comments say what goes there)",
            where=logical,
        )
    left = assignment.find_placeholders(text)
    if left:
        shown = ", ".join(dict.fromkeys(left))
        raise CheckFailed(
            what="a template placeholder is still in the file",
            expected="every placeholder replaced by a real value",
            found=shown,
            fix="replace each FILL-ME (or <...>) outside comments with the value it asks for",
            where=logical,
        )
    return text


def bash_syntax_error(path: Path) -> str | None:
    result = subprocess.run(
        ["bash", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    return result.stderr.strip() or None if result.returncode else None


def _shellcheck_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    return str(beside_python) if beside_python.is_file() else shutil.which("shellcheck")


def shellcheck_errors(path: Path) -> list[str]:
    """shellcheck's error-level findings (warnings and style notes are not graded)."""
    binary = _shellcheck_binary()
    if binary is None:
        return []
    result = subprocess.run(
        [binary, "--severity=error", "--format=gcc", "--shell=bash", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return [line.split(":", 1)[1] for line in result.stdout.splitlines() if ":" in line]


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n            ".join(line[:200] for line in kept) or "(no output)"


def side_calls_note(run: ScriptRun) -> str:
    """Mention downloads/uploads the script tried: grading records them, never runs them."""
    programs = sorted({c.program for c in run.calls if c.program in ("curl", "wget")})
    return f" It also called {', '.join(programs)}, which grading never runs." if programs else ""


def working_script(ctx: GradingContext, logical: str) -> ScriptRun:
    """The script's recorded run, once it is filled in, parses, and runs to success."""

    def compute() -> ScriptRun:
        filled_in(ctx, logical)
        path = ctx.submission.require(logical)
        syntax = bash_syntax_error(path)
        if syntax:
            raise CheckFailed(
                what="bash cannot parse the script",
                expected="a script `bash -n` accepts",
                found=syntax.replace(str(path), logical),
                fix="fix the line bash names (unclosed quote, missing `fi`/`done`, ...)",
                where=logical,
            )
        errors = shellcheck_errors(path)
        if errors:
            raise CheckFailed(
                what="shellcheck finds errors in the script",
                expected="no shellcheck errors",
                found="; ".join(errors[:3]),
                fix="look the SC code up (shellcheck.net/wiki/SC....) and fix the line",
                where=logical,
            )
        run = ctx.script_run(logical)
        side_note = side_calls_note(run)
        if run.timed_out:
            raise CheckFailed(
                what=f"the script did not finish within {ctx.options.script_timeout:g} s",
                expected="a script that runs its gcloud commands and ends",
                found="still running: it loops, sleeps or waits for input." + side_note,
                fix="remove loops that wait for something and any `read` prompts",
                where=logical,
            )
        if not run.succeeded:
            raise CheckFailed(
                what=f"the script failed (exit status {run.exit_code}) when run with a "
                "stand-in gcloud that answers like a configured one",
                expected="exit status 0",
                found=_tail(run.stderr or run.stdout) + side_note,
                fix="run it yourself with `bash -x` to see which line fails",
                where=logical,
            )
        return run

    return ctx.memo(("working", logical), compute)


def refused_calls(ctx: GradingContext, logical: str) -> list[tuple[RecordedCall, OracleVerdict]]:
    """The script's gcloud commands that gcloud itself refuses, with its verdicts."""
    return [(call, verdict) for call, verdict in ctx.command_verdicts(logical) if verdict.rejected]


def refusal_failure(call: RecordedCall, verdict: OracleVerdict, logical: str) -> CheckFailed:
    shown = " ".join(call.command)
    # A grader rule (gcloud_cli.refusal) rather than one of gcloud's own.
    grader = verdict.message.startswith("the grader")
    return CheckFailed(
        what=("the grader" if grader else "gcloud") + " refuses a command the script runs",
        expected="commands and flags gcloud accepts, reading only files of the repository",
        found=f"{shown[:300]}\n            {'why' if grader else 'gcloud says'}: "
        + verdict.message.splitlines()[0],
        fix="write every flag in the command itself"
        if grader
        else "check the flag names against `gcloud <command> --help`",
        where=logical,
    )


def gcloud_words(call: RecordedCall) -> list[str]:
    """The command words of a recorded gcloud call (flags, values and tracks left out)."""
    return command_words(call.command)


def split_by_space(run: ScriptRun, value: str | None) -> bool:
    """Whether `value` is a path that broke in two at the space in the copy's folder name.

    The grader runs scripts in a folder whose name has a space, as many students'
    folders do; an unquoted "$dir/file" then reaches the command as two words,
    the first ending where that space is.
    """
    if not value or not run.copy_root or " " not in run.copy_root:
        return False
    return run.copy_root.startswith(value.rstrip("/") + " ")


def space_failure(run: ScriptRun, option: str, value: str, logical: str) -> CheckFailed:
    folder = run.copy_root.rsplit("/", 1)[-1]
    return CheckFailed(
        what=f"the path given to {option} is cut in two at a space",
        expected=f'one word for the path: {option} "$script_dir/..." (quoted)',
        found=f"{value} and then the rest of the path as a separate word: the grader runs "
        f"your script from a folder named `{folder}`, and an unquoted path splits there",
        fix="put double quotes around every variable that holds a path, e.g. "
        '--config="$config" and "$repo_root": your own folders may have spaces too',
        where=logical,
    )
