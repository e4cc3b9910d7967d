"""frontend_v2 in Streamlit's AppTest against a real backend_v2 (sessions, several models)."""

from __future__ import annotations

import pytest
import requests

from apiclient import ApiClient
from tests.frontend_v2.conftest import AVAILABLE
from tests.support.frontend import (
    HangingPredict,
    app_test,
    backend_coming_back,
    opened_while_backend_down,
    texts,
    upload,
)
from tests.support.images import sample_jpeg
from tests.support.servers import free_port

CHOICE = "v2_model_choice"


@pytest.fixture
def v2(monkeypatch):
    monkeypatch.delenv("SERVING_URL", raising=False)
    return app_test("frontend_v2")


def page_client(at) -> ApiClient:
    """The page's own client (one per browser session): it holds the session cookie."""
    return at.session_state["api_client"]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_missing_serving_url_is_said_plainly(v2):
    at = v2.run()
    assert not at.exception
    [message] = texts(at.error)
    assert message.startswith("No backend configured. SERVING_URL is not set.")
    assert len(at.selectbox) == 0
    assert len(at.button) == 0  # no "Try again": only a new setting can fix this


def test_unreachable_backend_is_said_plainly(v2, monkeypatch):
    port = free_port()
    monkeypatch.setenv("SERVING_URL", f"http://127.0.0.1:{port}")
    at = v2.run()
    assert not at.exception
    [message] = texts(at.error)
    assert message.startswith(
        f"The backend is unreachable. Could not reach http://127.0.0.1:{port}"
    )


def test_a_page_loaded_while_the_backend_was_down_comes_back_with_it(v2, monkeypatch):
    at, port = opened_while_backend_down(v2, monkeypatch)
    routes = {
        "/models": {"models": [{"name": "resnet18", "available": True, "default": True}]},
        "/model": {"model": "resnet18", "selected_by": "service_default"},
    }
    with backend_coming_back(port, routes):
        at = at.button(key="retry-now").click().run()
    assert not at.exception
    assert not at.error
    assert at.selectbox(key=CHOICE).value == "resnet18"


def test_timeout_is_said_plainly(v2, monkeypatch, httpserver):
    hanging = HangingPredict()
    httpserver.expect_request("/models").respond_with_json(
        {"models": [{"name": "resnet18", "available": True, "default": True}]}
    )
    httpserver.expect_request("/model").respond_with_json({"model": "resnet18"})
    httpserver.expect_request("/predict", method="POST").respond_with_handler(hanging)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    monkeypatch.setenv("API_READ_TIMEOUT", "0.5")
    try:
        at = upload(v2.run(), "cat.jpg", sample_jpeg("cat"))
        at = at.button(key="v2-classify").click().run()
    finally:
        hanging.release.set()
    assert not at.exception
    [message] = texts(at.error)
    assert message.startswith("The backend timed out.")
    assert hanging.calls == 1


@pytest.mark.slow
def test_picker_lists_every_model_and_says_why_one_is_unavailable(v2, monkeypatch, v2_backend):
    listed = requests.get(v2_backend.url + "/models", timeout=10).json()["models"]
    monkeypatch.setenv("SERVING_URL", v2_backend.url)
    at = v2.run()
    assert not at.exception
    picker = at.selectbox(key=CHOICE)
    assert picker.value == "efficientnet_lite0"  # the service default
    expected = []
    for entry in listed:
        if not entry["available"]:
            expected.append(f"{entry['name']} (unavailable)")
        else:
            expected.append(entry["name"] + (" (default)" if entry["default"] else ""))
    assert picker.options == expected  # short names: no reason paragraphs in the list
    unavailable = [e["name"] for e in listed if not e["available"]]
    assert f"Not available on this backend: {', '.join(unavailable)}." in texts(at.sidebar.caption)
    assert sorted(e["name"] for e in listed if e["available"]) == sorted(AVAILABLE)
    assert len(listed) == 5


@pytest.mark.slow
def test_an_unavailable_model_cannot_be_used(v2, monkeypatch, v2_backend):
    monkeypatch.setenv("SERVING_URL", v2_backend.url)
    at = upload(v2.run(), "cat.jpg", sample_jpeg("cat"))
    at = at.selectbox(key=CHOICE).set_value("resnet50").run()
    assert not at.exception
    [warning] = texts(at.sidebar.warning)
    assert warning == "resnet50 is not available on this backend. Pick another model."
    reason = next(
        m["reason"] for m in page_client(at).models()["models"] if m["name"] == "resnet50"
    )
    assert f"Why: {reason}" in texts(at.sidebar.caption)
    assert at.button(key="v2-classify").disabled
    assert page_client(at).get_model()["model"] == "efficientnet_lite0"  # nothing was sent


