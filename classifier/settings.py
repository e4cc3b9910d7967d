"""The serving settings every model-serving backend reads from the environment, once.

What to serve and the request limits come first; then how the served model
runs (classifier/serving.py), which no backend's code reads itself.
"""

from __future__ import annotations

from functools import partial

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from classifier import gcs_weights
from classifier.fetch import FetchLimits
from classifier.images import DEFAULT_MAX_PIXELS
from classifier.models import DEFAULT_MODEL, WeightsSource
from webservice.api import UploadSettings
from webservice.deadlines import FetchDeadlineSettings


class ServingSettings(UploadSettings, FetchDeadlineSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    model_name: str = Field(DEFAULT_MODEL, description="catalog name of the model to serve")
    model_weights: str = Field(
        "default", description="default | random | <file> | <dir> | gs://<bucket>/<object>"
    )
    # The largest weights object MODEL_WEIGHTS=gs://... may download (classifier/gcs_weights.py).
    model_weights_max_bytes: int = Field(512 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    default_top_k: int = Field(5, ge=1, le=20)
    # An image URL's download: FETCH_TOTAL_TIMEOUT (FetchDeadlineSettings) holds the
    # whole of it, whatever the host does; these bound each stage inside it.
    fetch_connect_timeout: float = Field(3.05, gt=0)
    fetch_read_timeout: float = Field(5.0, gt=0)
    # URL downloads at once per worker; past them a URL request gets 503 at once.
    # Fewer than the request threads, so uploads and /health always find one.
    url_fetch_slots: int | None = Field(None, ge=1, description="default: half the threads")
    # gunicorn's request threads per worker: the variable and default of
    # classifier/model_server.py (a test keeps the defaults equal).
    gunicorn_threads: int = Field(16, ge=1)
    # Loopback image URLs are for local development and tests; never on Cloud Run.
    allow_loopback_urls: bool = False
    # Each loaded model costs its weights in RAM per worker (ResNet-50 ~100 MB, more
    # with its packed copies); past this many the least recently used one is dropped.
    max_loaded_models: int = Field(1, ge=1, description="models one worker keeps loaded")

    # How the served model runs (classifier/serving.py); each is on by default.
    # Concurrent requests are run together, up to this many images per forward pass
    # (classifier/batching.py); 1 turns micro-batching off.
    max_batch: int = Field(4, ge=1, le=64)
    # How long an engine may wait for images it knows are on their way.
    batch_wait_ms: float = Field(5.0, ge=0, le=1000)
    # Under load, how long a single engine on every core may wait for the users it
    # has just answered to send their next images, to run them as one batch (0: never).
    answered_users_wait_ms: float = Field(40.0, ge=0, le=1000)
    # Forward passes at a time: 1, a single batched pass on every core; N, up to N
    # single-threaded passes (at most one per core). Default: one per core on packed
    # weights, else by model size (classifier.batching.default_engines).
    inference_engines: int | None = Field(None, ge=1)
    channels_last: bool = Field(True, description="NHWC weights and inputs (faster on CPU)")
    fold_batch_norm: bool = Field(
        True, description="fold each BatchNorm into the convolution before it, once at load"
    )
    pack_convolutions: bool = Field(
        True,
        description="pack convolution weights into oneDNN's layout once, ReLU fused "
        "(classifier/packing.py)",
    )

    @property
    def offered_models(self) -> list[str]:
        """The catalog models a caller may ask for: MODEL_NAME alone, one model per process."""
        return [self.model_name]

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
            max_concurrent=self.url_fetch_slot_count,
        )

    @property
    def url_fetch_slot_count(self) -> int:
        return self.url_fetch_slots or max(1, self.gunicorn_threads // 2)

    @model_validator(mode="after")
    def _threads_beside_url_fetches(self) -> ServingSettings:
        if self.url_fetch_slot_count >= self.gunicorn_threads:
            raise ValueError(
                f"URL_FETCH_SLOTS={self.url_fetch_slot_count} leaves no request thread of "
                f"GUNICORN_THREADS={self.gunicorn_threads} for uploads and /health while "
                "image hosts are slow: use fewer URL fetch slots or more threads."
            )
        return self
