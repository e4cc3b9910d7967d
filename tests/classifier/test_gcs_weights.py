"""MODEL_WEIGHTS=gs://...: weights read from Cloud Storage, against gcp-storage-emulator on
loopback (and a loopback server that refuses, for access denied)."""

from __future__ import annotations

import io
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
import requests
import torch
import torchvision

from classifier import gcs_weights
from classifier.fast_load import load_without_init
from classifier.models import CATALOG, WeightsSource, load_model, load_or_exit
from classifier.settings import ServingSettings
from tests.support.images import sample_jpeg
from tests.support.servers import start_service
from tests.support.storage_emulator import StorageEmulator

RESNET18 = CATALOG["resnet18"]


def gcs_source(uri: str, **settings) -> WeightsSource:
    """MODEL_WEIGHTS=uri as a backend reads it: through its serving settings."""
    return ServingSettings(model_weights=uri, **settings).weights_source


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(7)
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def emulator(resnet18_state):
    with StorageEmulator() as running:
        running.upload("models", "resnet18.pth", resnet18_state)
        running.upload("models", "all/resnet18.pth", resnet18_state)
        yield running


@pytest.fixture
def storage_env(emulator, monkeypatch):
    gcs_weights.fetch.cache_clear()  # one download per process: each test starts afresh
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    yield emulator
    gcs_weights.fetch.cache_clear()


def test_a_state_dict_in_a_bucket_loads_and_says_where_it_came_from(storage_env, caplog):
    source = gcs_source("gs://models/resnet18.pth")
    assert (source.kind, source.uri) == ("gcs", "gs://models/resnet18.pth")
    with caplog.at_level(logging.INFO, logger="classifier.gcs_weights"):
        loaded = load_model("resnet18", source)
    assert loaded.weights_origin == "gs://models/resnet18.pth"
    torch.manual_seed(7)
    expected = torchvision.models.resnet18().state_dict()
    for name, tensor in loaded.module.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    [line] = [r.getMessage() for r in caplog.records if "Cloud Storage" in r.getMessage()]
    assert line.startswith("weights gs://models/resnet18.pth read from Cloud Storage: 46.8 MB")


def test_the_seams_fast_load_reads_the_downloaded_copy_and_names_the_bucket(storage_env):
    """classifier/serving.py loads with load_without_init first: the gs:// object goes
    through it too, and the origin it reports is the object, not the temporary copy."""
    loaded = load_without_init("resnet18", gcs_source("gs://models/resnet18.pth"))
    assert loaded is not None
    assert loaded.weights_origin == "gs://models/resnet18.pth"
    torch.manual_seed(7)
    expected = torchvision.models.resnet18().state_dict()
    for name, tensor in loaded.module.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_a_mounted_bucket_is_read_as_a_folder_or_a_file(resnet18_state, tmp_path):
    """A Cloud Storage volume (--add-volume type=cloud-storage) is a folder at its mount
    path: MODEL_WEIGHTS names the folder, or the file in it, as any local path."""
    mount = tmp_path / "mnt" / "models"
    mount.mkdir(parents=True)
    (mount / "resnet18.pth").write_bytes(resnet18_state)
    folder = ServingSettings(model_name="resnet18", model_weights=str(mount)).weights_source
    file = ServingSettings(model_weights=str(mount / "resnet18.pth")).weights_source
    assert (folder.kind, file.kind) == ("dir", "file")
    for source in (folder, file):
        assert source.missing_reason(RESNET18) is None
        loaded = load_without_init("resnet18", source)
        assert loaded is not None
        assert loaded.weights_origin == str(mount / "resnet18.pth")
    reason = folder.missing_reason(CATALOG["resnet50"])
    assert f"MODEL_WEIGHTS points at {mount / 'resnet50.pth'}, which does not exist" in reason


def test_a_folder_in_a_bucket_holds_one_file_per_model(storage_env):
    source = gcs_source("gs://models/all/")
    assert source.missing_reason(RESNET18) is None
    assert source.origin(RESNET18) == "gs://models/all/resnet18.pth"
    reason = source.missing_reason(CATALOG["resnet50"])
    assert "there is no object all/resnet50.pth in bucket models" in reason


def test_the_object_is_downloaded_once_per_process(storage_env, resnet18_state):
    storage_env.upload("models", "cached.pth", resnet18_state)
    source = gcs_source("gs://models/cached.pth")
    first = source.path_for(RESNET18)
    assert first is not None
    assert first.read_bytes() == resnet18_state
    storage_env.upload("models", "cached.pth", b"replaced")
    assert source.path_for(RESNET18) == first  # cached: the model loads what was checked
    assert first.read_bytes() == resnet18_state
    assert source.missing_reason(RESNET18) is None


def test_a_missing_object_stops_the_start_with_the_fix(storage_env):
    source = gcs_source("gs://models/resnet50.pth")
    with pytest.raises(SystemExit) as stopped:
        load_or_exit("resnet18", gcs_source("gs://models/missing.pth"))
    message = str(stopped.value)
    assert message.startswith("cannot start: MODEL_WEIGHTS=gs://models/missing.pth: there is no")
    assert "gcloud storage cp <file>.pth gs://models/missing.pth" in message
    assert "gcloud storage ls gs://models/" in source.missing_reason(RESNET18)


