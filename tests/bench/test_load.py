"""Summarising locust's raw samples: only each level's measured part counts."""

import numpy as np
import pytest

from bench.load import paired_differences, summarise


def test_each_level_is_measured_after_its_warm_up_and_failures_are_counted_apart():
    raw = {
        "stage_starts": [[100.0, 1], [110.0, 4]],
        "end": 120.0,
        "samples": [
            ["predict", 100.5, 999.0, True],  # warm-up of level 1: dropped
            *(["predict", 102.0 + i, 10.0 * (i + 1), True] for i in range(8)),  # 10..80 ms
            ["predict", 111.0, 5.0, True],  # warm-up of level 4
            *(["predict", 112.0 + i / 4, 20.0, True] for i in range(28)),
            ["predict", 119.0, 1.0, False],
            ["direct", 113.0, 7.0, True],
        ],
    }
    by_level = {(r.users, r.name): r for r in summarise(raw, warmup=2.0)}
    one, four, four_direct = by_level[1, "predict"], by_level[4, "predict"], by_level[4, "direct"]
    assert by_level[1, "direct"].requests == 0
    assert (one.users, one.requests, one.errors) == (1, 8, 0)
    assert one.seconds == 8.0
    assert one.throughput == pytest.approx(1.0)
    assert one.p50_ms == pytest.approx(45.0)
    assert one.p99_ms == pytest.approx(79.3)
    assert (four_direct.name, four_direct.requests, four_direct.p50_ms) == ("direct", 1, 7.0)
    assert (four.requests, four.errors) == (29, 1)
    assert four.throughput == pytest.approx(28 / 8.0)
    assert four.p50_ms == four.p99_ms == 20.0  # the failed request is not a latency


def test_paths_are_compared_turn_by_turn_after_the_warm_up():
    # Photos alternate between 20 and 60 ms direct: unpaired p50s would mix them,
    # the gateway adds 1.5 ms and the proxy 1.0 ms to every turn.
    turns = [[101.0, {"predict": 999.0, "passthrough": 1.0, "direct": 1.0}]]  # warm-up
    for i in range(40):
        direct = 20.0 if i % 2 else 60.0
        turns.append(
            [
                103.0 + i / 10,
                {"predict": direct + 1.5, "passthrough": direct + 1.0, "direct": direct},
            ]
        )
    turns.append([108.0, {"predict": None, "passthrough": 500.0, "direct": 20.0}])  # a failure
    raw = {"stage_starts": [[100.0, 1]], "end": 110.0, "samples": [], "turns": turns}

    paired = {p.name: p for p in paired_differences(raw, warmup=2.0, base="direct")}

    assert set(paired) == {"predict", "passthrough"}
    assert (paired["predict"].pairs, paired["predict"].median_ms) == (40, 1.5)
    assert paired["predict"].ci95_ms == (1.5, 1.5)
    assert paired["passthrough"].pairs == 41  # the failed gateway call does not drop it
    assert paired["passthrough"].median_ms == 1.0


def test_the_interval_of_a_noisy_difference_contains_its_median():
    rng = np.random.default_rng(1)
    direct = rng.normal(40.0, 6.0, 200)
    turns = [
        [101.0 + i / 100, {"predict": d + 2.0 + rng.normal(0, 1.0), "direct": d}]
        for i, d in enumerate(direct)
    ]
    raw = {"stage_starts": [[100.0, 1]], "end": 104.0, "samples": [], "turns": turns}

    (added,) = paired_differences(raw, warmup=0.5, base="direct")

    low, high = added.ci95_ms
    assert low < added.median_ms < high
    # Pairing removes the 6 ms spread of the direct calls: the median is known to +-0.5 ms.
    assert low > 1.5
    assert high < 2.5
