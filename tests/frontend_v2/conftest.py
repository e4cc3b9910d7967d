"""A real backend_v2 for frontend_v2's tests: two models with weights, three without."""

from __future__ import annotations

import pytest

from tests.support.servers import start_service

AVAILABLE = ("efficientnet_lite0", "resnet18")


@pytest.fixture(scope="session")
def v2_weights_dir(tmp_path_factory):
    """MODEL_WEIGHTS=<dir>: lite0's real ImageNet weights and a resnet18 state dict made here."""
    import torch
    import torchvision

    from classifier.models import get_spec

    folder = tmp_path_factory.mktemp("v2-weights")
    (folder / "efficientnet_lite0.pth").symlink_to(
        get_spec("efficientnet_lite0").default_weights_path()
    )
    torch.manual_seed(7)
    torch.save(torchvision.models.resnet18().state_dict(), folder / "resnet18.pth")
    return folder


@pytest.fixture(scope="session")
def v2_backend(service_log_dir, v2_weights_dir, tmp_path_factory):
    service = start_service(
        "backend_v2",
        service_log_dir,
        env={
            "MODEL_NAME": "efficientnet_lite0",
            "MODEL_WEIGHTS": str(v2_weights_dir),
            "ALLOW_LOOPBACK_URLS": "true",
            "SESSION_DIR": str(tmp_path_factory.mktemp("v2-sessions")),
            "SECRET_KEY": "frontend-v2-tests",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
        },
    )
    yield service
    service.stop()
