"""backend_v2's settings: serving, sessions, and how many models a worker may hold."""

from pydantic import Field

from classifier.models import CATALOG
from classifier.settings import ServingSettings
from webservice.sessions import SessionSettings


class BackendV2Settings(ServingSettings, SessionSettings):
    """MODEL_NAME is the service default: the model of callers who chose none."""

    max_loaded_models: int = Field(3, ge=1, description="models one worker keeps loaded")

    @property
    def offered_models(self) -> list[str]:
        """Every catalog model: each caller chooses theirs."""
        return list(CATALOG)