def test_an_object_above_the_limit_is_refused_before_it_is_downloaded(storage_env, tmp_path):
    source = gcs_source("gs://models/resnet18.pth", model_weights_max_bytes=1_000_000)
    reason = source.missing_reason(RESNET18)
    assert "is 46835019 bytes, more than MODEL_WEIGHTS_MAX_BYTES=1000000" in reason
    assert source.path_for(RESNET18) is None


@pytest.mark.parametrize("uri", ["gs://", "gs://bucket-only", "gs:///resnet18.pth"])
def test_a_uri_without_an_object_is_explained_without_asking_anyone(uri):
    gcs_weights.fetch.cache_clear()
    reason = gcs_source(uri).missing_reason(RESNET18)
    assert "names no object: use gs://<bucket>/<path>.pth" in reason


class Refusing(BaseHTTPRequestHandler):
    """Cloud Storage's JSON API answering 403, as it does to an account without a role."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": 403,
                    "message": "backend@p.iam.gserviceaccount.com does not have "
                    "storage.objects.get access to the Google Cloud Storage object.",
                    "errors": [{"reason": "forbidden", "domain": "global"}],
                }
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def test_access_denied_names_the_role_to_grant(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    Thread(target=server.serve_forever, daemon=True).start()
    gcs_weights.fetch.cache_clear()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_port}")
    try:
        reason = gcs_source("gs://private-models/resnet18.pth").missing_reason(RESNET18)
    finally:
        server.shutdown()
        gcs_weights.fetch.cache_clear()
    assert reason.startswith("MODEL_WEIGHTS=gs://private-models/resnet18.pth: access denied (")
    assert "does not have storage.objects.get access" in reason
    assert "gcloud storage buckets add-iam-policy-binding gs://private-models" in reason
    assert "--role=roles/storage.objectViewer" in reason


def test_no_credentials_at_all_is_explained(monkeypatch, tmp_path):
    gcs_weights.fetch.cache_clear()
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud application-default credentials
    monkeypatch.setenv("GCE_METADATA_DETECT_RETRIES", "1")
    try:
        reason = gcs_source("gs://models/resnet18.pth").missing_reason(RESNET18)
    finally:
        gcs_weights.fetch.cache_clear()
    assert "needs Google credentials, and there are none here" in reason
    assert "gcloud auth application-default login" in reason


@pytest.mark.slow
def test_a_backend_classifies_with_real_weights_from_the_bucket(emulator, service_log_dir):
    """efficientnet_lite0's real ImageNet weights (its package's file), uploaded to the
    bucket: backend_v1 reads them at start, through its serving settings and the seam,
    and classifies a real photo with them."""
    weights = CATALOG["efficientnet_lite0"].default_weights_path().read_bytes()
    uri = emulator.upload("models", "real/efficientnet_lite0.pth", weights)
    backend = start_service(
        "backend_v1",
        service_log_dir,
        env={
            "MODEL_NAME": "efficientnet_lite0",
            "MODEL_WEIGHTS": uri,
            "WEB_CONCURRENCY": "1",
            **emulator.env,
        },
        timeout=240,
    )
    try:
        [entry] = requests.get(backend.url + "/models", timeout=30).json()["models"]
        files = {"image": ("cat.jpg", sample_jpeg("cat"), "image/jpeg")}
        answer = requests.post(backend.url + "/predict", files=files, timeout=60)
        log = backend.log()
    finally:
        backend.stop()
    assert (entry["name"], entry["available"], entry["weights"]) == (
        "efficientnet_lite0",
        True,
        "gcs",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["category"] in {"tabby", "tiger cat", "Egyptian cat"}
    megabytes = len(weights) / 1e6
    assert f"weights {uri} read from Cloud Storage: {megabytes:.1f} MB" in log
    assert f"serving efficientnet_lite0 (default efficientnet_lite0; weights: {uri};" in log


@pytest.mark.slow
def test_a_backend_whose_weights_are_missing_stops_with_the_reason(emulator, service_log_dir):
    with pytest.raises(RuntimeError, match="exited early") as failed:
        start_service(
            "backend_v1",
            service_log_dir,
            env={
                "MODEL_NAME": "resnet18",
                "MODEL_WEIGHTS": "gs://models/typo.pth",
                "WEB_CONCURRENCY": "1",
                **emulator.env,
            },
            timeout=240,
        )
    assert "cannot start: MODEL_WEIGHTS=gs://models/typo.pth: there is no object" in str(
        failed.value
    )


def test_without_the_serving_settings_a_gs_uri_is_not_fetched():
    reason = WeightsSource.parse("gs://models/resnet18.pth").missing_reason(RESNET18)
    assert reason == "MODEL_WEIGHTS=gs://models/resnet18.pth: nothing here reads Cloud Storage."
