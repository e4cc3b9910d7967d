"""The project's own check of a gcloud command line: gcloud's offline rules, without gcloud.

gcloud refuses an unknown command or flag, a missing value, a value outside a
flag's choices, two flags of a mutually exclusive group, a malformed KEY=VALUE
list or number, and too many positional arguments, all before it looks for
credentials. Those rules are vendored in data/gcloud_cli.json (generated from
gcloud's own CLI tree by tools/gcloud_reference.py), so a command gets the same
verdict whether or not gcloud is installed where the grader runs: points never
depend on it. For commands the table does not hold, nothing is concluded.

The grader's own rules come first: a command that reads flags or credentials
from a file, selects a named configuration or changes gcloud's installation,
or names a file outside the submission, is never replayed and is refused with
a message (`refusal`).

    from autograder import gcloud_cli
    problem = gcloud_cli.check(["gcloud", "run", "deploy", "x", "--cpu-bost"], tree=..., cwd=...)
    problem.message   # "unrecognized arguments: --cpu-bost (did you mean '--cpu-boost'?)"
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from autograder.shell_words import gcloud_words

DATA = Path(__file__).resolve().with_name("data") / "gcloud_cli.json"
TRACKS = ("alpha", "beta", "preview")

# Flags that make gcloud read a file or another configuration, or write its
# installation: what they would read is outside the grader's view, and what
# they would change outlives the run.
REFUSED_FLAGS = {
    "--flags-file": "reads more flags from a file, which the grader never opens: write the "
    "flags in the command itself",
    "--configuration": "selects a named gcloud configuration that exists only on your machine: "
    "pass --project and --region in the command instead",
    "--installation": "changes the gcloud installation itself, for every user: set the "
    "property without --installation",
    "--access-token-file": "reads credentials from a file: scripts use the account "
    "`gcloud auth login` set up",
    "--credential-file-override": "reads credentials from a file: scripts use the account "
    "`gcloud auth login` set up",
    "--authorization-token-file": "reads credentials from a file: scripts use the account "
    "`gcloud auth login` set up",
}
# gcloud config properties replayed into the throwaway configuration; any other
# `config set` (proxies, credential files, endpoints) is not replayed.
REPLAYED_PROPERTIES = frozenset(
    {
        "project",
        "core/project",
        "account",
        "core/account",
        "disable_prompts",
        "core/disable_prompts",
        "verbosity",
        "core/verbosity",
        "run/region",
        "run/platform",
        "compute/region",
        "compute/zone",
        "builds/region",
        "artifacts/location",
        "artifacts/repository",
    }
)


@dataclass(frozen=True)
class Problem:
    message: str
    refused: bool = False  # a grader rule (never replayed), not one of gcloud's own


@cache
def reference() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def _value_of(word: str) -> str:
    return word.split("=", 1)[1] if word.startswith("-") and "=" in word else word


def outside_files(argv: Sequence[str], tree: Path, cwd: str | os.PathLike) -> list[str]:
    """Arguments naming an existing file or folder outside `tree` (after resolving links)."""
    tree = Path(os.path.realpath(tree))
    found = []
    for word in argv[1:]:
        value = _value_of(word)
        if not value or value.startswith("-") or len(value) > 4096 or "\0" in value:
            continue
        path = Path(value) if os.path.isabs(value) else Path(cwd, value)
        try:
            if not path.exists():
                continue
            real = Path(os.path.realpath(path))
        except OSError:
            continue
        if real != tree and tree not in real.parents:
            found.append(value)
    return found


def command_words(argv: Sequence[str]) -> list[str]:
    """The positional words of `gcloud ...` (flags and the values they take left out)."""
    return gcloud_words(argv[1:], value_flags())


@cache
def value_flags() -> frozenset[str]:
    """Every flag that takes a value, in any command or globally (shell_words.gcloud_words)."""
    data = reference()
    names = {n for n, f in data["global_flags"].items() if f["value"]}
    for command in data["commands"].values():
        names.update(n for n, f in command["flags"].items() if f["value"])
    return frozenset(names)


def refusal(argv: Sequence[str], *, tree: Path | None, cwd: str | os.PathLike | None) -> str | None:
    """Why the grader will not replay this command (None: it may)."""
    for word in argv[1:]:
        name = word.split("=", 1)[0]
        if name in REFUSED_FLAGS:
            return f"{name} {REFUSED_FLAGS[name]}"
    words = command_words(argv)
    if words[:2] == ["config", "set"] and len(words) > 2 and words[2] not in REPLAYED_PROPERTIES:
        return f"`gcloud config set {words[2]}` is not replayed (only project, region and similar)"
    if tree is not None:
        outside = outside_files(argv, Path(tree), cwd or tree)
        if outside:
            return (
                f"it names {outside[0]}, which is outside your submission: scripts may only "
                "use files of the repository"
            )
    return None


def check(argv: Sequence[str], *, tree: Path | None = None, cwd=None) -> Problem | None:
    """What gcloud (or the grader) would refuse in `argv`; None when nothing is found."""
    argv = [str(word) for word in argv]
    refused = refusal(argv, tree=tree, cwd=cwd)
    if refused:
        return Problem(f"the grader does not run this command: {refused}", refused=True)
    return _parse(argv)


# -- gcloud's own rules, from the vendored CLI tree ------------------------------------------


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """(command path, the rest) by walking the known groups word by word."""
    data = reference()
    groups = data["groups"]
    path: list[str] = []
    rest: list[str] = []
    words = iter(argv[1:])
    for word in words:
        if word.startswith("-"):
            rest.append(word)
            flag = data["global_flags"].get(word.split("=", 1)[0])
            if flag and flag["value"] and "=" not in word:
                rest.append(next(words, ""))
            continue
        key = " ".join([*path, word])
        if (" ".join(path) in groups or not path) and (key in groups or key in data["commands"]):
            path.append(word)
            continue
        rest.append(word)
        rest.extend(words)
        break
    return path, rest


def _parse(argv: list[str]) -> Problem | None:
    data = reference()
    path, rest = _split(argv)
    if not path or path[-1] in TRACKS:
        return None  # a group the table does not hold (fully): nothing concluded
    key = " ".join(path)
    label = "gcloud." + ".".join(path)
    if key in data["groups"]:
        following = next((w for w in rest if not w.startswith("-")), None)
        if following is None:
            return None  # `gcloud run` alone prints help: nothing to refuse
        return Problem(
            f"({label}) Invalid choice: '{following}'." + _suggest(following, data["groups"][key])
        )
    command = data["commands"][key]
    flags = {**_global_flags(), **_with_aliases(command["flags"])}
    positionals: list[str] = []
    seen: list[str] = []
    words = iter(rest)
    for word in words:
        if not word.startswith("-") or word == "-":
            positionals.append(word)
            continue
        name, has_value, value = word.partition("=")
        flag = flags.get(name)
        if flag is None:
            return Problem(
                f"({label}) unrecognized arguments: {word}" + _suggest(name, list(flags))
            )
        seen.append(flag["name"])
        if not flag["value"]:
            if has_value:
                return Problem(f"({label}) argument {name}: ignored explicit argument '{value}'")
            continue
        if not has_value:
            value = next(words, None)
            if value is None or (value.startswith("--") and value != "--"):
                return Problem(f"({label}) argument {name}: expected one argument")
        problem = _check_value(label, name, flag, value)
        if problem:
            return problem
    for group in command["mutex"]:
        used = [member for member in group if any(name in seen for name in member)]
        if len(used) > 1:
            choices = " | ".join(" ".join(member) for member in group)
            given = next(name for name in used[0] if name in seen)
            return Problem(
                f"({label}) argument {given}: At most one of {choices} can be specified."
            )
    return _check_positionals(label, command["positionals"], positionals)


def _with_aliases(flags: dict) -> dict:
    named = {}
    for name, flag in flags.items():
        spec = {**flag, "name": name}
        named[name] = spec
        for alias in flag.get("aliases", []):
            named[alias] = spec
    return named


@cache
def _global_flags() -> dict:
    return _with_aliases(reference()["global_flags"])


_DURATION = re.compile(r"(?i)^(\d+(\.\d+)?[smhd]?)+$")
_KEY_VALUE = re.compile(r"^[^=]+=.*$")


def _check_value(label: str, name: str, flag: dict, value: str) -> Problem | None:
    choices = flag.get("choices")
    if choices and value not in choices:
        return Problem(f"({label}) argument {name}: Invalid choice: '{value}'.")
    kind = flag.get("type")
    if kind == "dict":
        pairs = _dict_items(value)
        if any(not _KEY_VALUE.match(pair) for pair in pairs if pair):
            return Problem(f"({label}) argument {name}: Bad syntax for dict arg: [{value}].")
    elif kind == "duration" and not _DURATION.match(value):
        return Problem(f"({label}) argument {name}: Failed to parse duration: {value}")
    elif kind == "int" and not re.fullmatch(r"-?\d+|default", value):
        return Problem(f"({label}) argument {name}: Bad value [{value}]: must be an integer")
    return _special_value(label, name, value)


def _dict_items(value: str) -> list[str]:
    """gcloud's KEY=VALUE,... list, with its ^DELIM^ alternative delimiter."""
    if value.startswith("^") and value.find("^", 1) > 0:
        end = value.find("^", 1)
        return value[end + 1 :].split(value[1:end])
    return value.split(",")


