"""The load test's report: a Markdown page and a PNG of latency and throughput over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.loadtest.results import Objectives, Summary, Verdict


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(
    url: str, summary: Summary, verdicts: list[Verdict], *, limits: str, plot_name: str | None
) -> str:
    met = all(v.met for v in verdicts)
    rate = summary.success_percent
    lines = [
        f"# Load test of {url}",
        "",
        f"{summary.users} users for {summary.seconds:g} s ({limits}), each uploading "
        "scikit-image's sample photos to `POST /predict` in turn, one request after another.",
        "",
        f"**{'Every objective met' if met else 'Objectives missed'}** "
        f"({sum(v.met for v in verdicts)} of {len(verdicts)} met).",
        "",
        "| objective | target | measured | met |",
        "| --- | --- | --- | :---: |",
        *(
            f"| {v.objective} | {v.target} | {v.measured} | {'yes' if v.met else '**no**'} |"
            for v in verdicts
        ),
        "",
        "| requests | successes | success rate | throughput | p50 | p95 | p99 | max |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {summary.requests} | {summary.successes} | "
        f"{'-' if rate is None else f'{rate:.2f} %'} | {summary.throughput:.2f} req/s | "
        f"{_ms(summary.p50_ms)} ms | {_ms(summary.p95_ms)} ms | {_ms(summary.p99_ms)} ms | "
        f"{_ms(summary.max_ms)} ms |",
        "",
        "Latencies are those of successful requests, measured by the load generator "
        "(network and queueing included); failed requests count against the success rate.",
    ]
    if summary.errors:
        lines += ["", "| error | count |", "| --- | ---: |"]
        lines += [f"| {kind} | {count} |" for kind, count in summary.errors.items()]
    if plot_name:
        lines += ["", f"![latency and throughput over time]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot(raw: dict, summary: Summary, objectives: Objectives, path: Path) -> None:
    """Each request's latency at the time it started, and successful responses per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = raw.get("samples") or []
    start = raw.get("start") or (min(s[0] for s in samples) if samples else raw["end"])
    ok = np.array([(t - start, ms) for t, ms, good, _ in samples if good]).reshape(-1, 2)
    bad = np.array([(t - start, ms) for t, ms, good, _ in samples if not good]).reshape(-1, 2)
    figure, (latency, throughput) = plt.subplots(
        2, 1, figsize=(9, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    latency.scatter(ok[:, 0], ok[:, 1], s=6, alpha=0.5, label="success")
    if len(bad):
        latency.scatter(bad[:, 0], bad[:, 1], s=14, marker="x", color="red", label="error")
    if objectives.p95_ms is not None:
        latency.axhline(objectives.p95_ms, color="orange", linestyle="--", label="p95 objective")
    if summary.p95_ms is not None:
        latency.axhline(summary.p95_ms, color="green", linestyle=":", label="p95 measured")
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.legend(loc="upper right", fontsize="small")
    latency.set_title(f"{summary.users} users, {summary.requests} requests")
    # Completions per whole second (a partial last second would read as a drop).
    finished = ok[:, 0] + ok[:, 1] / 1000
    seconds = max(1, int(summary.seconds))
    counts, edges = np.histogram(finished, bins=seconds, range=(0, seconds))
    throughput.bar(edges[:-1], counts, width=1.0, align="edge")
    throughput.axhline(summary.throughput, color="green", linestyle=":", label="mean")
    throughput.set_ylabel("successes / s")
    throughput.set_xlabel("seconds since the start")
    throughput.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
