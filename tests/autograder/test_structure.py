"""The grader's module structure: no import circle, lazy or not."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.autograder.builders import REPO_ROOT

PACKAGE = REPO_ROOT / "autograder"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The autograder modules `path` imports anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py") if not p.name.startswith("test_")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        # A package loading its own modules (the checks registry) is not a circle.
        graph[name] = {m for m in _imports(path, modules) - {name} if not m.startswith(name + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_grader_module_imports_itself_back():
    graph = import_graph()
    assert "autograder.checks.build" in graph["autograder.engine"]  # the walk sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_context_knows_nothing_of_the_checks():
    """Warming the checks up is the engine's business; the context only remembers."""
    graph = import_graph()
    reachable, todo = set(), ["autograder.context"]
    while todo:
        for module in graph[todo.pop()] - reachable:
            reachable.add(module)
            todo.append(module)
    assert not {m for m in reachable if m.startswith("autograder.checks")}, reachable


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
