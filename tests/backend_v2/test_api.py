"""backend_v2's API in-process (Flask's test client, real models, real cachelib store)."""

from __future__ import annotations

import io

import pytest

from backend_v2.app import create_app
from backend_v2.settings import BackendV2Settings
from classifier.models import CATALOG
from tests.backend_v2.conftest import DEFAULT_MODEL, SECRET
from tests.backend_v2.weights import AVAILABLE, MISSING, PACKAGED
from tests.support.images import sample_jpeg
from webservice.api import readiness_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def make_app(v2_weights, tmp_path_factory):
    """Build a backend_v2 app from explicit settings (the environment cannot override them)."""

    def make(session_dir=None, **overrides):
        settings = {
            "model_name": DEFAULT_MODEL,
            "model_weights": str(v2_weights),
            "session_store": "cachelib",
            "session_dir": str(session_dir or tmp_path_factory.mktemp("sessions")),
            "secret_key": SECRET,
            "max_loaded_models": 3,
            **overrides,
        }
        return create_app(BackendV2Settings(**settings))

    return make


@pytest.fixture(scope="module")
def app(make_app):
    app = make_app()
    readiness_of(app).warm_up()  # what gunicorn's post_worker_init does
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def upload(client, image="cat", model=None, **form):
    data = {"image": (io.BytesIO(sample_jpeg(image)), f"{image}.jpg", "image/jpeg"), **form}
    if model:
        data["model"] = model
    return client.post("/predict", data=data, content_type="multipart/form-data")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def test_models_lists_every_catalog_model_with_its_size_and_availability(client):
    body = client.get("/models").get_json()

    entries = {entry["name"]: entry for entry in body["models"]}
    assert list(entries) == list(CATALOG)
    assert {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", PACKAGED} <= set(
        entries
    )
    for name, entry in entries.items():
        assert entry["available"] == (name in AVAILABLE)
        assert entry["default"] == (name == DEFAULT_MODEL)
        assert entry["selected"] == (name == DEFAULT_MODEL)
        assert entry["description"]
        assert "\n" not in entry["description"]
        assert entry["parameters"] == CATALOG[name].parameters > 1_000_000
    for name in MISSING:
        assert f"{name}.pth" in entries[name]["reason"]
    assert body["default"] == body["selected"] == DEFAULT_MODEL


def test_a_caller_chooses_reads_back_and_forgets_their_model(client):
    assert client.get("/model").get_json() == {
        "model": DEFAULT_MODEL,
        "selected_by": "service_default",
        "default": DEFAULT_MODEL,
    }
    chosen = client.put("/model/mobilenet_v3_large")
    assert chosen.status_code == 200
    assert chosen.get_json() == {
        "model": "mobilenet_v3_large",
        "selected_by": "session",
        "default": DEFAULT_MODEL,
    }
    assert client.get("/model").get_json()["model"] == "mobilenet_v3_large"
    models = client.get("/models").get_json()
    assert models["selected"] == "mobilenet_v3_large"
    assert [m["name"] for m in models["models"] if m["selected"]] == ["mobilenet_v3_large"]
    assert [m["name"] for m in models["models"] if m["default"]] == [DEFAULT_MODEL]

    assert client.delete("/model").get_json()["selected_by"] == "service_default"
    assert client.get("/model").get_json()["model"] == DEFAULT_MODEL


def test_predict_uses_the_request_then_the_session_then_the_default(client):
    first = upload(client, "cat")
    assert first.status_code == 200
    assert first.get_json()["model"] == DEFAULT_MODEL
    assert first.get_json()["selected_by"] == "service_default"  # GET /model's words
    # lite0's real weights see the cat
    assert first.get_json()["category"] in {"tabby", "tiger cat", "Egyptian cat"}
    assert "session" not in (first.headers.get("Set-Cookie") or "")  # no choice, no session

    client.put("/model/efficientnet_b0")
    from_session = upload(client, "cat").get_json()
    assert (from_session["model"], from_session["selected_by"]) == ("efficientnet_b0", "session")
    per_request = upload(client, "cat", model="mobilenet_v3_large").get_json()
    assert (per_request["model"], per_request["selected_by"]) == ("mobilenet_v3_large", "request")
    assert client.get("/model").get_json()["model"] == "efficientnet_b0"  # the session stays


def test_an_unknown_model_is_404_listing_the_available_ones_and_changes_nothing(client):
    client.put("/model/efficientnet_b0")
    for response in (client.put("/model/vgg16"), upload(client, model="vgg16")):
        error = assert_error(response, 404, "unknown_model")
        assert error["available"] == AVAILABLE
        assert "vgg16" in error["message"]
    assert client.get("/model").get_json()["model"] == "efficientnet_b0"


@pytest.mark.parametrize("model", MISSING)
def test_a_model_without_weights_is_503_with_the_reason_and_changes_nothing(client, model):
    client.put("/model/mobilenet_v3_large")
    for response in (client.put(f"/model/{model}"), upload(client, model=model)):
        error = assert_error(response, 503, "model_unavailable")
        assert error["model"] == model
        assert f"{model}.pth" in error["message"]
    assert client.get("/model").get_json()["model"] == "mobilenet_v3_large"