# Value rules gcloud applies offline to flags students use, with its messages.
def _special_value(label: str, name: str, value: str) -> Problem | None:
    if name == "--port" and not (
        value == "default" or (value.isdigit() and 1 <= int(value) <= 65535)
    ):
        return Problem(
            f"({label}) argument --port: Bad value [{value}]: must be an integer between 1 "
            'and 65535, inclusive, or "default".'
        )
    if name == "--concurrency" and not (value == "default" or (value.isdigit() and int(value) > 0)):
        return Problem(
            f"({label}) argument --concurrency: Bad value [{value}]: must be an integer "
            'greater than 0 or "default".'
        )
    if name in ("--max-instances", "--min-instances") and value != "default":
        if not re.fullmatch(r"-?\d+", value):
            return Problem(f"({label}) argument {name}: Bad value [{value}]: must be an integer")
        if int(value) < 0:
            return Problem(f"(gcloud) Instance count value {value} is negative.")
    return None


def _check_positionals(label: str, specs: list[dict], given: list[str]) -> Problem | None:
    most = 0
    unbounded = False
    for spec in specs:
        nargs = spec["nargs"]
        if nargs in ("*", "+"):
            unbounded = True
        elif nargs == "?":
            most += 1
        else:
            most += int(nargs) if nargs.isdigit() and int(nargs) > 0 else 1
    if not unbounded and len(given) > most:
        return Problem(f"({label}) unrecognized arguments: {' '.join(given[most:])}")
    return None


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.8)
    return f" (did you mean '{close[0]}'?)" if close else ""
