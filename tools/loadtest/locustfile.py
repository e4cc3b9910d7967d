"""Locust users for `make loadtest`: each uploads the photos in turn to POST /predict.

Driven by environment variables (tools.loadtest sets them):
  LOADTEST_PHOTOS        folder of .jpg photos
  LOADTEST_SECONDS       how long the test runs, from the moment the users start
  LOADTEST_MAX_REQUESTS  the request budget: the test stops when it is spent
  LOADTEST_HEADERS       a JSON object of extra request headers (e.g. Authorization)
  LOADTEST_TIMEOUT       seconds a request may take before it counts as failed
  LOADTEST_OUT           JSON file for the samples

Every request is kept with its start time, its latency and, when it failed,
why (locust's own percentiles are rounded, and its failures are not grouped
the way the report wants them). A request succeeds when it answers 200 with
the API's predictions; anything else is an error, named by status and the
API's error code (e.g. "HTTP 503 model_busy") or by the connection failure.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

from tools.loadtest.photos import MULTIPART_CONTENT_TYPE, load_photos, multipart_body
from tools.loadtest.results import judge

SECONDS = float(os.environ.get("LOADTEST_SECONDS", "10"))
MAX_REQUESTS = int(os.environ.get("LOADTEST_MAX_REQUESTS", "1000"))
TIMEOUT = float(os.environ.get("LOADTEST_TIMEOUT", "60"))
BODIES = [
    multipart_body(f"{name}.jpg", data)
    for name, data in load_photos(Path(os.environ.get("LOADTEST_PHOTOS", ".")))
]
HEADERS = {
    **json.loads(os.environ.get("LOADTEST_HEADERS") or "{}"),
    "Content-Type": MULTIPART_CONTENT_TYPE,
}
_issued = itertools.count(1)
_user_ids = itertools.count()
samples: list[tuple[float, float, bool, str]] = []  # started (epoch s), ms, ok, reason
started_at: list[float] = []
_quitting: list[bool] = []


class PredictUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = TIMEOUT
    connection_timeout = min(10.0, TIMEOUT)

    def on_start(self) -> None:
        # Users start on different photos, so concurrent requests differ.
        self.bodies = itertools.islice(itertools.cycle(BODIES), next(_user_ids), None)

    @task
    def predict(self) -> None:
        if time.time() >= started_at[0] + SECONDS:
            _quit(self.environment)
            raise StopUser
        if next(_issued) > MAX_REQUESTS:
            # Spent: stop this user only. Quitting now would kill other users' requests
            # in flight; the test ends when the last request of the budget has answered.
            raise StopUser
        started = time.time()
        with self.client.post(
            "/predict", data=next(self.bodies), headers=HEADERS, name="predict",
            catch_response=True,
        ) as response:  # fmt: skip
            reason = judge(
                response.status_code, response.text, response.request_meta.get("exception")
            )
            if reason:
                response.failure(reason)
            else:
                response.success()
        samples.append((started, response.request_meta["response_time"], not reason, reason))
        if len(samples) >= MAX_REQUESTS:
            _quit(self.environment)


def _quit(environment) -> None:
    """Stop the whole test once, from outside the user that spent the budget."""
    if not _quitting:
        _quitting.append(True)
        gevent.spawn(environment.runner.quit)


@events.test_start.add_listener
def _started(environment, **_kw) -> None:
    """The clock starts with the users. Not locust's --run-time: its timer reads the event
    loop's cached time, which is stale by the start-up's duration, so it fires early."""
    started_at.append(time.time())
    gevent.get_hub().loop.update_now()
    gevent.spawn_later(SECONDS, _quit, environment)


@events.quitting.add_listener
def _write(environment, **_kw) -> None:
    out = os.environ.get("LOADTEST_OUT")
    if out:
        raw = {"start": started_at[0] if started_at else None, "end": time.time()}
        Path(out).write_text(json.dumps({**raw, "samples": samples}))
