"""A session store that goes away: a real redis-server killed, restarted empty, frozen.

The app is a bare Flask app with the shared session set-up and /model routes
(webservice/), in Flask's test client; tests/backend_v2/test_store_outage.py runs
the same outages against live backend_v2 processes.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask, request, session

from tests.backend_v2.redis_server import start_redis
from webservice import errors
from webservice.api import UploadSettings, init_api
from webservice.model_choice import CHOICE_KEY, model_choice_blueprint, selected_by
from webservice.sessions import SessionSettings, init_sessions, session_store

pytestmark = pytest.mark.redis

DEFAULT, CHOSEN = "a", "b"
RECOVERY_SECONDS = 30  # a bound for "it recovers by itself", far above the retry period


class AlwaysReady:
    def warm_up(self, cores: int | None = None) -> None:
        pass

    def not_ready_reason(self) -> str | None:
        return None


def make_app(redis_url: str) -> Flask:
    app = Flask(__name__)
    init_api(app, UploadSettings(), readiness=AlwaysReady())
    init_sessions(
        app,
        SessionSettings(session_store="redis", session_redis_url=redis_url, secret_key="test"),
    )

    def choose(name: str) -> None:
        if name not in (DEFAULT, CHOSEN):
            raise errors.UnknownModel.named(name, [DEFAULT, CHOSEN])
        session[CHOICE_KEY] = name

    app.register_blueprint(model_choice_blueprint(default=DEFAULT, choose=choose))

    @app.post("/predict")
    def predict() -> dict[str, str]:
        """backend_v2's rule, without the model: what /predict would use, and why."""
        named = (request.get_json(silent=True) or {}).get("model")
        name = named or session.get(CHOICE_KEY) or DEFAULT
        return {"model": name, "selected_by": selected_by(named)}

    return app


@pytest.fixture
def store(tmp_path):
    server = start_redis(tmp_path)
    holder = {"server": server}
    yield holder
    holder["server"].stop()


@pytest.fixture
def client(store):
    client = make_app(store["server"].url).test_client()
    chosen = client.put(f"/model/{CHOSEN}")
    assert chosen.status_code == 200, chosen.get_data(as_text=True)
    assert client.post("/predict", json={}).get_json() == {
        "model": CHOSEN,
        "selected_by": "session",
    }
    return client


def assert_degraded(client) -> None:
    """What a caller with a session sees while the store cannot be reached."""
    for _ in range(3):  # the first try, then the ones inside the retry period
        assert client.get("/health").status_code == 200
        named = client.post("/predict", json={"model": CHOSEN})
        assert named.status_code == 200
        assert named.get_json() == {"model": CHOSEN, "selected_by": "request"}
        unnamed = client.post("/predict", json={})
        assert unnamed.status_code == 200
        assert unnamed.get_json() == {"model": DEFAULT, "selected_by": "session_store_unavailable"}
        for answer in (
            client.get("/model"),
            client.put(f"/model/{CHOSEN}"),
            client.delete("/model"),
        ):
            assert answer.status_code == 503, answer.get_data(as_text=True)
            error = answer.get_json()["error"]
            assert error["code"] == "session_store_unavailable"
            assert "name their model" in error["message"]
            assert answer.headers["Retry-After"] == "1"


def wait_for_model_route(client) -> dict:
    """GET /model until it answers 200 again (bounded); its answer."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (answer := client.get("/model")).status_code != 200:
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert time.monotonic() < deadline, "the store came back but the app did not notice"
        time.sleep(0.1)
    return answer.get_json()


def test_the_redis_client_has_short_explicit_timeouts():
    settings = SessionSettings(
        session_store="redis", session_redis_url="redis://127.0.0.1:9/0", session_store_timeout=0.3
    )
    pool = session_store(settings)["SESSION_REDIS"].connection_pool
    assert pool.connection_kwargs["socket_timeout"] == 0.3
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.3
    assert pool.connection_kwargs["retry"].get_retries() == 1


def test_a_killed_store_degrades_then_recovers_empty_and_says_so(store, client):
    store["server"].kill()
    assert_degraded(client)

    store["server"] = store["server"].restarted()  # empty: every session is gone
    # The caller's choice is lost, and the answers say so instead of hiding it.
    assert wait_for_model_route(client) == {
        "model": DEFAULT,
        "selected_by": "service_default",
        "default": DEFAULT,
    }
    assert client.post("/predict", json={}).get_json() == {
        "model": DEFAULT,
        "selected_by": "service_default",
    }
    assert client.put(f"/model/{CHOSEN}").status_code == 200
    assert client.post("/predict", json={}).get_json()["selected_by"] == "session"


def test_a_frozen_store_degrades_then_recovers_with_the_choice(store, client):
    store["server"].freeze()
    try:
        assert_degraded(client)
    finally:
        store["server"].thaw()
    assert wait_for_model_route(client)["model"] == CHOSEN  # nothing was lost
    assert client.post("/predict", json={}).get_json() == {
        "model": CHOSEN,
        "selected_by": "session",
    }


def test_a_first_choice_that_cannot_be_saved_is_a_503_without_a_cookie(store):
    client = make_app(store["server"].url).test_client()
    store["server"].kill()
    refused = client.put(f"/model/{CHOSEN}")  # no session to read: the write is what fails
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "session_store_unavailable"
    assert refused.headers["Retry-After"] == "1"
    assert "Set-Cookie" not in refused.headers
    # A new caller has no session to lose: GET /model needs no store.
    assert client.get("/model").get_json()["selected_by"] == "service_default"
