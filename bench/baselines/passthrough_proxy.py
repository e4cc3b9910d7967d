"""The floor for the gateway figure: the least a proxy in front of a model service can do.

A bare WSGI app, no Flask, no sessions, no checks: it passes each POST body to
UPSTREAM_URL's /predict with urllib3 and relays the answer. Run under the
gateway's own gunicorn configuration (`--config v3_gateway/gunicorn.conf.py`),
so the gateway and this floor differ only in the app: whatever this adds to
p50 is the cost of one more gunicorn hop on the machine, not of the gateway.
"""

from __future__ import annotations

import os

import urllib3

UPSTREAM = urllib3.util.parse_url(os.environ["UPSTREAM_URL"])
_pools: dict[int, urllib3.HTTPConnectionPool] = {}  # per worker: made after the fork


def _pool() -> urllib3.HTTPConnectionPool:
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = urllib3.HTTPConnectionPool(UPSTREAM.host, UPSTREAM.port, maxsize=16)
    return _pools[pid]


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    answer = _pool().urlopen(
        "POST", "/predict", body=body, headers={"Content-Type": environ.get("CONTENT_TYPE", "")}
    )
    start_response(
        f"{answer.status} {answer.reason}",
        [("Content-Type", answer.headers.get("Content-Type", "")),
         ("Content-Length", str(len(answer.data)))],
    )  # fmt: skip
    return [answer.data]


def create_app():
    """The entry point gunicorn is given, named as the services' own."""
    return app
