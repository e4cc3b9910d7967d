"""Run locust headless in its own process against one server and summarise each stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO_ROOT = LOCUSTFILE.parents[1]


@dataclass(frozen=True)
class StageResult:
    name: str  # request name: "predict", or a name from `also` in paired runs
    users: int
    seconds: float
    requests: int
    errors: int
    throughput: float  # successful responses per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def to_json(self) -> dict:
        return asdict(self)


def run_locust(
    url: str,
    photos: Path,
    stages: list[int],
    *,
    stage_seconds: float,
    warmup: float,
    out: Path,
    log: Path,
    also: dict[str, str] | None = None,
) -> list[StageResult]:
    """`also`: name -> base URL, each called after the host with the same upload."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BENCH_PHOTOS": str(photos),
        "BENCH_STAGES": ",".join(map(str, stages)),
        "BENCH_STAGE_S": str(stage_seconds),
        "BENCH_OUT": str(out),
        "BENCH_ALSO": ",".join(f"{name}={url}" for name, url in (also or {}).items()),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--only-summary", "--stop-timeout", "0", "--loglevel", "WARNING",
    ]  # fmt: skip
    budget = stage_seconds * len(stages) + 120
    with log.open("ab") as log_file:
        subprocess.run(
            command, env=env, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
            timeout=budget, check=False,
        )  # fmt: skip
    # locust exits 1 when any request failed; the samples say what happened.
    return summarise(json.loads(out.read_text()), warmup)


def summarise(raw: dict, warmup: float) -> list[StageResult]:
    starts = raw["stage_starts"]
    ends = [start for start, _ in starts[1:]] + [raw["end"]]
    names = sorted({name for name, *_ in raw["samples"]})
    results = []
    for (start, users), end in zip(starts, ends, strict=True):
        window_start = start + warmup
        for name in names:
            inside = [
                (ms, ok)
                for sample_name, finished, ms, ok in raw["samples"]
                if sample_name == name and window_start <= finished < end
            ]
            ok_ms = np.array([ms for ms, ok in inside if ok])
            seconds = max(end - window_start, 1e-9)

            def pct(q, values=ok_ms):
                return float(np.percentile(values, q)) if len(values) else None

            results.append(
                StageResult(
                    name=name,
                    users=users,
                    seconds=round(seconds, 2),
                    requests=len(inside),
                    errors=sum(1 for _, ok in inside if not ok),
                    throughput=len(ok_ms) / seconds,
                    p50_ms=pct(50),
                    p95_ms=pct(95),
                    p99_ms=pct(99),
                )
            )
    return results
