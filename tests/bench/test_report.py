"""The report's target checks, on made-up measurements whose verdicts are known."""

from __future__ import annotations

import pytest

from bench.report import render, targets


def stage(users, throughput, p50=100.0, p99=150.0, name="predict"):
    return {
        "name": name, "users": users, "seconds": 4.0, "requests": 100, "errors": 0,
        "throughput": throughput, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99,
    }  # fmt: skip


def limit(rate, latency_ms=50.0):
    best = {"processes": 1, "threads": 2, "batch": 8, "img_per_s": rate}
    return {"best": best, "best_one_process": best, "batch1_latency_ms": latency_ms}


def ceiling(rate, bound):
    forward = {"processes": 1, "threads": 2, "batch": 8, "img_per_s": 33.0}
    pipelined = {"forward_only_best": forward, "preprocess_ms_per_image": 4.0, "img_per_s": bound}
    return {**limit(rate), "pipelined_bound": pipelined}


def results(*, kit_rate, ceiling_rate, bound=None, gateway_ms=(45.0, 46.0, 43.0)):
    v1 = [stage(1, 18, p50=52), *(stage(c, 24, p99=300) for c in (4, 8, 16))]
    kit = [stage(c, kit_rate, p99=600) for c in (4, 8, 16)]
    via, floor, direct = gateway_ms
    return {
        "machine_before": {"cores": 2, "load1": 0.5, "load5": 0.5},
        "machine_after": {"cores": 2, "load1": 0.5, "load5": 0.5},
        "elapsed_s": 500,
        "models": {
            "resnet50": {
                "limit": limit(23.0),
                "ceiling": ceiling(ceiling_rate, bound or ceiling_rate),
                "contenders": {"backend_v1": {"stages": v1}, "original_kit": {"stages": kit}},
            },
            "resnet18": {
                "limit": limit(60.0),
                "contenders": {"backend_v1": {"stages": [stage(c, 57) for c in (4, 8, 16)]}},
            },
        },
        "gateway": {
            "model": "resnet50",
            "stages": [
                stage(1, 10, p50=via),
                stage(1, 10, p50=floor, name="passthrough"),
                stage(1, 10, p50=direct, name="direct"),
            ],
        },
    }


def verdicts(measured: dict) -> dict[str, tuple[str, bool]]:
    return {target: (text, met) for target, text, met in targets(measured)}


KIT = "at least 1.5x the original kit's throughput, lower p99"
GATEWAY = "the gateway adds at most 2 ms to p50"


def test_a_kit_target_beyond_the_pipelined_bound_is_reported_out_of_reach():
    text, met = verdicts(results(kit_rate=20.0, ceiling_rate=28.0, bound=29.5))[KIT]
    assert not met
    assert "c=4: x1.20, p99 300 vs 600 ms" in text
    assert (
        "out of reach here: 1.5x the kit's 20.0 img/s is 30.0, above the most any server "
        "could reach (29.5)"
    ) in text
    text, _ = verdicts(results(kit_rate=20.0, ceiling_rate=28.0, bound=30.5))[KIT]
    assert "out of reach" not in text


def test_a_kit_target_within_the_ceiling_is_only_missed():
    text, met = verdicts(results(kit_rate=15.0, ceiling_rate=29.0))[KIT]
    assert met is True  # 24 / 15 = 1.6 with half the p99
    text, met = verdicts(results(kit_rate=18.0, ceiling_rate=29.0))[KIT]
    assert not met
    assert "out of reach" not in text


def test_the_gateway_is_judged_on_p50_and_shown_against_a_bare_proxy():
    text, met = verdicts(results(kit_rate=15.0, ceiling_rate=29.0))[GATEWAY]
    assert met is True
    assert text == (
        "45.0 ms via the gateway, 43.0 ms direct: +2.0 ms (a bare pass-through proxy: +3.0 ms)"
    )
    late = results(kit_rate=15.0, ceiling_rate=29.0, gateway_ms=(45.1, 44.0, 43.0))
    assert verdicts(late)[GATEWAY][1] is False


def paired(name, median, low, high):
    return {"name": name, "pairs": 150, "median_ms": median, "ci95_ms": [low, high]}


def test_the_gateway_is_judged_on_its_turn_paired_median_when_measured():
    measured = results(kit_rate=15.0, ceiling_rate=29.0, gateway_ms=(45.5, 44.0, 43.0))
    measured["gateway"]["paired"] = [
        paired("passthrough", 1.4, 1.1, 1.9),
        paired("predict", 1.8, 1.4, 2.3),
    ]
    text, met = verdicts(measured)[GATEWAY]
    assert met is True  # the unpaired p50s differ by 2.5 ms
    assert text.startswith(
        "paired by turn: +1.8 ms (95% CI +1.4 to +2.3) over 150 turns "
        "(a bare pass-through proxy: +1.4 ms (95% CI +1.1 to +1.9)); "
        "unpaired p50s: 45.5 ms via the gateway, 43.0 ms direct: +2.5 ms"
    )
    assert "- via gateway: +1.8 ms (95% CI +1.4 to +2.3)" in render(measured)
    measured["gateway"]["paired"][1] = paired("predict", 2.1, 1.7, 2.6)
    assert verdicts(measured)[GATEWAY][1] is False