@pytest.mark.slow
def test_the_choice_is_kept_in_the_backend_session_and_used(v2, monkeypatch, v2_backend):
    monkeypatch.setenv("SERVING_URL", v2_backend.url)
    at = v2.run()
    at = at.selectbox(key=CHOICE).set_value("resnet18").run()
    assert not at.exception
    assert texts(at.sidebar.success) == ["The backend now uses resnet18 for your session."]
    # The page's client carries the session cookie; another browser session has its own.
    assert page_client(at).get_model() == {
        "model": "resnet18",
        "selected_by": "session",
        "default": "efficientnet_lite0",
    }
    with ApiClient(v2_backend.url) as other_browser:
        assert other_browser.get_model()["model"] == "efficientnet_lite0"
    # Later reruns send nothing more: the choice has not changed.
    at = upload(at, "chelsea.jpg", sample_jpeg("cat"))
    assert texts(at.sidebar.success) == []
    at = at.button(key="v2-classify").click().run()
    assert not at.exception
    assert not at.error
    assert not at.warning  # the backend answered with the chosen model
    assert metrics(at)["Model"] == "resnet18"
    assert len(at.dataframe[0].value) == 5


@pytest.mark.slow
def test_compare_runs_one_image_through_every_available_model(v2, monkeypatch, v2_backend):
    monkeypatch.setenv("SERVING_URL", v2_backend.url)
    at = upload(v2.run(), "chelsea.jpg", sample_jpeg("cat"))
    at = at.button(key="v2-compare").click().run()
    assert not at.exception
    assert not at.error
    summary = at.dataframe[0].value
    assert sorted(summary["model"]) == sorted(AVAILABLE)
    assert (summary["error"] == "").all()
    assert summary["backend ms"].notna().all()
    assert summary["round trip ms"].notna().all()
    lite0 = summary.set_index("model").loc["efficientnet_lite0"]
    assert "cat" in lite0["top-1"].lower()
    predictions = at.dataframe[1].value
    assert sorted(set(predictions["model"])) == sorted(AVAILABLE)
    assert (predictions.groupby("model").size() == 5).all()
    # Comparing names each model per request: the session's own choice is untouched.
    assert page_client(at).get_model()["selected_by"] == "service_default"


@pytest.mark.slow
def test_backend_error_is_shown_in_the_backends_own_words(v2, monkeypatch, v2_backend):
    data = b"GIF89a but not really"
    direct = requests.post(
        v2_backend.url + "/predict", files={"image": ("x.gif", data)}, timeout=30
    )
    assert direct.status_code == 415
    monkeypatch.setenv("SERVING_URL", v2_backend.url)
    at = upload(v2.run(), "x.gif", data, "image/gif")
    at = at.button(key="v2-classify").click().run()
    assert not at.exception
    assert texts(at.error) == [
        "The backend refused the request (HTTP 415, unsupported_media_type): "
        + direct.json()["error"]["message"]
    ]


@pytest.mark.slow
def test_a_backend_without_sessions_gets_the_model_in_each_request(v2, monkeypatch, lite0_backend):
    monkeypatch.setenv("SERVING_URL", lite0_backend.url)  # backend_v1: GET /model is 404
    at = upload(v2.run(), "chelsea.jpg", sample_jpeg("cat"))
    assert not at.exception
    assert texts(at.sidebar.info) == [
        "This backend keeps no sessions; the model is named in each request."
    ]
    at = at.button(key="v2-classify").click().run()
    assert not at.error
    assert metrics(at)["Model"] == "efficientnet_lite0"


@pytest.mark.parametrize(
    ("selected_by", "why"),
    [
        ("service_default", ": it had no choice in your session, so its default model answered."),
        (
            "session_store_unavailable",
            ": it could not read your session just now, so its default model answered.",
        ),
        (None, "."),  # a backend that does not say why
    ],
)
def test_a_lost_backend_session_is_reported_and_the_choice_sent_again(
    v2, monkeypatch, httpserver, selected_by, why
):
    """A backend that forgets sessions (e.g. a second instance with its own store)."""
    httpserver.expect_request("/models").respond_with_json(
        {
            "models": [
                {"name": "resnet50", "available": True, "default": True},
                {"name": "resnet18", "available": True, "default": False},
            ]
        }
    )
    httpserver.expect_request("/model", method="GET").respond_with_json({"model": "resnet50"})
    httpserver.expect_request("/model/resnet18", method="PUT").respond_with_json(
        {"model": "resnet18"}
    )
    answer = {
        "model": "resnet50",
        "category": "tabby",
        "predictions": [{"label": "tabby", "index": 281, "probability": 0.5}],
        "timing_ms": {"total_ms": 3.0},
    }
    if selected_by:
        answer["selected_by"] = selected_by
    httpserver.expect_request("/predict", method="POST").respond_with_json(answer)
    monkeypatch.setenv("SERVING_URL", httpserver.url_for("/"))
    at = v2.run()
    at = at.selectbox(key=CHOICE).set_value("resnet18").run()
    at = upload(at, "cat.jpg", sample_jpeg("cat"))
    at = at.button(key="v2-classify").click().run()
    assert not at.exception
    [warning] = texts(at.warning)
    assert warning == (
        f"You chose resnet18 but the backend answered with resnet50{why} "
        "Your choice is sent again on the next action."
    )
    assert metrics(at)["Model"] == "resnet50"  # what the backend really used is shown
    at = at.run()  # the next action asks the backend again and resends the choice
    puts = [r for r, _ in httpserver.log if r.method == "PUT"]
    assert [r.path for r in puts] == ["/model/resnet18", "/model/resnet18"]
    assert texts(at.sidebar.success) == ["The backend now uses resnet18 for your session."]
