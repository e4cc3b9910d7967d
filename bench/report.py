"""Turn one run's measurements into a Markdown report, a target check and a plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

LABELS = {
    "backend_v1": "backend_v1 (as shipped)",
    "backend_v2": "backend_v2 (as shipped, serving the same model)",
    "original_kit": "original kit design (gunicorn -w 2 --threads 2)",
    "litserve_batched": "LitServe, 2 workers, batching (max 4, 50 ms)",
    "litserve": "LitServe, 2 workers, no batching",
}
LOADED = (4, 8, 16)  # "concurrency 4 and above"


def write(results: dict, out: Path) -> str:
    markdown = render(results)
    (out / "latest.md").write_text(markdown)
    plot(results, out / "latest.png")
    return markdown


def _cpu(machine: dict) -> str:
    """ " (model, vector extension)", for runs that recorded it."""
    return f" ({machine['cpu']})" if machine.get("cpu") else ""


def _stage(contender: dict | None, users: int, name: str = "predict") -> dict | None:
    if not contender:
        return None
    for stage in contender["stages"]:
        if stage["users"] == users and stage["name"] == name:
            return stage
    return None


def _fmt(value, digits=1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(value: float, bound: float) -> str:
    """Two decimals; where those would show the bound itself (1.4998 as 1.50), three,
    rounded away from the bound, so the figure shows which side of it the value is."""
    text = f"{value:.2f}"
    if float(text) != bound or value == bound:
        return text
    away = math.floor if value < bound else math.ceil
    return f"{away(value * 1000) / 1000:.3f}"


def render(results: dict) -> str:
    machine = results["machine_before"]
    lines = [
        "# Benchmark results",
        "",
        f"{machine['cores']} cores{_cpu(machine)}; load average before the run "
        f"{machine['load1']:.2f} (1 min), after {results['machine_after']['load1']:.2f}; "
        f"the run took {results['elapsed_s']:.0f} s. Every contender ran one after another "
        "in this run, on the same weights file and the same photos (uploads of "
        "scikit-image's samples). Throughput is successful responses per second; "
        "latencies are client-side, in ms.",
        "",
    ]
    if machine["load1"] > 1.0:
        lines += [
            f"**Measured under contention** (load average {machine['load1']:.1f} on "
            f"{machine['cores']} cores when the run started): absolute figures are low and "
            "noisy; only the same-run ratios mean anything.",
            "",
        ]
    for model, entry in results["models"].items():
        lines += _model_section(model, entry)
    lines += _targets_section(results)
    lines += _extras_section(results)
    return "\n".join(lines) + "\n"


def _limit_rate(entry: dict) -> float | None:
    limit = entry.get("limit")
    return limit["best"]["img_per_s"] if limit else None


def _ceiling_rate(entry: dict) -> float | None:
    """The most any server could reach with this model's arithmetic: the pipelined
    bound, or the fastest bare model measured if that was higher (noise)."""
    rates = [e["best"]["img_per_s"] for e in (entry.get("limit"), entry.get("ceiling")) if e]
    bound = (entry.get("ceiling") or {}).get("pipelined_bound")
    if bound:
        rates.append(bound["img_per_s"])
    return max(rates, default=None)


def _config(config: dict) -> str:
    """How a bare-model figure was run: processes, threads and batch size."""
    return (
        f"{config['processes']} process(es) x {config['threads']} thread(s), "
        f"batch {config['batch']}"
    )


def _model_section(model: str, entry: dict) -> list[str]:
    lines = [f"## {model}", ""]
    limit = entry.get("limit")
    rate = _limit_rate(entry)
    if limit:
        best, one = limit["best"], limit["best_one_process"]
        lines += [
            f"The limit: **{rate:.1f} img/s** ({_config(best)}); one process on all cores: "
            f"{one['img_per_s']:.1f} img/s at batch {one['batch']}; batch-1 latency on all "
            f"cores: {limit['batch1_latency_ms']:.1f} ms. Decoding and preprocessing included.",
            "",
        ]
    ceiling = entry.get("ceiling")
    if ceiling:
        best = ceiling["best"]
        lines += [
            f"The same bare model as backend_v1 runs it (BatchNorms folded into the "
            f"convolutions, channels_last weights and inputs, convolution weights packed "
            f"once): "
            f"**{best['img_per_s']:.1f} img/s** ({_config(best)}), "
            f"x{best['img_per_s'] / rate:.2f} the limit. This is why backend_v1 can pass 1.00.",
            "",
        ]
        bound = ceiling.get("pipelined_bound")
        if bound:
            forward = bound["forward_only_best"]
            lines += [
                f"The pipelined bound: **{bound['img_per_s']:.1f} img/s**, what a server "
                f"that overlapped decoding with inference perfectly and spent nothing of its "
                f"own could reach: the forward pass alone (as served) at "
                f"{forward['img_per_s']:.1f} img/s ({_config(forward)}) plus "
                f"{bound['preprocess_ms_per_image']:.1f} ms of decoding and preprocessing per "
                f"photo on one core.",
                "",
            ]
    lines += [
        "| contender | users | img/s | x limit | p50 | p95 | p99 | errors | PSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, contender in entry["contenders"].items():
        pss = contender.get("pss_bytes", 0) / 2**20
        for stage in contender["stages"]:
            share = stage["throughput"] / rate if rate else None
            lines.append(
                f"| {LABELS.get(name, name)} | {stage['users']} | {stage['throughput']:.2f} | "
                f"{_fmt(share, 2)} | {_fmt(stage['p50_ms'])} | {_fmt(stage['p95_ms'])} | "
                f"{_fmt(stage['p99_ms'])} | {stage['errors']} | {pss:.0f} |"
            )
    return [*lines, ""]


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met?) for backend_v1; None when not measured."""
    checks: list[tuple[str, str, bool | None]] = []
    models = results["models"]
    big = models.get("resnet50") or next(iter(models.values()))
    v1 = big["contenders"].get("backend_v1")
    rate = _limit_rate(big)
    loaded = [s for s in (_stage(v1, c) for c in LOADED) if s]
    if v1 and rate and loaded:
        shares = {s["users"]: s["throughput"] / rate for s in loaded}
        worst = min(shares, key=shares.get)
        checks.append(
            (
                "throughput at concurrency >= 4 is at least 0.95 of the limit",
                ", ".join(f"c={c}: {_ratio(v, 0.95)}" for c, v in shares.items()),
                shares[worst] >= 0.95,
            )
        )
    lit = [big["contenders"].get(n) for n in ("litserve_batched", "litserve")]
    if v1 and any(lit) and loaded:
        parts, met = [], True
        for stage in loaded:
            best = max(
                (s["throughput"] for s in (_stage(c, stage["users"]) for c in lit) if s), default=0
            )
            parts.append(f"c={stage['users']}: {stage['throughput']:.2f} vs {best:.2f}")
            met &= stage["throughput"] >= best
        checks.append(("at least LitServe's best at the same concurrency", "; ".join(parts), met))
    kit = big["contenders"].get("original_kit")
    if v1 and kit and loaded:
        parts, met = [], True
        for stage in loaded:
            base = _stage(kit, stage["users"])
            if not base or not base["throughput"]:
                continue
            ratio = stage["throughput"] / base["throughput"]
            parts.append(
                f"c={stage['users']}: x{_ratio(ratio, 1.5)}, p99 {stage['p99_ms']:.0f} vs "
                f"{_fmt(base['p99_ms'], 0)} ms"
            )
            met &= ratio >= 1.5 and (base["p99_ms"] is None or stage["p99_ms"] < base["p99_ms"])
        ceiling = _ceiling_rate(big)
        fastest_kit = max(
            (s["throughput"] for s in kit["stages"] if s["users"] in LOADED), default=0
        )
        if ceiling and fastest_kit and 1.5 * fastest_kit > ceiling:
            parts.append(
                f"out of reach here: 1.5x the kit's {fastest_kit:.1f} img/s is "
                f"{1.5 * fastest_kit:.1f}, above the most any server could reach ({ceiling:.1f})"
            )
        target = "at least 1.5x the original kit's throughput, lower p99"
        checks.append((target, "; ".join(parts), met))
    alone = _stage(v1, 1)
    if alone and big.get("limit") and alone["p50_ms"]:
        bare = big["limit"]["batch1_latency_ms"]
        ratio = alone["p50_ms"] / bare
        checks.append(
            (
                "p50 at concurrency 1 at most 1.15x the bare batch-1 latency",
                f"{alone['p50_ms']:.1f} ms vs {bare:.1f} ms: x{_ratio(ratio, 1.15)}",
                ratio <= 1.15,
            )
        )
    eight = _stage(v1, 8)
    if eight and eight["p50_ms"]:
        ratio = eight["p99_ms"] / eight["p50_ms"]
        checks.append(
            (
                "p99 at most 2x p50 at concurrency 8",
                f"p50 {eight['p50_ms']:.0f} ms, p99 {eight['p99_ms']:.0f} ms: "
                f"x{_ratio(ratio, 2.0)}",
                ratio <= 2.0,
            )
        )
    cold = results.get("cold_start")
    if cold and cold["ready_s"]:
        ready, imported = statistics.median(cold["ready_s"]), statistics.median(cold["import_s"])
        checks.append(
            (
                "cold start at most the torch+torchvision import time + 0.5 s",
                f"ready after {ready:.2f} s, import {imported:.2f} s: {ready - imported:+.2f} s",
                ready <= imported + 0.5,
            )
        )
    memory = results.get("memory")
    if memory:
        ratio = memory["2"] / memory["1"]
        checks.append(
            (
                "PSS with 2 workers at most 1.3x that of 1 worker",
                ", ".join(f"{w} worker(s): {b / 2**20:.0f} MiB" for w, b in memory.items())
                + f"; 2/1 = x{_ratio(ratio, 1.3)}",
                ratio <= 1.3,
            )
        )
    v2_four, v1_four = _stage(big["contenders"].get("backend_v2"), 4), _stage(v1, 4)
    if v2_four and v1_four and v1_four["throughput"]:
        ratio = v2_four["throughput"] / v1_four["throughput"]
        checks.append(
            (
                "backend_v2 (same model) at least 0.9 of backend_v1's throughput at 4 users",
                f"{v2_four['throughput']:.2f} vs {v1_four['throughput']:.2f} img/s: "
                f"x{_ratio(ratio, 0.9)} (minutes apart; bench --paired alternates them)",
                ratio >= 0.9,
            )
        )
    small = models.get("resnet18")
    if small and small["contenders"].get("backend_v1") and _limit_rate(small):
        small_rate = _limit_rate(small)
        shares = {
            s["users"]: s["throughput"] / small_rate
            for s in (_stage(small["contenders"]["backend_v1"], c) for c in LOADED)
            if s
        }
        if shares:
            checks.append(
                (
                    "resnet18: at least 0.9 of its limit (concurrency >= 4)",
                    ", ".join(f"c={c}: {_ratio(v, 0.9)}" for c, v in shares.items()),
                    min(shares.values()) >= 0.9,
                )
            )
    gateway = results.get("gateway")
    if gateway and all(stage["p50_ms"] for stage in gateway["stages"]):
        checks.append(_gateway_check(gateway))
    return checks


