"""Contenders measured in turns, round after round, and compared within each round.

A full run's contenders run minutes apart, and this machine's speed drifts by
more than the few per cent a before/after comparison is about. Here every
contender is started once and they take turns under the same load, round after
round, each round in a rotated order (no contender always goes first); the ratio
of two contenders' throughput is taken within each round, where the machine was
the same, and summarised by its median and range over the rounds.

    python -m bench --paired --baseline-tree /tmp/base --rounds 6 --stages 1,4,8

compares backend_v1 with backend_v2 (serving the same model) and, with a
baseline tree (a `git worktree` of an earlier commit), backend_v1 with backend_v1
as it was there.
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import servers

# (numerator, denominator, the least the median ratio should be)
V2_AGAINST_V1 = ("backend_v2", "backend_v1", 0.9)
V1_AGAINST_BASELINE = ("backend_v1", "backend_v1 (baseline)", 0.97)


@dataclass(frozen=True)
class Contender:
    label: str
    start: Callable[[], servers.Server]


def contenders(model: str, assets, log_dir: Path, baseline_tree: Path | None) -> list[Contender]:
    weights = assets.weights(model)
    chosen = [
        Contender("backend_v1", lambda: servers.start_backend_v1(model, weights, log_dir)),
        Contender("backend_v2", lambda: servers.start_backend_v2(model, weights, log_dir)),
    ]
    if baseline_tree is not None:
        tree = baseline_tree.resolve()
        chosen.append(
            Contender(
                V1_AGAINST_BASELINE[1],
                lambda: servers.start_backend_v1(model, weights, log_dir, tree),
            )
        )
    return chosen


def commit_of(tree: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h (%cs)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def run_rounds(chosen: list[Contender], rounds: int, measure) -> list[dict[str, list[dict]]]:
    """`measure(server, label, round)` -> stages, for every contender in every round."""
    started = {c.label: c.start() for c in chosen}
    try:
        measured = []
        for number in range(rounds):
            shift = number % len(chosen)
            order = chosen[shift:] + chosen[:shift]
            measured.append({c.label: measure(started[c.label], c.label, number) for c in order})
        return measured
    finally:
        for server in started.values():
            server.stop()


def ratios(measured: list[dict[str, list[dict]]], numerator: str, denominator: str) -> dict:
    """Per concurrency: the round-by-round throughput ratios and their median and range."""
    by_users: dict[int, list[float]] = {}
    for one_round in measured:
        if numerator not in one_round or denominator not in one_round:
            continue
        below = {s["users"]: s["throughput"] for s in one_round[denominator]}
        for stage in one_round[numerator]:
            base = below.get(stage["users"])
            if base:
                by_users.setdefault(stage["users"], []).append(stage["throughput"] / base)
    return {
        str(users): {
            "rounds": values,
            "median": statistics.median(values),
            "low": min(values),
            "high": max(values),
        }
        for users, values in sorted(by_users.items())
    }


def summarise(measured: list[dict[str, list[dict]]]) -> dict:
    comparisons = {}
    for numerator, denominator, least in (V2_AGAINST_V1, V1_AGAINST_BASELINE):
        found = ratios(measured, numerator, denominator)
        if found:
            comparisons[f"{numerator} / {denominator}"] = {"at_least": least, "by_users": found}
    return comparisons
