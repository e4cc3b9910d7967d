"""The command behind `make loadtest` (see tools/loadtest/__init__.py)."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tools.loadtest.report import markdown, plot
from tools.loadtest.results import Objectives, summarise

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO_ROOT = LOCUSTFILE.parents[2]
MET, MISSED, COULD_NOT_RUN = 0, 1, 2


class CannotRun(Exception):
    """The test could not start or finish; the message says why and what to do."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.loadtest",
        description="Load a service's POST /predict with real photos for a bounded time "
        "and judge it against service-level objectives.",
    )
    parser.add_argument("url", help="the service's base URL, e.g. https://backend-v1-...run.app")
    parser.add_argument("--users", type=int, default=4, help="concurrent users (default 4)")
    parser.add_argument("--seconds", type=int, default=30, help="how long to load it (default 30)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=5000,
        help="stop earlier once this many requests were sent (default 5000)",
    )
    parser.add_argument(
        "--success", type=float, default=99.5, help="objective: %% of requests answered (99.5)"
    )
    parser.add_argument(
        "--p95-ms", type=float, default=1000.0, help="objective: p95 latency in ms (1000)"
    )
    parser.add_argument("--p99-ms", type=float, help="objective: p99 latency in ms (none)")
    parser.add_argument("--min-rps", type=float, help="objective: successes per second (none)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before a request counts as failed"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header, e.g. for a private service: "
        '--header "Authorization: Bearer $(gcloud auth print-identity-token)"',
    )
    parser.add_argument(
        "--out", type=Path, default=Path("build/loadtest"), help="report folder (build/loadtest)"
    )
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        parser.error(f"URL must be an http(s) base URL, not {args.url!r}")
    args.url = args.url.rstrip("/")
    for name, value, low, high in (
        ("--users", args.users, 1, 1000),
        ("--seconds", args.seconds, 1, 3600),
        ("--max-requests", args.max_requests, 1, 1_000_000),
    ):
        if not low <= value <= high:
            parser.error(f"{name} must be between {low} and {high}, not {value}")
    if not 0 < args.success <= 100:
        parser.error(f"--success is a percentage in (0, 100], not {args.success:g}")
    try:
        args.headers = dict(_header(text) for text in args.header)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in text for c in "\r\n"):
        raise ValueError(f"--header takes 'Name: value', not {text!r}")
    return name.strip(), value.strip()


def photos_folder(root: Path) -> Path:
    """scikit-image's sample photos as JPEG files: real photos, no download. Kept
    between runs, since scikit-image takes seconds to import."""
    from tools.loadtest.photos import PHOTOS, write_photos

    folder = root / "photos"
    if all((folder / f"{name}.jpg").is_file() for name in PHOTOS):
        return folder
    return write_photos(folder)


def _refused(url: str, status: int) -> CannotRun:
    return CannotRun(
        f"{url} refused the request (HTTP {status}): the service is private. "
        'Send an identity token: --header "Authorization: Bearer '
        '$(gcloud auth print-identity-token)" (make loadtest ... HEADER="...").'
    )


def _request(method: str, url: str, base: str, timeout: float, **kwargs) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=(10, timeout), **kwargs)
    except requests.RequestException as exc:
        raise CannotRun(f"could not reach {base}: {exc}") from None
    if response.status_code in (401, 403):
        raise _refused(base, response.status_code)
    return response


def reachable(url: str, headers: dict[str, str], timeout: float) -> None:
    """GET /health: is anything there that lets us in? (cheap: before the photos)."""
    _request("GET", url + "/health", url, timeout, headers=headers)


def warm_up(url: str, photo: Path, headers: dict[str, str], timeout: float) -> None:
    """One /predict before the clock starts: it wakes a scaled-to-zero service and
    stops the test early, with the reason, when URL is not a working API."""
    files = {"image": (photo.name, photo.read_bytes(), "image/jpeg")}
    response = _request("POST", url + "/predict", url, timeout, files=files, headers=headers)
    if response.status_code != 200:
        raise CannotRun(
            f"{url}/predict answered HTTP {response.status_code}, not a prediction: "
            f"{' '.join(response.text.split())[:200]!r}. Is URL the base URL of a backend or "
            "the v3 gateway (a frontend does not answer /predict), and is it ready?"
        )


def run_locust(args: argparse.Namespace, photos: Path, samples: Path, log: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "LOADTEST_PHOTOS": str(photos),
        "LOADTEST_SECONDS": str(args.seconds),
        "LOADTEST_MAX_REQUESTS": str(args.max_requests),
        "LOADTEST_HEADERS": json.dumps(args.headers),
        "LOADTEST_TIMEOUT": str(args.timeout),
        "LOADTEST_OUT": str(samples),
    }
    # The locustfile stops the test itself; --run-time and the timeout are backstops
    # (the run time, the last requests' own timeout, locust's start-up and exit).
    budget = args.seconds + args.timeout + 60
    backstop = math.ceil(args.seconds + args.timeout + 5)
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", args.url, "--users", str(args.users), "--spawn-rate", str(args.users),
        "--run-time", f"{backstop}s", "--stop-timeout", "0", "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    samples.unlink(missing_ok=True)
    with log.open("wb") as log_file:
        try:
            subprocess.run(
                command, env=env, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=budget, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise CannotRun(f"locust did not finish within {budget:g} s; see {log}") from None
    # locust exits 1 whenever a request failed; the samples say what happened.
    if not samples.is_file():
        tail = log.read_text(errors="replace")[-1500:]
        raise CannotRun(f"locust stopped without results; its log ({log}) ends:\n{tail}")
    return json.loads(samples.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    objectives = Objectives(args.success, args.p95_ms, args.p99_ms, args.min_rps)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        reachable(args.url, args.headers, args.timeout)
        photos = photos_folder(args.out)
        warm_up(args.url, sorted(photos.glob("*.jpg"))[0], args.headers, args.timeout)
        print(
            f"loading {args.url} with {args.users} users for {args.seconds} s "
            f"(at most {args.max_requests} requests)...",
            flush=True,
        )
        raw = run_locust(args, photos, args.out / "samples.json", args.out / "locust.log")
    except CannotRun as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return COULD_NOT_RUN
    summary = summarise(raw, args.users)
    verdicts = objectives.judge(summary)
    plot(raw, summary, objectives, args.out / "loadtest.png")
    stopped_by = (
        "the request budget was spent"
        if summary.requests >= args.max_requests
        else f"bounded by {args.seconds} s"
    )
    limits = f"{stopped_by}; at most {args.max_requests} requests"
    report = markdown(args.url, summary, verdicts, limits=limits, plot_name="loadtest.png")
    (args.out / "loadtest.md").write_text(report)
    print(report)
    print(f"report: {args.out / 'loadtest.md'} and {args.out / 'loadtest.png'}")
    return MET if all(v.met for v in verdicts) else MISSED


if __name__ == "__main__":
    sys.exit(main())
