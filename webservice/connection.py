"""Has the client of a request closed its connection?

gunicorn puts the client's socket in the WSGI environ ("gunicorn.socket").
poll() with POLLRDHUP says whether the client has closed its end, even while
bytes it sent are still unread (a request that waited in a frozen server's
queue). Work for a client that is gone is answered to nobody, so the services
skip it: init_api refuses such a request before any work, and the v3 gateway
stops forwarding one whose client leaves while it waits (v3_gateway/upstream.py).

A client that half-closes its connection after sending its request (rare; no
HTTP client this project meets does) counts as gone. Without gunicorn (Flask's
test client) or without POLLRDHUP (not Linux), every client counts as present.
"""

from __future__ import annotations

import select
from collections.abc import Mapping
from typing import Any

from flask import request

GONE = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR


def client_gone(environ: Mapping[str, Any] | None = None) -> bool:
    """True when the client of `environ` (default: the current request) has closed."""
    sock = (request.environ if environ is None else environ).get("gunicorn.socket")
    if sock is None or not hasattr(select, "POLLRDHUP"):
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLRDHUP)
        return any(events & GONE for _fd, events in poller.poll(0))
    except (OSError, ValueError):  # closed or detached meanwhile: nothing to answer
        return True
