"""Where the backend is and how patient to be with it, read from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from apiclient.auth import BackendAuth


class ClientSettings(BaseSettings):
    """SERVING_URL plus the client's timeouts and retry budget (API_* variables)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    serving_url: str | None = Field(
        None, description="Base URL of the backend or gateway, e.g. https://backend-v1-...run.app"
    )
    api_connect_timeout: float = Field(3.05, gt=0, description="seconds to open a connection")
    # /predict with a URL includes the backend's own fetch of the image, and a
    # Cloud Run cold start can take tens of seconds, so reads get a long budget.
    api_read_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    api_connect_retries: int = Field(2, ge=0, le=5, description="retries of failed connects")
    # "id-token": call a private backend with a Google-signed ID token (apiclient/auth.py).
    backend_auth: BackendAuth = Field(
        "none", description="none | id-token (Cloud Run service-to-service authentication)"
    )
