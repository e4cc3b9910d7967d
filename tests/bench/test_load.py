"""Summarising locust's raw samples: only each level's measured part counts."""

import pytest

from bench.load import summarise


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
