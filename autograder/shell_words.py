"""Split shell words the way the grader needs them, in one place.

- `split_commands`: the shell text of a Cloud Build step into simple commands.
  Only as much shell as build steps use: `;`, `&&`, `||`, `|`, newlines,
  `if ...; then`, `!`, and backslash continuations. shlex does the quoting;
  this module only groups its tokens into commands and notes how each one's
  failure is handled (a `||` after it, an `if`/`!` before it, a later `exit 0`).
- `gcloud_words`: the command words of a recorded gcloud command line, wherever
  its flags are (every check, the recorder and the oracle read gcloud commands
  through it).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

_OPERATORS = {";", "&&", "||", "|", "&", ";;", "(", ")", "\n"}
_CONDITION_WORDS = {"if", "elif", "while", "until", "!"}
_RESERVED = {"then", "do", "else", "fi", "done", "{", "}"}


@dataclass
class ShellCommand:
    words: list[str]
    followed_by: str  # the operator after it ("" at the end of the script)
    in_condition: bool  # its status is tested (if/while/!), so failure cannot stop the script


def split_commands(text: str) -> list[ShellCommand]:
    """Simple commands in order; raises ValueError on unbalanced quotes."""
    text = re.sub(r"\\\n", " ", text)
    lexer = shlex.shlex(text.replace("\n", " \n "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace = " \t\r"  # keep newlines: they end commands
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[ShellCommand] = []
    words: list[str] = []
    in_condition = False
    for token in lexer:
        if token in _OPERATORS:
            if words:
                commands.append(ShellCommand(words, token, in_condition))
                words = []
            in_condition = False
            continue
        if not words and token in _CONDITION_WORDS:
            in_condition = True
            continue
        if not words and token in _RESERVED:
            continue
        words.append(token)
    if words:
        commands.append(ShellCommand(words, "", in_condition))
    return commands


def failure_tolerated(commands: list[ShellCommand], index: int, errexit: bool) -> bool:
    """Whether the script goes on (or ends successfully) when commands[index] fails."""
    if commands[index].in_condition:
        return True
    # Walk to the end of an `a && b && c` chain: a failure skips the rest of it.
    end = index
    while commands[end].followed_by == "&&" and end + 1 < len(commands):
        end += 1
    if commands[end].followed_by == "||":
        return True
    if end != index:
        # bash's errexit ignores failures inside an && chain except its last command
        return end != len(commands) - 1
    if errexit:
        return False
    # Without `set -e` the script's status is its last command's.
    return index != len(commands) - 1


def sets_errexit(commands: list[ShellCommand]) -> bool:
    for command in commands:
        if command.words[:1] == ["set"] and any(
            w.startswith("-") and "e" in w[1:] and not w.startswith("--") for w in command.words[1:]
        ):
            return True
        if command.words[:3] == ["set", "-o", "errexit"]:
            return True
    return False


# gcloud flags that take a value as the next word (`--flag VALUE`; `--flag=VALUE`
# needs no list). Any other flag is a switch. Global flags may come before the
# command group (`gcloud --project P builds submit`), so they are here too.
# The grader passes the complete set, from gcloud's vendored rules
# (gcloud_cli.value_flags); this short list serves the recorder, which runs
# alone beside the student's scripts. A test keeps it within gcloud's own.
GCLOUD_VALUE_FLAGS = frozenset(
    {
        # global
        "--account",
        "--billing-project",
        "--configuration",
        "--flags-file",
        "--flatten",
        "--format",
        "--impersonate-service-account",
        "--project",
        "--trace-token",
        "--verbosity",
        # list and describe
        "--filter",
        "--limit",
        "--page-size",
        "--sort-by",
        # builds submit
        "--config",
        "--default-buckets-behavior",
        "--disk-size",
        "--gcs-log-dir",
        "--gcs-source-staging-dir",
        "--ignore-file",
        "--machine-type",
        "--pack",
        "--polling-interval",
        "--service-account",
        "--substitutions",
        "--tag",
        "--worker-pool",
        # run deploy and run services
        "--args",
        "--command",
        "--concurrency",
        "--cpu",
        "--env-vars-file",
        "--execution-environment",
        "--gpu",
        "--gpu-type",
        "--image",
        "--ingress",
        "--labels",
        "--max-instances",
        "--memory",
        "--min-instances",
        "--network",
        "--platform",
        "--port",
        "--region",
        "--remove-env-vars",
        "--revision-suffix",
        "--service",
        "--set-env-vars",
        "--set-secrets",
        "--source",
        "--subnet",
        "--timeout",
        "--update-env-vars",
        "--update-labels",
        "--update-secrets",
        "--vpc-connector",
        "--vpc-egress",
        # iam bindings, artifacts
        "--condition",
        "--description",
        "--location",
        "--member",
        "--repository-format",
        "--role",
    }
)
_RELEASE_TRACKS = frozenset({"alpha", "beta", "preview"})


def gcloud_words(
    argv: Sequence[str], value_flags: frozenset[str] = GCLOUD_VALUE_FLAGS
) -> list[str]:
    """The command words and positional arguments of a gcloud command line, in order.

    `argv` is what follows `gcloud`. Flags and their values are left out, and so
    are release tracks: `--project P beta builds submit SRC --config C` and
    `builds submit SRC --config C --project P` both give [builds, submit, SRC].
    `value_flags`: the flags that take the next word as their value.
    """
    words: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word.startswith("-") and word != "-":
            skip = "=" not in word and word in value_flags
        elif not words and word in _RELEASE_TRACKS:
            continue
        else:
            words.append(word)
    return words


def gcloud_key_values(raw: str) -> dict[str, str]:
    """gcloud's KEY=VALUE,... list (--substitutions, --set-env-vars), with its ^DELIM^ form."""
    delimiter = ","
    if raw.startswith("^") and raw.find("^", 1) > 0:
        end = raw.find("^", 1)
        delimiter, raw = raw[1:end], raw[end + 1 :]
    values = {}
    for pair in raw.split(delimiter):
        key, has_value, value = pair.partition("=")
        if has_value and key.strip():
            values[key.strip()] = value
    return values
