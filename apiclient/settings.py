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


# The backends' default MAX_UPLOAD_BYTES (classifier/settings.py; a test keeps them equal).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class FrontendSettings(ClientSettings):
    """What both Streamlit frontends read: the client's settings, plus what the page shows."""

    default_top_k: int = Field(5, ge=1, le=20, description="predictions shown by default")
    # Short, so a model whose weights appear shows up soon, yet page reruns stay cheap.
    models_ttl_seconds: float = Field(30, gt=0, description="how long /models stays cached")
    # A page that could not reach the backend tries again this often by itself.
    backend_retry_seconds: float = Field(5, gt=0, description="seconds between tries")
    # Set it to the backend's MAX_UPLOAD_BYTES, so the uploader refuses what the backend would.
    max_upload_bytes: int = Field(
        DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="largest upload, as the backend's limit"
    )
