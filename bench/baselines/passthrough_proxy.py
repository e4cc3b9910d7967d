"""The floor for the gateway figure: the least a proxy in front of a model service can do.

A bare WSGI app, no Flask, no sessions, no checks: it passes each POST body to
UPSTREAM_URL's /predict with the gateway's own HTTP exchange (libcurl,
v3_gateway/transport.py) and relays the answer. Run under the gateway's own
gunicorn configuration (`--config v3_gateway/gunicorn.conf.py`), so the gateway
and this floor differ only in the app: whatever this adds to p50 is the cost of
one more gunicorn hop on the machine, not of the gateway.
"""

from __future__ import annotations

import os

from v3_gateway.transport import HandlePerThread, Timeouts, exchange

URL = os.environ["UPSTREAM_URL"].rstrip("/") + "/predict"
TIMEOUTS = Timeouts(connect=3, read=60, total=90)
HANDLES = HandlePerThread()  # made in each request thread, after the fork


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    answer = exchange(
        HANDLES.get(), URL, timeouts=TIMEOUTS, max_bytes=1 << 20, body=body,
        headers=(f"Content-Type: {environ.get('CONTENT_TYPE', '')}",),
    )  # fmt: skip
    start_response(
        f"{answer.status} Relayed",
        [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))],
    )
    return [answer.body]


def create_app():
    """The entry point gunicorn is given, named as the services' own."""
    return app
