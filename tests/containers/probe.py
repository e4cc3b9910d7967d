"""HTTP requests made from inside a container's own network (run there with the image's Python).

The containers run with no network (`--network=none`), as nothing in a test
may listen beyond loopback: their services are reached from their own
loopback, by this stdlib-only script, executed in the container. It reads a
JSON list of requests on stdin and prints a JSON list of answers, each with
how long it took.
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request


def answer(request):
    body = base64.b64decode(request["body"]) if request.get("body") else None
    outgoing = urllib.request.Request(
        request["url"],
        data=body,
        method=request.get("method", "GET"),
        headers=request.get("headers", {}),
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(outgoing, timeout=request.get("timeout", 60)) as reply:
            status, text = reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as failed:
        status, text = failed.code, failed.read().decode("utf-8", "replace")
    except OSError as failed:
        status, text = 0, repr(failed)
    return {"status": status, "text": text, "seconds": time.perf_counter() - started}


print(json.dumps([answer(request) for request in json.load(sys.stdin)]))
