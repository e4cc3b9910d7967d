"""backend_v1 fixtures: an in-process app with test settings and a saved state dict."""

import pytest
import torch
import torchvision

from backend_v1.app import create_app
from backend_v1.settings import BackendV1Settings
from webservice.api import readiness_of


@pytest.fixture(scope="session")
def resnet18_weights(tmp_path_factory):
    """A resnet18 state dict made here (no download), shared by in-process and live tests."""
    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def app(resnet18_weights):
    settings = BackendV1Settings(
        model_name="resnet18",
        model_weights=str(resnet18_weights),
        max_upload_bytes=2_000_000,
        allow_loopback_urls=True,
    )
    app = create_app(settings)
    readiness_of(app).warm_up()  # what gunicorn's post_worker_init does
    return app


@pytest.fixture
def client(app):
    return app.test_client()