def _gateway_check(gateway: dict) -> tuple[str, str, bool]:
    """Judged on the turn-paired median when there is one (bench.load.paired_differences)."""
    target = "the gateway adds at most 2 ms to p50"
    p50 = {stage["name"]: stage["p50_ms"] for stage in gateway["stages"]}
    via, direct, floor = p50.get("predict"), p50.get("direct"), p50.get("passthrough")
    unpaired = f"{via:.1f} ms via the gateway, {direct:.1f} ms direct: {via - direct:+.1f} ms"
    if floor:
        unpaired += f" (a bare pass-through proxy: {floor - direct:+.1f} ms)"
    paired = {entry["name"]: entry for entry in gateway.get("paired", [])}
    if "predict" not in paired:
        return target, unpaired, via - direct <= 2.0
    added = paired["predict"]
    measured = f"paired by turn: {_added(added)} over {added['pairs']} turns"
    if "passthrough" in paired:
        measured += f" (a bare pass-through proxy: {_added(paired['passthrough'])})"
    return target, f"{measured}; unpaired p50s: {unpaired}", added["median_ms"] <= 2.0


def _added(entry: dict) -> str:
    low, high = entry["ci95_ms"]
    return f"{entry['median_ms']:+.1f} ms (95% CI {low:+.1f} to {high:+.1f})"


