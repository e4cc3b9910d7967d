"""backend_v1 under faults, on a real gunicorn: a slow image host and a shutdown.

The timing bounds are the spec's (an image URL answers 504 within its total
deadline plus one second), measured from the moment each request was sent.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from classifier.settings import ServingSettings
from tests.support.images import sample_jpeg
from tests.support.trickle import TricklingHost

pytestmark = pytest.mark.slow

# lite0_backend runs with GUNICORN_THREADS=4 and the default URL limits.
DEFAULTS = ServingSettings(gunicorn_threads=4)
DEADLINE = DEFAULTS.fetch_total_timeout
SLOTS = DEFAULTS.url_fetch_slot_count


def timed_post(url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(url, timeout=60, **kwargs)
    return response, time.monotonic() - started


def test_a_trickling_image_host_gets_504_in_time_and_blocks_no_one(lite0_backend):
    assert SLOTS == 2
    with TricklingHost(interval=0.5) as host, ThreadPoolExecutor(SLOTS + 2) as pool:
        slow = [
            pool.submit(timed_post, lite0_backend.url + "/predict", json={"url": host.url()})
            for _ in range(SLOTS + 2)
        ]
        wait_until = time.monotonic() + 10
        while host.accepted < SLOTS:
            assert time.monotonic() < wait_until, "the service never started its downloads"
            time.sleep(0.05)
        # Every download slot is held by the trickling host; the other threads serve.
        health = requests.get(lite0_backend.url + "/health", timeout=10)
        upload, _ = timed_post(
            lite0_backend.url + "/predict",
            files={"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")},
        )
        still_held = host.open_connections
        results = [future.result() for future in slow]

    assert health.status_code == 200
    assert upload.status_code == 200, upload.text
    assert still_held == SLOTS, "the upload was not served while the downloads were held"
    timed_out = [(r, s) for r, s in results if r.status_code == 504]
    turned_away = [(r, s) for r, s in results if r.status_code == 503]
    assert len(timed_out) == SLOTS and len(turned_away) == 2, [r.text for r, _ in results]
    for response, seconds in timed_out:
        assert response.json()["error"]["code"] == "timeout"
        assert DEADLINE <= seconds < DEADLINE + 1, seconds
    for response, seconds in turned_away:
        assert response.json()["error"]["code"] == "url_fetch_busy"
        assert int(response.headers["Retry-After"]) >= 1
        assert seconds < DEADLINE, "a request with no slot waited for one as long as a download"
    assert host.accepted == SLOTS, "a request turned away still reached the image host"
    # The service let go of the host: no download thread is left reading from it.
    assert host.wait_until_idle(timeout=3)
