"""backend_v2's settings: serving, sessions, and how many models a worker may hold."""

from pydantic import Field

from classifier.sessions import SessionSettings
from classifier.settings import ServingSettings


class BackendV2Settings(ServingSettings, SessionSettings):
    """MODEL_NAME is the service default: the model of callers who chose none."""

    # Each loaded model costs its weights in RAM per worker (ResNet-50 ~100 MB);
    # past this many the least recently used one is dropped.
    max_loaded_models: int = Field(3, ge=1, description="models one worker keeps loaded")
