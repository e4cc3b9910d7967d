"""Interleaved clients with different session models against the live gunicorn service.

Each client picks its model once with PUT /model/<name> and then only sends
images. Every response must name that client's model and carry that model's
top-5, as computed in this process from the same weights. The identical run
against the global-variable counterexample must find mix-ups, which shows the
check can fail.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from werkzeug import Response

from tests.backend_v2.weights import reference_top5, same_top5, top5_of
from tests.support.images import sample_jpeg

pytestmark = pytest.mark.slow

CLIENT_MODELS = ("mobilenet_v3_large", "efficientnet_b0")  # the service default is neither
IMAGES = ("cat", "coffee")
THREADS_PER_CLIENT = 3
REQUESTS_PER_THREAD = 34  # 2 clients x 3 threads x 34 = 204 requests


@dataclass(frozen=True)
class Outcome:
    client_model: str
    image: str
    status: int
    reported_model: str | None
    correct: bool


def choose_model(base_url: str, model: str) -> str:
    """PUT the model into a new session; the session cookie's value."""
    with requests.Session() as http:
        response = http.put(f"{base_url}/model/{model}", timeout=60)
        assert response.status_code == 200, response.text
        assert http.get(f"{base_url}/model", timeout=10).json()["model"] == model
        return http.cookies["session"]


def run_interleaved_clients(base_url: str, weights) -> list[Outcome]:
    references = {
        (model, image): reference_top5(model, weights, sample_jpeg(image))
        for model in CLIENT_MODELS
        for image in IMAGES
    }
    # The two models must disagree on every image, or a mix-up could go unseen.
    for image in IMAGES:
        assert not same_top5(*(references[model, image] for model in CLIENT_MODELS))
    cookies = {model: choose_model(base_url, model) for model in CLIENT_MODELS}
    start = threading.Barrier(len(CLIENT_MODELS) * THREADS_PER_CLIENT)

    def client_thread(model: str, offset: int) -> list[Outcome]:
        outcomes = []
        with requests.Session() as http:
            http.cookies.set("session", cookies[model])
            start.wait(timeout=60)  # every thread starts sending at once
            for n in range(REQUESTS_PER_THREAD):
                image = IMAGES[(n + offset) % len(IMAGES)]
                # A new connection per request: a kept-alive one stays with one
                # gunicorn worker, and the two clients could then never meet in one.
                response = http.post(
                    f"{base_url}/predict",
                    files={"image": (f"{image}.jpg", sample_jpeg(image), "image/jpeg")},
                    headers={"Connection": "close"},
                    timeout=60,
                )
                body = response.json() if response.ok else {}
                reported = body.get("model")
                correct = (
                    response.status_code == 200
                    and reported == model
                    and same_top5(top5_of(body), references[model, image])
                )
                outcomes.append(Outcome(model, image, response.status_code, reported, correct))
        return outcomes

    jobs = [(model, offset) for offset in range(THREADS_PER_CLIENT) for model in CLIENT_MODELS]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: client_thread(*job), jobs))
    return [outcome for outcomes in results for outcome in outcomes]


def describe(outcomes: list[Outcome]) -> str:
    wrong = Counter((o.client_model, o.reported_model, o.status) for o in outcomes if not o.correct)
    return ", ".join(f"{n} x client {c} got {r!r} (HTTP {s})" for (c, r, s), n in wrong.items())


def test_every_client_gets_its_own_model_under_interleaved_load(v2_backend, v2_weights):
    outcomes = run_interleaved_clients(v2_backend.url, v2_weights)

    assert len(outcomes) >= 200
    assert Counter(o.client_model for o in outcomes) == {
        model: THREADS_PER_CLIENT * REQUESTS_PER_THREAD for model in CLIENT_MODELS
    }
    wrong = [o for o in outcomes if not o.correct]
    assert not wrong, f"{len(wrong)} of {len(outcomes)} responses were wrong: {describe(wrong)}"


def test_the_same_run_catches_the_global_variable_variant(global_variant_backend, v2_weights):
    outcomes = run_interleaved_clients(global_variant_backend.url, v2_weights)

    assert len(outcomes) >= 200
    # It never errors: it silently answers with another caller's model.
    assert {o.status for o in outcomes} == {200}
    wrong = [o for o in outcomes if not o.correct]
    assert wrong, "the global-variable variant served every client its own model this time"
    print(f"global-variable variant: {len(wrong)} of {len(outcomes)} wrong: {describe(wrong)}")


def test_a_slow_request_does_not_undo_a_choice_made_meanwhile(v2_backend, httpserver):
    """A /predict still fetching its image must not write its stale session back over a PUT."""
    cookie = choose_model(v2_backend.url, "efficientnet_b0")
    fetching, release = threading.Event(), threading.Event()

    def slow_image(_request):
        fetching.set()
        release.wait(30)
        return Response(sample_jpeg("cat"), mimetype="image/jpeg")

    httpserver.expect_request("/slow.jpg").respond_with_handler(slow_image)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            requests.post,
            f"{v2_backend.url}/predict",
            json={"url": httpserver.url_for("/slow.jpg")},
            cookies={"session": cookie},
            timeout=60,
        )
        assert fetching.wait(30)
        changed = requests.put(
            f"{v2_backend.url}/model/mobilenet_v3_large", cookies={"session": cookie}, timeout=60
        )
        assert changed.status_code == 200
        release.set()
        answer = slow.result(timeout=60)

    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "efficientnet_b0"  # the choice in force when it arrived
    now = requests.get(f"{v2_backend.url}/model", cookies={"session": cookie}, timeout=10)
    assert now.json()["model"] == "mobilenet_v3_large"
