"""The gateway's timeouts follow the model services' own limits."""

from __future__ import annotations

from classifier.settings import ServingSettings
from v3_gateway.settings import GatewaySettings

ROUTES = "resnet18=http://127.0.0.1:9"


def test_the_gateway_reads_the_model_services_fetch_deadline_with_its_default(monkeypatch):
    """FETCH_TOTAL_TIMEOUT is the model services' variable: the same name and default here,
    so one value set for both keeps the gateway from giving up on a download still allowed."""
    gateway_default = GatewaySettings.model_fields["fetch_total_timeout"].default
    assert gateway_default == ServingSettings.model_fields["fetch_total_timeout"].default
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "7")
    assert GatewaySettings(model_services=ROUTES).fetch_total_timeout == 7
    assert ServingSettings().fetch_total_timeout == 7


def test_a_prediction_gets_the_download_then_the_inference_and_the_slot_wait_on_top():
    settings = GatewaySettings(
        model_services=ROUTES,
        fetch_total_timeout=5,
        upstream_inference_timeout=3,
        queue_wait_seconds=0.5,
    )
    assert settings.predict_timeout == 8
    assert settings.predict_deadline == 8.5
