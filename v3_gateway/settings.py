"""The gateway's settings, read from the environment once (pydantic-settings)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from apiclient.auth import BackendAuth
from v3_gateway.routes import ModelRoute, RouteConfigError, build_routes, load_yaml, parse_pairs
from webservice.api import UploadSettings
from webservice.deadlines import INFERENCE_ALLOWANCE_SECONDS, FetchDeadlineSettings
from webservice.server import ServerSettings


class GatewaySettings(UploadSettings, FetchDeadlineSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    model_services: str = Field("", description="name=url,name=url")
    model_services_file: Path | None = Field(None, description="YAML mapping name: url")
    default_model: str | None = Field(None, description="default: the first model listed")

    # How long a model service may take to accept a connection.
    upstream_connect_timeout: float = Field(3.05, gt=0)
    # A model service's worst case for one /predict: its download of an image URL,
    # FETCH_TOTAL_TIMEOUT (FetchDeadlineSettings: the model services' own variable and
    # default, set it here as there), then the inference and its wait for a turn,
    # UPSTREAM_INFERENCE_TIMEOUT (a cold instance's start counts too). Past both the
    # service is hung: the gateway answers 504 and counts a failure against its circuit.
    # Defaults: the shared stop budget's (webservice/deadlines.py).
    upstream_inference_timeout: float = Field(INFERENCE_ALLOWANCE_SECONDS, gt=0)
    # At most this many requests per model in flight per gateway worker. Keep it
    # below GUNICORN_THREADS so that one slow model leaves threads for the others.
    max_in_flight_per_model: int = Field(8, ge=1)
    # How long a request may wait for one of those slots before "model_busy".
    queue_wait_seconds: float = Field(0.5, ge=0)
    # Consecutive failures that open a model's circuit, and how long it stays open.
    breaker_fail_max: int = Field(3, ge=1)
    breaker_reset_timeout: float = Field(10.0, gt=0)
    # /ready and /models ask the model services, briefly, and remember the answer.
    probe_timeout: float = Field(2.0, gt=0)
    probe_cache_seconds: float = Field(2.0, ge=0)
    max_response_bytes: int = Field(1024 * 1024, gt=0)
    # "id-token": call private model services with a Google ID token (apiclient/auth.py).
    backend_auth: BackendAuth = Field("none", description="none | id-token")

    @model_validator(mode="after")
    def _check_routes(self) -> GatewaySettings:
        routes = self.routes  # raises RouteConfigError (a ValueError) with the fix
        if self.default_model is not None and self.default_model not in routes:
            raise RouteConfigError(
                f"DEFAULT_MODEL={self.default_model!r} is not one of the routed models "
                f"{list(routes)}."
            )
        return self

    @cached_property
    def routes(self) -> dict[str, ModelRoute]:
        if self.model_services.strip() and self.model_services_file:
            raise RouteConfigError("set MODEL_SERVICES or MODEL_SERVICES_FILE, not both.")
        if self.model_services_file:
            return build_routes(load_yaml(self.model_services_file))
        return build_routes(parse_pairs(self.model_services))

    @property
    def default(self) -> str:
        return self.default_model or next(iter(self.routes))

    @property
    def predict_timeout(self) -> float:
        """The longest the gateway waits for a model service's answer to /predict."""
        return self.fetch_total_timeout + self.upstream_inference_timeout

    @property
    def predict_deadline(self) -> float:
        """A /predict's whole time in the gateway: the wait for a slot, then the call."""
        return self.queue_wait_seconds + self.predict_timeout


class GatewayServerSettings(ServerSettings):
    """gunicorn for a proxy: threads mostly wait on the network, so more of them."""

    gunicorn_threads: int = Field(16, ge=1, description="request threads per worker")
