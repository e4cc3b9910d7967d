"""backend_v1's settings: the shared serving settings plus how requests share the cores."""

from pydantic import Field

from classifier.settings import ServingSettings


class BackendV1Settings(ServingSettings):
    """MODEL_NAME picks the one model this service serves (v3 runs one per model)."""

    # Concurrent requests are run together, up to this many images per forward pass
    # (classifier/batching.py); 1 turns micro-batching off.
    max_batch: int = Field(4, ge=1, le=64)
    # How long an engine may wait for images it knows are on their way.
    batch_wait_ms: float = Field(5.0, ge=0, le=1000)
    # Under load, how long the single engine on every core may wait for the users it
    # has just answered to send their next images, to run them as one batch (0: never).
    batch_linger_ms: float = Field(40.0, ge=0, le=1000)
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