@pytest.mark.parametrize(("model", "status"), [("vgg16", 404), (MISSING[0], 503)])
def test_a_url_request_for_a_model_it_cannot_run_fetches_nothing(
    make_app, httpserver, model, status
):
    httpserver.expect_request("/cat.jpg").respond_with_data(
        sample_jpeg("cat"), mimetype="image/jpeg"
    )
    client = make_app(allow_loopback_urls=True).test_client()
    url = httpserver.url_for("/cat.jpg")

    refused = client.post("/predict", json={"url": url, "model": model})

    assert refused.status_code == status, refused.get_data(as_text=True)
    assert httpserver.log == []  # refused before the download
    fetched = client.post("/predict", json={"url": url, "model": "mobilenet_v3_large"})
    assert fetched.status_code == 200, fetched.get_data(as_text=True)
    assert len(httpserver.log) == 1


def test_a_new_caller_who_picks_an_unknown_model_gets_no_session(client):
    response = client.put("/model/vgg16")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers


def test_a_weights_file_that_does_not_fit_is_503_and_changes_nothing(make_app, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / f"{PACKAGED}.pth").write_bytes(CATALOG[PACKAGED].default_weights_path().read_bytes())
    (weights / "efficientnet_b0.pth").write_bytes(b"not a state dict")
    (weights / "mobilenet_v3_large.pth").write_bytes(b"")
    client = make_app(model_weights=str(weights)).test_client()
    client.put(f"/model/{PACKAGED}")

    for model in ("efficientnet_b0", "mobilenet_v3_large"):
        error = assert_error(client.put(f"/model/{model}"), 503, "model_unavailable")
        assert f"does not fit {model}" in error["message"]
        assert_error(upload(client, model=model), 503, "model_unavailable")
    assert client.get("/model").get_json()["model"] == PACKAGED


def test_the_cookie_is_only_a_signed_session_id(client):
    response = client.put("/model/efficientnet_b0")
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    value = client.get_cookie("session").value
    session_id, _, signature = value.rpartition(".")
    assert session_id
    assert signature
    assert "efficientnet_b0" not in value


def test_errors_and_limits_are_those_of_v1(make_app, client):
    assert_error(
        client.post("/predict", data=b"plain", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    assert_error(client.post("/predict", json={"model": "efficientnet_b0"}), 400, "bad_request")
    assert_error(upload(client, top_k="0"), 400, "bad_request")
    not_an_image = client.post(
        "/predict",
        data={"image": (io.BytesIO(b"hello"), "x.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert_error(not_an_image, 415, "unsupported_media_type")
    assert_error(client.get("/predict"), 405, "method_not_allowed")
    assert_error(client.get("/nothing-here"), 404, "not_found")
    assert len(upload(client, top_k="3").get_json()["predictions"]) == 3

    # The request limit is MAX_UPLOAD_BYTES plus room for the multipart framing, as in v1.
    small = make_app(max_upload_bytes=1_000).test_client()
    too_big = small.post(
        "/predict",
        data={"image": (io.BytesIO(b"\xff" * 100_000), "big.jpg", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert_error(too_big, 413, "payload_too_large")


def test_ready_only_after_the_default_model_is_warm(make_app):
    app = make_app()
    client = app.test_client()
    assert_error(client.get("/ready"), 503, "not_ready")
    assert client.get("/health").get_json() == {"status": "ok"}
    readiness_of(app).warm_up()
    assert client.get("/ready").get_json() == {"status": "ready"}


@pytest.mark.parametrize(
    ("model_name", "says"),
    [(MISSING[0], f"{MISSING[0]}.pth"), ("vgg16", "Unknown model 'vgg16'")],
)
def test_a_default_model_that_cannot_load_stops_the_start_with_the_fix(make_app, model_name, says):
    with pytest.raises(SystemExit, match="cannot start") as stopped:
        make_app(model_name=model_name)
    assert says in str(stopped.value)


def test_cachelib_sessions_live_in_one_instances_folder(make_app, tmp_path):
    """Why cachelib breaks with two Cloud Run instances: each has its own folder."""
    one, two = tmp_path / "instance-1", tmp_path / "instance-2"
    instance_1, same_folder, instance_2 = (
        make_app(session_dir=one),
        make_app(session_dir=one),  # another worker of instance 1
        make_app(session_dir=two),
    )
    first = instance_1.test_client()
    assert first.put("/model/efficientnet_b0").status_code == 200
    cookie = first.get_cookie("session").value

    def model_seen_by(app) -> dict:
        client = app.test_client()
        client.set_cookie("session", cookie)
        return client.get("/model").get_json()

    assert model_seen_by(same_folder)["model"] == "efficientnet_b0"
    # Same SECRET_KEY, valid signature, but instance 2 has never seen this session.
    assert model_seen_by(instance_2) == {
        "model": DEFAULT_MODEL,
        "selected_by": "service_default",
        "default": DEFAULT_MODEL,
    }


def test_redis_store_needs_its_url(make_app):
    with pytest.raises(SystemExit, match="SESSION_REDIS_URL"):
        make_app(session_store="redis", session_redis_url=None)
