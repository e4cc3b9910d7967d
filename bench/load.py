"""Run locust headless in its own process against one server and summarise each stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

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
    """`also`: name -> base URL, each called in the same turn as the host, in a shuffled
    order, with the same upload."""
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


@dataclass(frozen=True)
class PairedDifference:
    """How much longer a path took than the base path in the same turns (same photo and moment)."""

    name: str
    pairs: int
    median_ms: float
    ci95_ms: tuple[float, float]  # bootstrap percentile interval of the median

    def to_json(self) -> dict:
        return asdict(self)


def paired_differences(raw: dict, warmup: float, base: str) -> list[PairedDifference]:
    """Per path, the median of (its latency - the base's) over the turns after the warm-up.

    Pairing cancels what the paths share: the photo (decoding time differs
    several-fold between them) and part of the machine's slow moments. Over ~100
    turns here, the 95% interval of the paired median was 1-4 ms wide, against 2-5 ms
    for a difference of two unpaired p50s. Turns where either request failed are left out.
    """
    window_start = raw["stage_starts"][0][0] + warmup if raw["stage_starts"] else 0.0
    turns = [turn for finished, turn in raw.get("turns", []) if finished >= window_start]
    names = sorted({name for turn in turns for name in turn} - {base})
    results = []
    for name in names:
        differences = np.array(
            [
                turn[name] - turn[base]
                for turn in turns
                if turn.get(name) is not None and turn.get(base) is not None
            ]
        )
        if len(differences) < 2:
            continue
        interval = stats.bootstrap(
            (differences,), np.median, method="percentile", n_resamples=2000, random_state=0
        ).confidence_interval
        results.append(
            PairedDifference(
                name=name,
                pairs=len(differences),
                median_ms=float(np.median(differences)),
                ci95_ms=(float(interval.low), float(interval.high)),
            )
        )
    return results
