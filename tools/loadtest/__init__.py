"""`make loadtest`: load one service for a bounded time and judge it against objectives.

    python -m tools.loadtest URL [--users 4] [--seconds 30] [--max-requests 5000]
                             [--success 99.5] [--p95-ms 1000] [--p99-ms MS] [--min-rps RPS]

Locust runs headless in its own process (locustfile.py): closed-loop users
upload a fixed set of real photos (scikit-image's samples) to URL/predict
until the time or the request budget runs out. results.py turns the samples
into throughput, latency percentiles and errors and judges them against the
objectives; report.py writes a Markdown report and a PNG. The exit status is
0 when every objective is met, 1 when one is missed, 2 when the test could
not run (the service unreachable, not the API, bad arguments).
"""
