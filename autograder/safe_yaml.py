"""Load student YAML safely: refuse duplicate keys and alias bombs with a message.

PyYAML's SafeLoader already refuses arbitrary Python objects, but it silently
keeps the last of two duplicate keys (so a student's first `steps:` vanishes)
and expands aliases without limit ("billion laughs"). Both are checked on the
composed node graph, before any Python object is built.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from autograder.feedback import CheckFailed

MAX_EXPANDED_NODES = 100_000
MAX_BYTES = 1_000_000


class _Loader(yaml.SafeLoader):
    """SafeLoader; kept separate so our checks never change the global one."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], where: str) -> int:
    """Nodes the document would have once every alias is expanded (memoised per node)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle (recursive alias) counts once instead of looping forever
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(
            _expanded_size(k, memo, where) + _expanded_size(v, memo, where) for k, v in node.value
        )
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo, where) for item in node.value)
    else:
        size = 1
    memo[key] = size
    if size > MAX_EXPANDED_NODES:
        raise CheckFailed(
            what="the YAML uses anchors/aliases that expand into an enormous document",
            expected=f"at most {MAX_EXPANDED_NODES} values once aliases (*name) are expanded",
            found=f"more than {MAX_EXPANDED_NODES}",
            fix="write the values out instead of nesting aliases (&anchor / *alias)",
            where=where,
        )
    return size


def _check_duplicate_keys(node: yaml.Node, where: str, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in keys and key_node.value != "<<":
                    raise CheckFailed(
                        what=f"the key `{key_node.value}` appears twice in the same mapping",
                        expected="each key once per mapping (YAML keeps only the last one)",
                        found=f"`{key_node.value}` on lines {keys[key_node.value]} and {line}",
                        fix="merge the two entries into one, or fix the indentation of the second",
                        where=where,
                    )
                keys[key_node.value] = line
            _check_duplicate_keys(value_node, where, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, where, seen)


def load_yaml_text(text: str, where: str):
    """Parse one YAML document; any problem becomes a CheckFailed naming `where`."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise CheckFailed(
            what="the file is too large to be a configuration file",
            expected=f"under {MAX_BYTES} bytes",
            found=f"{len(text)} characters",
            fix="keep only the configuration in this file",
            where=where,
        )
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.composer.ComposerError as exc:
        raise _syntax_error(exc, where, "more than one YAML document (---)") from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where) from None
    if node is None:
        return None
    _expanded_size(node, {}, where)
    _check_duplicate_keys(node, where, set())
    loader = _Loader(text)
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, where) from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path, where: str):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CheckFailed(
            what="the file is not UTF-8 text",
            fix="save it as plain UTF-8 text (no word processor)",
            where=where,
        ) from None
    return load_yaml_text(text, where)


def _syntax_error(exc: yaml.YAMLError, where: str, found: str = "") -> CheckFailed:
    mark = getattr(exc, "problem_mark", None)
    position = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return CheckFailed(
        what=f"the file is not valid YAML{position}",
        expected="valid YAML (spaces for indentation, `key: value`, lists with `- `)",
        found=found or problem,
        fix="fix the line shown; a YAML linter or your editor's YAML mode shows the exact spot",
        where=where,
    )
