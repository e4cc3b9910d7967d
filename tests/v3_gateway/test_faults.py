"""Faults: a killed model fails fast and comes back by itself; a hung one stalls no one else.

Times below are bounds that say "the gateway did not wait for its read
timeout", far from the expected values; they are not benchmarks.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.images import sample_jpeg

pytestmark = pytest.mark.slow

LITE0, RESNET18, HUNG = "efficientnet_lite0", "resnet18", "mobilenet_v3_large"
READ_TIMEOUT = 30  # seconds; a dead model must be refused long before this


def predict(gateway, name: str) -> tuple[requests.Response, float]:
    files = {"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")}
    started = time.monotonic()
    response = requests.post(
        f"{gateway.url}/model/{name}/predict", files=files, data={"top_k": 1}, timeout=90
    )
    return response, time.monotonic() - started


def test_killed_model_fails_fast_and_recovers_without_gateway_restart(
    model_services, gateway_factory
):
    lite0, resnet18 = model_services
    gateway = gateway_factory(
        {LITE0: lite0.url, RESNET18: resnet18.url},
        upstream_read_timeout=READ_TIMEOUT,
        breaker_fail_max=2,
        breaker_reset_timeout=1,
    )
    assert predict(gateway, RESNET18)[0].status_code == 200

    resnet18.service.stop(signal.SIGKILL)  # the whole process group, workers included
    # Back to back, well within the breaker's reset time even on a busy machine:
    # two failures open the circuit; the third call is refused without a try.
    dead = [predict(gateway, RESNET18) for _ in range(3)]
    assert dead[-1][0].json()["error"]["circuit"] == "open"
    assert int(dead[-1][0].headers["Retry-After"]) >= 1
    alive = []
    for _ in range(3):
        alive.append(predict(gateway, LITE0)[0])
        dead.append(predict(gateway, RESNET18))
        alive.append(predict(gateway, LITE0)[0])

    assert [r.status_code for r, _ in dead] == [503] * 6
    assert all(r.json()["error"]["code"] == "model_unavailable" for r, _ in dead)
    assert all(seconds < READ_TIMEOUT / 6 for _, seconds in dead), [s for _, s in dead]
    assert [r.status_code for r in alive] == [200] * 6  # the other model never noticed

    listed = {
        m["name"]: m for m in requests.get(gateway.url + "/models", timeout=10).json()["models"]
    }
    assert listed[RESNET18]["available"] is False
    assert listed[LITE0]["available"] is True
    assert requests.get(gateway.url + "/ready", timeout=10).status_code == 200  # default is up

    resnet18.restart()  # same port, same gateway
    deadline = time.monotonic() + 30
    while (answer := predict(gateway, RESNET18)[0]).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)
    assert answer.json()["model"] == RESNET18
    assert gateway.alive()
    listed = {
        m["name"]: m for m in requests.get(gateway.url + "/models", timeout=10).json()["models"]
    }
    assert listed[RESNET18]["available"] is True
    assert listed[RESNET18]["circuit"] == "closed"


def test_hung_model_does_not_stall_the_others(model_services, gateway_factory, hanging_service):
    lite0, _ = model_services
    read_timeout = 12  # long enough to serve lite0 meanwhile on a busy machine
    gateway = gateway_factory(
        {LITE0: lite0.url, HUNG: hanging_service.url},
        gunicorn_threads=6,
        max_in_flight_per_model=2,
        queue_wait_seconds=0.2,
        upstream_read_timeout=read_timeout,
        breaker_fail_max=2,
        breaker_reset_timeout=60,
    )
    with ThreadPoolExecutor(6) as pool:
        hung = [pool.submit(predict, gateway, HUNG) for _ in range(6)]
        wait_until = time.monotonic() + 5
        while hanging_service.open_connections < 2:
            assert time.monotonic() < wait_until, "the hung model never got its two requests"
            time.sleep(0.05)
        # Two threads are stuck on the hung model; the others still serve lite0.
        others = [predict(gateway, LITE0)[0] for _ in range(3)]
        still_stuck = hanging_service.open_connections
        results = [future.result() for future in hung]

    assert [r.status_code for r in others] == [200] * 3
    assert still_stuck == 2, "the lite0 requests were not served while the hung ones waited"
    codes = sorted(r.json()["error"]["code"] for r, _ in results)
    # Two got in and timed out; the rest were turned away at once, not queued.
    assert codes == ["model_busy"] * 4 + ["timeout"] * 2
    assert all(s < read_timeout for r, s in results if r.status_code == 503)
    assert {r.status_code for r, _ in results} == {503, 504}

    # Two timeouts opened the circuit: the next call fails at once, no wait.
    refused, seconds = predict(gateway, HUNG)
    assert refused.status_code == 503
    assert refused.json()["error"]["circuit"] == "open"
    assert seconds < read_timeout / 4
    assert predict(gateway, LITE0)[0].status_code == 200
