"""tools/loadtest without a server: arguments, judging answers, summaries, objectives, report."""

from __future__ import annotations

import pytest

from tests.tools.loadtest_runs import is_loopback
from tools.loadtest.__main__ import parse_args
from tools.loadtest.report import markdown, plot
from tools.loadtest.results import Objectives, judge, summarise


def raw_run(latencies_ok, failures=(), start=1000.0, seconds=10.0):
    samples = [[start + i * 0.1, ms, True, ""] for i, ms in enumerate(latencies_ok)]
    samples += [[start + 5.0, ms, False, reason] for ms, reason in failures]
    return {"start": start, "end": start + seconds, "samples": samples}


def test_the_defaults_are_the_issue_objectives_and_bounds():
    args = parse_args(["http://127.0.0.1:8080/"])
    assert args.url == "http://127.0.0.1:8080"
    assert (args.users, args.seconds, args.max_requests) == (4, 30, 5000)
    assert (args.success, args.p95_ms, args.p99_ms, args.min_rps) == (99.5, 1000.0, None, None)
    assert args.headers == {}


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["ftp://example.com"], "http(s) base URL"),
        (["127.0.0.1:8080"], "http(s) base URL"),
        (["http://127.0.0.1", "--users", "0"], "--users must be between 1 and 1000"),
        (["http://127.0.0.1", "--seconds", "0"], "--seconds must be between 1 and 3600"),
        (["http://127.0.0.1", "--max-requests", "0"], "--max-requests must be between"),
        (["http://127.0.0.1", "--success", "120"], "--success is a percentage"),
        (["http://127.0.0.1", "--header", "no colon"], "--header takes 'Name: value'"),
        (["http://127.0.0.1", "--header", "X: a\r\nEvil: 1"], "--header takes 'Name: value'"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(argv, complaint, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert complaint in capsys.readouterr().err


def test_any_service_url_is_accepted_and_headers_are_parsed():
    args = parse_args(
        [
            "https://backend-v1-abc123-nn.a.run.app",
            "--header",
            "Authorization: Bearer eyJ.a.b",
            "--p99-ms",
            "2000",
        ]
    )
    assert args.headers == {"Authorization": "Bearer eyJ.a.b"}
    assert args.p99_ms == 2000.0


def test_the_suites_own_guard_knows_loopback_from_anything_else():
    assert is_loopback("http://127.0.0.1:8080")
    assert is_loopback("http://127.9.9.9:1")
    assert is_loopback("http://[::1]:8080")
    assert is_loopback("http://localhost:5000")
    for url in ("https://backend-v1-abc-nn.a.run.app", "http://10.0.0.1", "http://169.254.169.254"):
        assert not is_loopback(url)


@pytest.mark.parametrize(
    ("status", "text", "error", "reason"),
    [
        (200, '{"predictions": [], "model": "m"}', None, ""),
        (200, "<html>streamlit</html>", None, "HTTP 200 without predictions"),
        (200, '{"predictions": "x"}', None, "HTTP 200 without predictions"),
        (503, '{"error": {"code": "model_busy", "message": "."}}', None, "HTTP 503 model_busy"),
        (502, "Bad Gateway", None, "HTTP 502"),
        (0, None, ConnectionRefusedError(111, "refused"), "ConnectionRefusedError"),
        (0, None, None, "no answer"),
    ],
)
def test_a_request_succeeds_only_with_the_apis_predictions(status, text, error, reason):
    assert judge(status, text, error) == reason


def test_summary_counts_failures_apart_from_latencies():
    latencies = [100.0 + i for i in range(100)]  # 100..199 ms
    raw = raw_run(latencies, failures=[(5.0, "HTTP 503 model_busy")] * 2 + [(9.0, "Timeout")])
    summary = summarise(raw, users=4)
    assert (summary.requests, summary.successes) == (103, 100)
    assert summary.errors == {"HTTP 503 model_busy": 2, "Timeout": 1}
    assert summary.success_percent == pytest.approx(100 * 100 / 103)
    assert summary.throughput == pytest.approx(10.0)
    assert summary.p50_ms == pytest.approx(149.5)
    assert summary.p95_ms == pytest.approx(194.05)
    assert summary.max_ms == 199.0  # the 5 ms failures are not latencies


def test_objectives_are_met_or_missed_one_by_one():
    summary = summarise(raw_run([100.0] * 199, failures=[(1.0, "HTTP 500")]), users=2)
    assert summary.success_percent == 99.5
    verdicts = Objectives(success_percent=99.5, p95_ms=100.0, p99_ms=99.0).judge(summary)
    assert [(v.objective, v.met) for v in verdicts] == [
        ("success rate", True),  # exactly at the objective meets it
        ("p95 latency", True),
        ("p99 latency", False),
    ]
    strict = Objectives(success_percent=99.9, p95_ms=None, min_throughput=50.0).judge(summary)
    assert [(v.objective, v.measured, v.met) for v in strict] == [
        ("success rate", "99.50 %", False),
        ("throughput", "19.90 req/s", False),
    ]


def test_a_run_where_nothing_succeeded_misses_every_objective():
    summary = summarise(raw_run([], failures=[(3.0, "ConnectionRefusedError")] * 5), users=1)
    verdicts = Objectives().judge(summary)
    assert [v.met for v in verdicts] == [False, False]
    assert verdicts[1].measured == "no successful request"
    empty = Objectives().judge(summarise(raw_run([]), users=1))
    assert empty[0].measured == "no request completed"


def test_the_report_states_objectives_numbers_and_errors(tmp_path):
    raw = raw_run([120.0, 80.0, 1500.0], failures=[(7.0, "HTTP 503 model_busy")], seconds=3.0)
    summary = summarise(raw, users=2)
    objectives = Objectives()
    text = markdown(
        "http://127.0.0.1:1",
        summary,
        objectives.judge(summary),
        limits="bounded by 3 s",
        plot_name="loadtest.png",
    )
    assert text.startswith("# Load test of http://127.0.0.1:1\n")
    assert "**Objectives missed** (0 of 2 met)." in text
    assert "| success rate | >= 99.5 % | 75.00 % | **no** |" in text
    assert "| HTTP 503 model_busy | 1 |" in text
    assert "| 4 | 3 | 75.00 % | 1.00 req/s | 120 ms |" in text
    assert "![latency and throughput over time](loadtest.png)" in text

    png = tmp_path / "loadtest.png"
    plot(raw, summary, objectives, png)
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > 600
        assert image.height > 400
