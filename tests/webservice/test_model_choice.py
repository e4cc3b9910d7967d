"""The shared /model routes on a bare Flask app: the service says how a choice is
checked and stored, the blueprint how the routes answer."""

from __future__ import annotations

import pytest
from flask import Flask, session

from webservice import errors
from webservice.api import UploadSettings, init_api
from webservice.model_choice import CHOICE_KEY, model_choice_blueprint, session_choice
from webservice.sessions import SessionSettings, init_sessions


class AlwaysReady:
    def warm_up(self, cores: int | None = None) -> None:
        pass

    def not_ready_reason(self) -> str | None:
        return None


@pytest.fixture
def make_client(tmp_path):
    def make(offered=None):
        app = Flask(__name__)
        init_api(app, UploadSettings(), readiness=AlwaysReady())
        init_sessions(app, SessionSettings(session_dir=str(tmp_path / "sessions")))

        def choose(name: str) -> None:
            if name == "broken":
                raise errors.ModelUnavailable("broken cannot load", model=name)
            if name not in ("a", "b", "broken"):
                raise errors.UnknownModel.named(name, ["a", "b"])
            session[CHOICE_KEY] = name

        app.register_blueprint(model_choice_blueprint(default="a", choose=choose, offered=offered))

        @app.get("/seen")
        def seen() -> dict[str, str | None]:
            return {"choice": session_choice(offered)}

        return app.test_client()

    return make


def test_a_choice_is_stored_read_back_and_forgotten(make_client):
    client = make_client()
    assert client.get("/model").get_json() == {
        "model": "a",
        "selected_by": "service_default",
        "default": "a",
    }
    assert client.put("/model/b").get_json() == {
        "model": "b",
        "selected_by": "session",
        "default": "a",
    }
    assert client.get("/model").get_json()["model"] == "b"
    assert client.get("/seen").get_json() == {"choice": "b"}
    assert client.delete("/model").get_json()["selected_by"] == "service_default"
    assert client.get("/seen").get_json() == {"choice": None}


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [("zzz", 404, "unknown_model"), ("broken", 503, "model_unavailable")],
)
def test_a_refused_choice_is_the_services_error_and_changes_nothing(
    make_client, name, status, code
):
    client = make_client()
    client.put("/model/b")
    refused = client.put(f"/model/{name}")
    assert refused.status_code == status
    assert refused.get_json()["error"]["code"] == code
    assert client.get("/model").get_json()["model"] == "b"


def test_a_choice_no_longer_offered_reads_as_the_default(make_client):
    client = make_client(offered={"a", "b"})
    client.put("/model/b")
    assert client.get("/model").get_json()["model"] == "b"
    with client.session_transaction() as stored:
        stored[CHOICE_KEY] = "gone"  # e.g. the gateway no longer routes it
    assert client.get("/model").get_json() == {
        "model": "a",
        "selected_by": "service_default",
        "default": "a",
    }
    assert client.get("/seen").get_json() == {"choice": None}


def test_unknown_model_has_one_wording():
    error = errors.UnknownModel.named("vgg16", ["resnet18", "resnet50"])
    assert error.message == "Unknown model 'vgg16'. Models available here: resnet18, resnet50."
    assert error.details == {"available": ["resnet18", "resnet50"]}
    assert errors.UnknownModel.named("x", []).message.endswith("Models available here: none.")
