"""From each answer to a sample, from the samples of one run to its summary, and from
the summary to verdicts. No locust here: importing it patches the whole process."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np


def judge(status: int, text: str | None, error: BaseException | None) -> str:
    """'' for a success (200 with predictions), else a short name for the failure."""
    if not status:
        return type(error).__name__ if error else "no answer"
    try:
        body = json.loads(text or "")
    except ValueError:
        body = None
    if status == 200:
        ok = isinstance(body, dict) and isinstance(body.get("predictions"), list)
        return "" if ok else "HTTP 200 without predictions"
    code = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or "")
    return f"HTTP {status} {code}".strip()


@dataclass(frozen=True)
class Summary:
    """What one run measured. Latencies are those of successful requests only:
    a failed request counts against the success rate, not as a latency."""

    users: int
    seconds: float  # from the first user's start to the end of the test
    requests: int
    successes: int
    errors: dict[str, int]  # failure kind -> count, most frequent first
    throughput: float  # successful responses per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def success_percent(self) -> float | None:
        return 100.0 * self.successes / self.requests if self.requests else None


def summarise(raw: dict, users: int) -> Summary:
    samples = raw.get("samples") or []
    start = raw.get("start") or (min(s[0] for s in samples) if samples else raw["end"])
    seconds = max(raw["end"] - start, 1e-9)
    ok_ms = np.array([ms for _, ms, ok, _ in samples if ok], dtype=float)

    def pct(q: float) -> float | None:
        return float(np.percentile(ok_ms, q)) if len(ok_ms) else None

    return Summary(
        users=users,
        seconds=round(seconds, 2),
        requests=len(samples),
        successes=len(ok_ms),
        errors=dict(Counter(reason for _, _, ok, reason in samples if not ok).most_common()),
        throughput=len(ok_ms) / seconds,
        p50_ms=pct(50),
        p95_ms=pct(95),
        p99_ms=pct(99),
        max_ms=float(ok_ms.max()) if len(ok_ms) else None,
    )


@dataclass(frozen=True)
class Verdict:
    objective: str  # e.g. "p95 latency"
    target: str  # e.g. "<= 1000 ms"
    measured: str
    met: bool


@dataclass(frozen=True)
class Objectives:
    """Service-level objectives, each None when not set."""

    success_percent: float | None = 99.5
    p95_ms: float | None = 1000.0
    p99_ms: float | None = None
    min_throughput: float | None = None

    def judge(self, summary: Summary) -> list[Verdict]:
        verdicts = []
        if self.success_percent is not None:
            rate = summary.success_percent
            verdicts.append(
                Verdict(
                    "success rate",
                    f">= {self.success_percent:g} %",
                    "no request completed" if rate is None else f"{rate:.2f} %",
                    rate is not None and rate >= self.success_percent,
                )
            )
        for name, target, measured in (
            ("p95 latency", self.p95_ms, summary.p95_ms),
            ("p99 latency", self.p99_ms, summary.p99_ms),
        ):
            if target is not None:
                verdicts.append(
                    Verdict(
                        name,
                        f"<= {target:g} ms",
                        "no successful request" if measured is None else f"{measured:.0f} ms",
                        measured is not None and measured <= target,
                    )
                )
        if self.min_throughput is not None:
            verdicts.append(
                Verdict(
                    "throughput",
                    f">= {self.min_throughput:g} req/s",
                    f"{summary.throughput:.2f} req/s",
                    summary.throughput >= self.min_throughput,
                )
            )
        return verdicts
