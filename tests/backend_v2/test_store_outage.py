"""backend_v2 under gunicorn while its Redis session store is killed or frozen.

While the store cannot be reached: no 500 anywhere, /health and requests that
name their model work as without a session, a prediction that relies on the
session answers with the default and says so (selected_by), and the /model
routes answer 503 session_store_unavailable with Retry-After. When the store
is back, the service is too, by itself; a store that came back empty has lost
the caller's choice, and the answers say that as well.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.backend_v2.conftest import DEFAULT_MODEL, live_env
from tests.backend_v2.redis_server import start_redis
from tests.support.images import sample_jpeg
from tests.support.servers import start_service

pytestmark = [pytest.mark.slow, pytest.mark.redis]

CHOSEN, NAMED = "mobilenet_v3_large", "efficientnet_b0"
RECOVERY_SECONDS = 30  # a bound for "it recovers by itself", far above the retry period


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    holder = {"server": start_redis(tmp_path_factory.mktemp("outage-redis"))}
    yield holder
    holder["server"].stop()


@pytest.fixture(scope="module")
def backend(store, v2_weights, service_log_dir, stopper):
    env = live_env(
        v2_weights,
        SESSION_STORE="redis",
        SESSION_REDIS_URL=store["server"].url,
        WEB_CONCURRENCY=1,
    )
    service = start_service("backend_v2", service_log_dir, env=env, timeout=120)
    yield service
    stopper.stop(service)


def predict(url: str, cookie: str, model: str | None = None) -> requests.Response:
    return requests.post(
        f"{url}/predict",
        files={"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")},
        data={"model": model} if model else {},
        cookies={"session": cookie},
        timeout=60,
    )


def choose(url: str) -> str:
    """A caller chooses CHOSEN; their session cookie."""
    chosen = requests.put(f"{url}/model/{CHOSEN}", timeout=60)
    assert chosen.status_code == 200, chosen.text
    cookie = chosen.cookies["session"]
    answer = predict(url, cookie).json()
    assert (answer["model"], answer["selected_by"]) == (CHOSEN, "session")
    return cookie


def outage_traffic(url: str, cookie: str) -> dict[str, list[requests.Response]]:
    """Every kind of request a caller with a session makes, several at once."""
    jar = {"session": cookie}
    calls = {
        "predict": lambda: predict(url, cookie),
        "predict_named": lambda: predict(url, cookie, NAMED),
        "health": lambda: requests.get(f"{url}/health", cookies=jar, timeout=60),
        "get_model": lambda: requests.get(f"{url}/model", cookies=jar, timeout=60),
        "put_model": lambda: requests.put(f"{url}/model/{NAMED}", cookies=jar, timeout=60),
    }
    with ThreadPoolExecutor(4) as pool:
        futures = {kind: [pool.submit(call) for _ in range(4)] for kind, call in calls.items()}
    return {kind: [future.result() for future in batch] for kind, batch in futures.items()}


def assert_degraded(answers: dict[str, list[requests.Response]]) -> None:
    every = [response for batch in answers.values() for response in batch]
    assert all(response.status_code != 500 for response in every), [r.text for r in every]
    for response in answers["predict"]:
        assert response.status_code == 200, response.text
        assert response.json()["model"] == DEFAULT_MODEL
        assert response.json()["selected_by"] == "session_store_unavailable"
    for response in answers["predict_named"]:
        assert response.status_code == 200, response.text
        assert (response.json()["model"], response.json()["selected_by"]) == (NAMED, "request")
    assert [r.status_code for r in answers["health"]] == [200] * 4
    for response in answers["get_model"] + answers["put_model"]:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "session_store_unavailable"
        assert int(response.headers["Retry-After"]) >= 1


def model_route_when_back(url: str, cookie: str) -> dict:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        answer = requests.get(f"{url}/model", cookies={"session": cookie}, timeout=60)
        if answer.status_code == 200:
            return answer.json()
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, "the store is back but backend_v2 did not notice"
        time.sleep(0.2)


def test_a_killed_store_gives_no_500_and_an_empty_one_is_reported(store, backend):
    cookie = choose(backend.url)
    store["server"].kill()
    assert_degraded(outage_traffic(backend.url, cookie))

    store["server"] = store["server"].restarted()  # same port, every session gone
    assert model_route_when_back(backend.url, cookie)["selected_by"] == "service_default"
    lost = predict(backend.url, cookie).json()
    assert (lost["model"], lost["selected_by"]) == (DEFAULT_MODEL, "service_default")
    assert "session store unreachable" in backend.log()  # logged once per outage


def test_a_frozen_store_gives_no_500_and_keeps_the_choice(store, backend):
    cookie = choose(backend.url)
    store["server"].freeze()
    try:
        assert_degraded(outage_traffic(backend.url, cookie))
    finally:
        store["server"].thaw()
    assert model_route_when_back(backend.url, cookie)["model"] == CHOSEN
    kept = predict(backend.url, cookie).json()
    assert (kept["model"], kept["selected_by"]) == (CHOSEN, "session")
