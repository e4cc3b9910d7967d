"""Faults: a killed model fails fast and comes back by itself; a hung one stalls no one
else; a frozen one (SIGSTOP) opens its circuit before its calls time out, and the work
of callers who left is neither kept waiting nor run once it thaws.

Times below are bounds that say "the gateway did not wait for its timeout", far
from the expected values; they are not benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.images import sample_jpeg

pytestmark = pytest.mark.slow

LITE0, RESNET18, HUNG = "efficientnet_lite0", "resnet18", "mobilenet_v3_large"
READ_TIMEOUT = 30  # seconds; a dead model must be refused long before this
# The model services' log lines for a /predict whose client had gone, and for one answered.
STALE, ANSWERED = '"POST /predict HTTP/1.1" 499', '"POST /predict HTTP/1.1" 200'


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
        fetch_total_timeout=READ_TIMEOUT - 10,
        upstream_inference_timeout=10,
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
        fetch_total_timeout=read_timeout - 2,
        upstream_inference_timeout=2,
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
    codes = [r.json()["error"]["code"] for r, _ in results]
    # Two got in and timed out; the rest were turned away at once, not queued: busy,
    # and once two of those had opened the circuit (full slots count), refused by it.
    assert codes.count("timeout") == 2
    assert "model_busy" in codes
    assert set(codes) <= {"timeout", "model_busy", "model_unavailable"}
    assert all(s < read_timeout for r, s in results if r.status_code == 503)

    # The circuit is open: the next call fails at once, no wait.
    refused, seconds = predict(gateway, HUNG)
    assert refused.status_code == 503
    assert refused.json()["error"]["circuit"] == "open"
    assert seconds < read_timeout / 4
    assert predict(gateway, LITE0)[0].status_code == 200


@contextlib.contextmanager
def frozen(service):
    """The model service's processes stopped (SIGSTOP): its port still accepts
    connections (the kernel does that), nothing answers; SIGCONT at the end."""
    os.killpg(service.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(service.process.pid, signal.SIGCONT)


def models_listed(gateway) -> tuple[dict, float]:
    started = time.monotonic()
    answer = requests.get(gateway.url + "/models", timeout=60)
    assert answer.status_code == 200, answer.text
    return {m["name"]: m for m in answer.json()["models"]}, time.monotonic() - started


def wait_for(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)
    return result


def assert_no_stale_work(service, stale_before: int, answered: int) -> None:
    """The thawed model service refused the calls queued while it was frozen (their
    client, the gateway, had gone: 499) and answered only `answered` predictions in all.

    A call queued on a kept-alive connection whose keep-alive time ran out during the
    freeze is closed unread instead, so only one refusal is sure to be logged."""
    wait_for(lambda: service.log().count(STALE) > stale_before, "a queued call is refused")
    time.sleep(1)  # the rest of the queue, handled by the other threads meanwhile
    assert service.log().count(ANSWERED) == answered


def served_again(gateway, name: str) -> requests.Response:
    return wait_for(
        lambda: (r := predict(gateway, name)[0]).status_code == 200 and r,
        f"{name} serves again through the gateway",
    )


def test_a_frozen_model_opens_its_circuit_before_its_calls_time_out(
    model_services, gateway_factory
):
    lite0, resnet18 = model_services
    probe_timeout = 3
    gateway = gateway_factory(
        {LITE0: lite0.url, RESNET18: resnet18.url},
        gunicorn_threads=8,
        max_in_flight_per_model=2,
        queue_wait_seconds=0.2,
        fetch_total_timeout=6,
        upstream_inference_timeout=4,  # so a call gives up after 10 s
        breaker_fail_max=3,
        breaker_reset_timeout=5,
        probe_timeout=probe_timeout,
        probe_cache_seconds=0.3,
    )
    assert predict(gateway, RESNET18)[0].status_code == 200
    assert models_listed(gateway)[0][RESNET18]["available"] is True
    stale_before = resnet18.service.log().count(STALE)
    answered_before = resnet18.service.log().count(ANSWERED)

    with frozen(resnet18.service):
        # /models never waits for the frozen service's probe: it answers what it last
        # knew, and learns the news in the background.
        for _ in range(4):
            _, seconds = models_listed(gateway)
            assert seconds < probe_timeout
            time.sleep(0.3)
        listed = wait_for(
            lambda: (m := models_listed(gateway)[0])[RESNET18]["available"] is False and m,
            "/models reports the frozen model unavailable",
        )
        assert "unreachable" in listed[RESNET18]["reason"]

        with ThreadPoolExecutor(6) as pool:
            calls = [pool.submit(predict, gateway, RESNET18) for _ in range(6)]
            wait_for(
                lambda: models_listed(gateway)[0][RESNET18]["circuit"] == "open",
                "the circuit opens",
            )
            still_waiting = sum(not call.done() for call in calls)
            refused, _ = predict(gateway, RESNET18)
            results = [call.result()[0] for call in calls]
        assert predict(gateway, LITE0)[0].status_code == 200  # the other model never noticed

    # Two calls held the model's slots; the refusals that followed opened the circuit
    # while those two were still waiting for their timeout.
    codes = [r.json()["error"]["code"] for r in results]
    assert codes.count("timeout") == 2
    assert set(codes) <= {"timeout", "model_busy", "model_unavailable"}
    assert still_waiting >= 2
    assert refused.status_code == 503
    assert refused.json()["error"]["circuit"] == "open"
    assert int(refused.headers["Retry-After"]) >= 1

    # Thawed: the next trial succeeds and closes the circuit, with no gateway restart.
    assert served_again(gateway, RESNET18).json()["model"] == RESNET18
    assert models_listed(gateway)[0][RESNET18]["circuit"] == "closed"
    # The two calls that timed out were dropped by the gateway; the thawed service
    # found their clients gone and ran neither.
    assert_no_stale_work(resnet18.service, stale_before, answered_before + 1)


def test_callers_who_leave_free_their_slots_and_their_work_is_not_run(
    model_services, gateway_factory
):
    lite0, resnet18 = model_services
    gateway = gateway_factory(
        {LITE0: lite0.url, RESNET18: resnet18.url},
        gunicorn_threads=8,
        max_in_flight_per_model=2,
        queue_wait_seconds=0.2,
        fetch_total_timeout=60,  # the callers leave long before the gateway would give up
        breaker_fail_max=3,
    )
    assert predict(gateway, RESNET18)[0].status_code == 200
    gone = '"POST /model/resnet18/predict HTTP/1.1" 499'
    stale_before = resnet18.service.log().count(STALE)
    answered_before = resnet18.service.log().count(ANSWERED)

    def leave_after(seconds: float) -> None:
        files = {"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")}
        with pytest.raises(requests.ReadTimeout):
            requests.post(f"{gateway.url}/model/{RESNET18}/predict", files=files, timeout=seconds)

    with frozen(resnet18.service):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(leave_after, [1, 1]))  # both slots taken, then both callers leave
        wait_for(lambda: gateway.log().count(gone) == 2, "the gateway drops both calls")
        # Their slots are free again: this caller is let through to the frozen model
        # (and waits), where a full bulkhead would have refused it at once (model_busy).
        leave_after(2)
        wait_for(lambda: gateway.log().count(gone) == 3, "the gateway drops the third call")
        assert models_listed(gateway)[0][RESNET18]["circuit"] == "closed"  # not the model's fault

    assert served_again(gateway, RESNET18).status_code == 200
    assert_no_stale_work(resnet18.service, stale_before, answered_before + 1)
