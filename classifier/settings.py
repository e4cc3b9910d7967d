"""Settings shared by every model-serving backend, read from the environment once."""

from __future__ import annotations

from functools import partial

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from classifier import gcs_weights
from classifier.fetch import FetchLimits
from classifier.images import DEFAULT_MAX_PIXELS
from classifier.models import DEFAULT_MODEL, WeightsSource


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    model_name: str = Field(DEFAULT_MODEL, description="catalog name of the model to serve")
    model_weights: str = Field(
        "default", description="default | random | <file> | <dir> | gs://<bucket>/<object>"
    )
    # The largest weights object MODEL_WEIGHTS=gs://... may download (classifier/gcs_weights.py).
    model_weights_max_bytes: int = Field(512 * 1024 * 1024, gt=0)
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    default_top_k: int = Field(5, ge=1, le=20)
    fetch_connect_timeout: float = Field(3.05, gt=0)
    fetch_read_timeout: float = Field(10.0, gt=0)
    fetch_total_timeout: float = Field(20.0, gt=0)
    # Loopback image URLs are for local development and tests; never on Cloud Run.
    allow_loopback_urls: bool = False

    @property
    def weights_source(self) -> WeightsSource:
        fetch = partial(gcs_weights.fetch, max_bytes=self.model_weights_max_bytes)
        return WeightsSource.parse(self.model_weights, fetch)

    @property
    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(
            max_bytes=self.max_upload_bytes,
            connect_timeout=self.fetch_connect_timeout,
            read_timeout=self.fetch_read_timeout,
            total_timeout=self.fetch_total_timeout,
            allow_loopback=self.allow_loopback_urls,
        )
