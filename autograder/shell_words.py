"""Split the shell text of a Cloud Build step into simple commands.

Only as much shell as build steps use: `;`, `&&`, `||`, `|`, newlines,
`if ...; then`, `!`, and backslash continuations. shlex does the quoting; this
module only groups its tokens into commands and notes how each one's failure
is handled (a `||` after it, an `if`/`!` before it, a later `exit 0`).
"""

from __future__ import annotations

import re
import shlex
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