def _targets_section(results: dict) -> list[str]:
    lines = ["## Targets for backend_v1 (same-run ratios)", "", "| target | measured | met |"]
    lines.append("|---|---|---|")
    for target, measured, met in targets(results):
        lines.append(f"| {target} | {measured} | {'yes' if met else 'NO'} |")
    return [*lines, ""]


def _extras_section(results: dict) -> list[str]:
    lines = []
    cold = results.get("cold_start")
    if cold:
        lines += [
            "## Cold start and memory",
            "",
            f"Cold start of backend_v1 ({cold['model']}), process start to /ready = 200, "
            f"{len(cold['ready_s'])} runs: median {statistics.median(cold['ready_s']):.2f} s "
            f"({', '.join(f'{t:.2f}' for t in cold['ready_s'])}); bare `import torch, "
            f"torchvision`: median {statistics.median(cold['import_s']):.2f} s.",
            "",
        ]
    memory = results.get("memory")
    if memory:
        lines += [
            "PSS of the whole backend_v1 server (master and workers) after a burst of uploads: "
            + ", ".join(f"{w} worker(s) {b / 2**20:.0f} MiB" for w, b in memory.items())
            + ".",
            "",
        ]
    gateway = results.get("gateway")
    if gateway:
        lines += [
            f"Gateway: one locust user takes turns sending the same upload through the v3 "
            f"gateway, through a bare pass-through proxy (bench/baselines/passthrough_proxy.py, "
            f"under the gateway's own gunicorn configuration: the cost of one more hop here) "
            f"and straight to the backend_v1 {gateway['model']} model service behind both.",
            "",
            "| path | requests | p50 | p95 | p99 |",
            "|---|---:|---:|---:|---:|",
        ]
        paths = {"predict": "via gateway", "passthrough": "via bare proxy", "direct": "direct"}
        for stage in gateway["stages"]:
            path = paths.get(stage["name"], stage["name"])
            lines.append(
                f"| {path} | {stage['requests']} | {_fmt(stage['p50_ms'])} | "
                f"{_fmt(stage['p95_ms'])} | {_fmt(stage['p99_ms'])} |"
            )
        lines.append("")
        if gateway.get("paired"):
            lines += [
                "Each turn sends one photo down every path, in a shuffled order. The target is "
                "judged on the median of the per-turn differences from the direct call: pairing "
                "cancels what the paths share (the photo, whose decoding time differs several-fold "
                "between the samples, and the machine's slow moments), which the difference of "
                "the unpaired p50s above carries as noise of a millisecond or more.",
                "",
            ]
            for entry in gateway["paired"]:
                lines.append(f"- {paths.get(entry['name'], entry['name'])}: {_added(entry)}")
            lines.append("")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"].items())
    figure, axes = plt.subplots(2, len(models), figsize=(6 * len(models), 8), squeeze=False)
    for column, (model, entry) in enumerate(models):
        rate = _limit_rate(entry)
        top, bottom = axes[0][column], axes[1][column]
        for name, contender in entry["contenders"].items():
            stages = [s for s in contender["stages"] if s["name"] == "predict"]
            users = [s["users"] for s in stages]
            top.plot(users, [s["throughput"] for s in stages], marker="o", label=LABELS[name])
            bottom.plot(users, [s["p99_ms"] or float("nan") for s in stages], marker="o")
        if rate:
            top.axhline(rate, color="black", linestyle="--", label="limit (bare model)")
        if entry.get("ceiling"):
            most = _ceiling_rate(entry)
            top.axhline(most, color="grey", linestyle=":", label="the most a server can reach")
        top.set_title(f"{model}: throughput")
        top.set_ylabel("images per second")
        bottom.set_title(f"{model}: p99 latency")
        bottom.set_ylabel("ms")
        bottom.set_yscale("log")
        for axis in (top, bottom):
            axis.set_xscale("log", base=2)
            axis.set_xlabel("concurrent users")
            axis.grid(True, alpha=0.3)
        top.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render_ablation(results: dict) -> str:
    machine = results["machine_before"]
    lines = [
        f"# What each optimisation buys ({results['model']})",
        "",
        f"backend_v1 with one optimisation turned off at a time, one after another in one run "
        f"(load average before: {machine['load1']:.2f}; {results['elapsed_s']:.0f} s).",
        "",
        "| variant | users | img/s | p50 | p95 | p99 | PSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, variant in results["variants"].items():
        for stage in variant["stages"]:
            lines.append(
                f"| {label} | {stage['users']} | {stage['throughput']:.2f} | "
                f"{_fmt(stage['p50_ms'])} | {_fmt(stage['p95_ms'])} | {_fmt(stage['p99_ms'])} | "
                f"{variant['pss_bytes'] / 2**20:.0f} |"
            )
    lines += ["", "| micro-measurement | without | with |", "|---|---:|---:|"]
    for label, values in results["micro"].items():
        without, with_it = list(values.values())
        lines.append(f"| {label} | {without:.1f} ms | {with_it:.1f} ms |")
    return "\n".join(lines) + "\n"


def render_paired(results: dict) -> str:
    """bench --paired: each contender's throughput round by round, and the ratios."""
    machine = results["machine_before"]
    rounds = results["rounds"]
    labels = list(rounds[0]) if rounds else []
    lines = [
        f"# Contenders in turns ({results['model']})",
        "",
        f"{machine['cores']} cores{_cpu(machine)}; load average before the run "
        f"{machine['load1']:.2f} (1 min), after {results['machine_after']['load1']:.2f}; "
        f"{len(rounds)} rounds in "
        f"{results['elapsed_s']:.0f} s. Every contender was started once; in each round each "
        "took its turn under the same closed-loop load (a rotated order), and ratios are "
        "taken within a round. Throughput in images per second.",
        "",
    ]
    if "baseline" in results:
        lines += [
            f"backend_v1 is this tree ({results['this_tree']}); the baseline is "
            f"{results['baseline']}.",
            "",
        ]
    if machine["load1"] > 1.0:
        lines += [f"**Started under load** (load average {machine['load1']:.1f}).", ""]
    users = sorted({s["users"] for one in rounds for stages in one.values() for s in stages})
    for count in users:
        lines += [f"## {count} user(s)", "", "| round | " + " | ".join(labels) + " |"]
        lines.append("|---|" + "---:|" * len(labels))
        for number, one_round in enumerate(rounds, 1):
            rates = [_stage({"stages": one_round.get(label, [])}, count) for label in labels]
            cells = [f"{r['throughput']:.2f}" if r else "–" for r in rates]
            lines.append(f"| {number} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Ratios, round by round", ""]
    lines += ["| ratio | users | median | range | at least | met |", "|---|---:|---:|---|---:|---|"]
    for name, comparison in results["comparisons"].items():
        least = comparison["at_least"]
        for count, found in comparison["by_users"].items():
            lines.append(
                f"| {name} | {count} | {found['median']:.3f} | {found['low']:.3f} to "
                f"{found['high']:.3f} | {least} | {'yes' if found['median'] >= least else 'NO'} |"
            )
    return "\n".join(lines) + "\n"