def test_the_small_model_and_the_limits_are_judged_and_rendered():
    measured = results(kit_rate=15.0, ceiling_rate=29.0)
    text, met = verdicts(measured)["resnet18: at least 0.9 of its limit (concurrency >= 4)"]
    assert (text, met) == ("c=4: 0.95, c=8: 0.95, c=16: 0.95", True)
    markdown = render(measured)
    assert "**29.0 img/s** (1 process(es) x 2 thread(s), batch 8), x1.26 the limit" in markdown
    assert "The pipelined bound: **29.0 img/s**" in markdown
    assert "at 33.0 img/s (1 process(es) x 2 thread(s), batch 8) plus 4.0 ms" in markdown
    assert "| via bare proxy | 100 | 46.0 |" in markdown


def test_a_ratio_that_rounds_onto_its_bound_shows_which_side_it_is_on():
    text, met = verdicts(results(kit_rate=16.02, ceiling_rate=29.0))[KIT]
    assert not met
    assert "c=4: x1.498" in text  # 24 / 16.02: "x1.50" would read as met
    text, met = verdicts(results(kit_rate=16.003, ceiling_rate=29.0))[KIT]
    assert not met
    assert "c=4: x1.499" in text  # 1.4997: rounded it would be 1.500
    text, met = verdicts(results(kit_rate=16.0, ceiling_rate=29.0))[KIT]
    assert met
    assert "c=4: x1.50," in text


def test_the_cold_start_is_shown_as_a_signed_difference_from_the_import():
    cold = "cold start at most the torch+torchvision import time + 0.5 s"
    measured = results(kit_rate=15.0, ceiling_rate=29.0)
    measured["cold_start"] = {"ready_s": [6.6, 6.7, 6.8], "import_s": [6.8, 6.9, 7.0]}
    assert verdicts(measured)[cold] == ("ready after 6.70 s, import 6.90 s: -0.20 s", True)
    measured["cold_start"] = {"ready_s": [7.6], "import_s": [6.9]}
    assert verdicts(measured)[cold] == ("ready after 7.60 s, import 6.90 s: +0.70 s", False)


def test_backend_v2_is_judged_against_backend_v1_at_four_users():
    target = "backend_v2 (same model) at least 0.9 of backend_v1's throughput at 4 users"
    measured = results(kit_rate=15.0, ceiling_rate=29.0)
    contenders = measured["models"]["resnet50"]["contenders"]
    contenders["backend_v2"] = {"stages": [stage(4, 21.5)]}
    text, met = verdicts(measured)[target]
    assert met is False  # 21.5 / 24 = 0.8958, shown on its side of 0.9
    assert text.startswith("21.50 vs 24.00 img/s: x0.895")
    contenders["backend_v2"] = {"stages": [stage(4, 21.6)]}
    assert verdicts(measured)[target][1] is True


def test_paired_rounds_are_compared_within_each_round():
    from bench.paired import summarise
    from bench.report import render_paired

    def one_round(v1, v2, base):
        return {
            "backend_v1": [stage(4, v1)],
            "backend_v2": [stage(4, v2)],
            "backend_v1 (baseline)": [stage(4, base)],
        }

    # The machine slows by a third in round 2; within each round the ratios hold.
    rounds = [one_round(30, 29, 30), one_round(20, 18, 20.5), one_round(31, 30, 31)]
    comparisons = summarise(rounds)
    v2 = comparisons["backend_v2 / backend_v1"]["by_users"]["4"]
    assert v2["median"] == pytest.approx(29 / 30)
    assert (v2["low"], v2["high"]) == (pytest.approx(0.9), pytest.approx(30 / 31))
    v1 = comparisons["backend_v1 / backend_v1 (baseline)"]
    assert v1["at_least"] == 0.97
    assert v1["by_users"]["4"]["median"] == pytest.approx(1.0)
    markdown = render_paired(
        {
            "model": "resnet50",
            "machine_before": {"cores": 2, "load1": 0.4},
            "machine_after": {"cores": 2, "load1": 0.6},
            "elapsed_s": 300,
            "baseline": "8f5f840 before",
            "this_tree": "abc1234 after",
            "rounds": rounds,
            "comparisons": comparisons,
        }
    )
    assert "| 2 | 20.00 | 18.00 | 20.50 |" in markdown
    assert "| backend_v2 / backend_v1 | 4 | 0.967 | 0.900 to 0.968 | 0.9 | yes |" in markdown
    assert "the baseline is 8f5f840 before" in markdown


def test_the_report_says_which_cpu_it_ran_on_when_recorded():
    recorded = results(kit_rate=15.0, ceiling_rate=40.0)
    recorded["machine_before"]["cpu"] = "AMD EPYC, AVX2"
    assert "2 cores (AMD EPYC, AVX2); load average" in render(recorded)
    # Runs recorded before the CPU was: the line reads as it did.
    assert "2 cores; load average" in render(results(kit_rate=15.0, ceiling_rate=40.0))


def test_the_cpu_is_described_by_its_model_and_widest_vector_extension():
    from bench.__main__ import cpu_description

    described = cpu_description()
    model, _, widest = described.rpartition(", ")
    assert model
    assert widest in {"AMX", "AVX-512", "AVX2", "no AVX2"}
