"""The gateway in front of two real model services: it answers as they do."""

from __future__ import annotations

import pytest
import requests

from tests.support import frontend as page
from tests.support.images import sample_jpeg
from tests.v3_gateway.conftest import start_gateway

pytestmark = pytest.mark.slow

LITE0, RESNET18 = "efficientnet_lite0", "resnet18"
RANDOM_WARNING = "untrained random weights (MODEL_WEIGHTS=random): predictions are noise"


@pytest.fixture(scope="module")
def direct(model_services):
    """The model services' own URLs, by model name."""
    lite0, resnet18 = model_services
    return {LITE0: lite0.url, RESNET18: resnet18.url}


@pytest.fixture(scope="module")
def gateway(direct, service_log_dir, tmp_path_factory):
    routes = dict(direct)
    service = start_gateway(service_log_dir, tmp_path_factory.mktemp("sessions"), routes)
    yield service
    service.stop()


def upload(url: str, *, image: bytes | None = None, **form) -> requests.Response:
    files = {"image": ("cat.jpg", image or sample_jpeg("cat"), "image/jpeg")}
    return requests.post(url, files=files, data=form, timeout=60)


def same_predictions(a: dict, b: dict) -> None:
    assert [(p["label"], p["index"]) for p in a["predictions"]] == [
        (p["label"], p["index"]) for p in b["predictions"]
    ]
    assert [p["probability"] for p in a["predictions"]] == pytest.approx(
        [p["probability"] for p in b["predictions"]], abs=1e-5
    )


@pytest.mark.parametrize("name", [LITE0, RESNET18])
def test_upload_through_gateway_equals_direct_call(gateway, direct, name):
    own = upload(direct[name] + "/predict")
    routed = upload(gateway.url + "/predict", model=name)
    assert own.status_code == routed.status_code == 200, routed.text
    assert routed.json()["model"] == name
    same_predictions(routed.json(), own.json())
    assert "upstream;dur=" in routed.headers["Server-Timing"]


def test_url_through_gateway_equals_direct_call(gateway, direct, httpserver):
    httpserver.expect_request("/coffee.jpg").respond_with_data(
        sample_jpeg("coffee"), content_type="image/jpeg"
    )
    body = {"url": httpserver.url_for("/coffee.jpg"), "top_k": 3}
    for name in (LITE0, RESNET18):
        own = requests.post(direct[name] + "/predict", json=body, timeout=60)
        routed = requests.post(gateway.url + "/predict", json={**body, "model": name}, timeout=60)
        assert own.status_code == routed.status_code == 200, routed.text
        assert len(routed.json()["predictions"]) == 3
        same_predictions(routed.json(), own.json())
    assert routed.json()["model"] == RESNET18
    # lite0 recognises the photo, which shows the real weights sit behind the gateway.
    lite0 = requests.post(gateway.url + "/predict", json=body, timeout=60).json()
    assert lite0["model"] == LITE0
    assert "espresso" in [p["label"] for p in lite0["predictions"]]


def test_path_form_and_body_form_agree(gateway):
    by_path = upload(gateway.url + f"/model/{RESNET18}/predict", top_k=4)
    by_body = upload(gateway.url + "/predict", model=RESNET18, top_k=4)
    assert by_path.status_code == by_body.status_code == 200, by_path.text
    assert by_path.json()["model"] == by_body.json()["model"] == RESNET18
    same_predictions(by_path.json(), by_body.json())
    url_form = requests.post(gateway.url + f"/model/{LITE0}/predict", json={}, timeout=30)
    assert url_form.status_code == 400  # the model service's own validation, relayed
    assert url_form.json()["error"]["code"] == "bad_request"


def test_sessions_keep_each_callers_model(gateway):
    alice, bob = requests.Session(), requests.Session()
    assert alice.get(gateway.url + "/model", timeout=10).json() == {
        "model": LITE0,
        "selected_by": "service_default",
        "default": LITE0,
    }

    chosen = alice.put(gateway.url + f"/model/{RESNET18}", timeout=10)
    assert chosen.status_code == 200
    assert chosen.json() == {"model": RESNET18, "selected_by": "session", "default": LITE0}
    assert alice.get(gateway.url + "/models", timeout=10).json()["selected"] == RESNET18
    files = {"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")}
    assert alice.post(gateway.url + "/predict", files=files, timeout=60).json()["model"] == RESNET18
    # Another caller keeps the default; an explicit model still wins over the session.
    assert bob.post(gateway.url + "/predict", files=files, timeout=60).json()["model"] == LITE0
    explicit = alice.post(gateway.url + "/predict", files=files, data={"model": LITE0}, timeout=60)
    assert explicit.json()["model"] == LITE0

    unknown = alice.put(gateway.url + "/model/vgg16", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["available"] == [LITE0, RESNET18]
    assert alice.get(gateway.url + "/model", timeout=10).json()["model"] == RESNET18

    forgotten = alice.delete(gateway.url + "/model", timeout=10)
    assert forgotten.json() == {"model": LITE0, "selected_by": "service_default", "default": LITE0}
    assert alice.post(gateway.url + "/predict", files=files, timeout=60).json()["model"] == LITE0


def test_models_and_ready_report_live_services(gateway):
    assert requests.get(gateway.url + "/ready", timeout=10).status_code == 200
    assert requests.get(gateway.url + "/health", timeout=10).json() == {"status": "ok"}
    listed = {
        m["name"]: m for m in requests.get(gateway.url + "/models", timeout=10).json()["models"]
    }
    assert list(listed) == [LITE0, RESNET18]
    assert listed[LITE0]["available"]
    assert listed[LITE0]["default"]
    assert listed[RESNET18]["available"]
    assert not listed[RESNET18]["default"]
    assert listed[RESNET18]["weights"] == "random"
    assert "random" in listed[RESNET18]["warning"]  # the service's own warning, passed on
    assert {m["circuit"] for m in listed.values()} == {"closed"}


def test_errors_are_the_apis_json(gateway):
    not_image = upload(gateway.url + "/predict", image=b"plain text, not a picture")
    assert not_image.status_code == 415, not_image.text  # from the model service
    assert not_image.json()["error"]["code"] == "unsupported_media_type"
    unknown = upload(gateway.url + "/model/vgg16/predict")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_model"
    too_big = upload(gateway.url + "/predict", image=b"\0" * (11 * 1024 * 1024))
    assert too_big.status_code == 413  # refused by the gateway before any forwarding


def test_frontend_v2_works_unchanged_against_the_gateway(gateway, monkeypatch):
    monkeypatch.setenv("SERVING_URL", gateway.url)
    at = page.app_test("frontend_v2").run()
    assert not at.exception
    at = at.selectbox(key="v2_model_choice").set_value(RESNET18).run()
    assert page.texts(at.sidebar.success) == [f"The backend now uses {RESNET18} for your session."]
    at = page.upload(at, "chelsea.jpg", sample_jpeg("cat"))
    at = at.button(key="v2-classify").click().run()
    assert not at.exception
    assert not at.error
    # The only warning is resnet18's own (random weights), not "it lost your session".
    assert page.texts(at.warning) == [f"The backend warns: {RANDOM_WARNING}"]
    assert {m.label: m.value for m in at.metric}["Model"] == RESNET18
