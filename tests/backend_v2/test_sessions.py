"""Session stores: Redis shared by two live instances, cachelib folders local to one.

Two backend_v2 processes on different ports stand in for two Cloud Run
instances: the same URL would route a browser's requests to either of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.backend_v2.conftest import DEFAULT_MODEL
from tests.backend_v2.weights import AVAILABLE, MISSING, reference_top5, same_top5, top5_of
from tests.support.images import sample_jpeg

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def put_model(url: str, cookie: str | None, model: str) -> requests.Response:
    return requests.put(f"{url}/model/{model}", cookies=_jar(cookie), timeout=60)


def get_model(url: str, cookie: str) -> dict:
    response = requests.get(f"{url}/model", cookies=_jar(cookie), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _jar(cookie: str | None) -> dict:
    return {"session": cookie} if cookie else {}


def predict_upload(url: str, cookie: str | None, image: str, model: str | None = None):
    return requests.post(
        f"{url}/predict",
        files={"image": (f"{image}.jpg", sample_jpeg(image), "image/jpeg")},
        data={"model": model} if model else {},
        cookies=_jar(cookie),
        timeout=60,
    )


def test_a_choice_made_on_one_instance_is_used_by_the_other(redis_instances, v2_weights):
    first, second = redis_instances
    chosen = put_model(first.url, None, "efficientnet_b0")
    assert chosen.status_code == 200, chosen.text
    cookie = chosen.cookies["session"]

    assert get_model(second.url, cookie) == {
        "model": "efficientnet_b0",
        "selected_by": "session",
        "default": DEFAULT_MODEL,
    }
    response = predict_upload(second.url, cookie, "cat")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "efficientnet_b0"
    assert same_top5(
        top5_of(response.json()), reference_top5("efficientnet_b0", v2_weights, sample_jpeg("cat"))
    )

    # And back: the second instance changes it, the first one sees the change.
    assert put_model(second.url, cookie, "mobilenet_v3_large").status_code == 200
    assert get_model(first.url, cookie)["model"] == "mobilenet_v3_large"


def test_the_cookie_holds_a_signed_id_and_redis_holds_the_choice(redis_instances, redis_server):
    first, second = redis_instances
    cookie = put_model(first.url, None, "mobilenet_v3_large").cookies["session"]

    session_id, _, signature = cookie.rpartition(".")
    assert session_id
    assert signature
    assert "mobilenet" not in cookie
    stored = redis_server.client().get(f"session:{session_id}")
    assert stored is not None
    assert b"mobilenet_v3_large" in stored
    # A forged or tampered cookie is not a session: the caller gets the default.
    forged = f"{session_id}.{'A' * len(signature)}"
    assert get_model(second.url, forged)["selected_by"] == "service_default"


def test_rejected_choices_leave_the_shared_session_unchanged(redis_instances):
    first, second = redis_instances
    cookie = put_model(first.url, None, "efficientnet_b0").cookies["session"]

    unknown = put_model(second.url, cookie, "vgg16")
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "unknown_model"
    assert error["available"] == AVAILABLE

    missing = put_model(first.url, cookie, MISSING[0])
    assert missing.status_code == 503
    assert missing.json()["error"]["code"] == "model_unavailable"
    assert f"{MISSING[0]}.pth" in missing.json()["error"]["message"]

    for instance in redis_instances:
        assert get_model(instance.url, cookie)["model"] == "efficientnet_b0"


def test_eviction_under_load_causes_no_errors(redis_instances, v2_weights):
    """Each instance keeps one model (MAX_LOADED_MODELS=1): every switch evicts one in use."""
    first, _ = redis_instances
    models = ("mobilenet_v3_large", DEFAULT_MODEL)  # the two lightest, alternating
    # A fresh caller gets the default: lite0's answer, to compare the loaded ones with.
    lite0_answer = predict_upload(first.url, None, "coffee").json()

    def client(offset: int) -> list[tuple[str, requests.Response]]:
        answers = []
        for n in range(6):
            model = models[(n + offset) % len(models)]
            answers.append((model, predict_upload(first.url, None, "coffee", model)))
        return answers

    with ThreadPoolExecutor(3) as pool:
        answers = [pair for batch in pool.map(client, range(3)) for pair in batch]

    assert len(answers) == 18
    assert [r.status_code for _, r in answers] == [200] * 18, [r.text for _, r in answers]
    for model, response in answers:
        body = response.json()
        assert body["model"] == model
        if model == DEFAULT_MODEL:
            assert same_top5(top5_of(body), top5_of(lite0_answer))
        else:
            want = reference_top5(model, v2_weights, sample_jpeg("coffee"))
            assert same_top5(top5_of(body), want), (model, top5_of(body), want)
    assert "evicted" in first.log()
    assert requests.get(f"{first.url}/ready", timeout=10).status_code == 200
