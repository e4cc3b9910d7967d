"""backend_v1's settings: the shared serving settings, as they are (classifier/settings.py)."""

from classifier.settings import ServingSettings


class BackendV1Settings(ServingSettings):
    """MODEL_NAME picks the one model this service serves (v3 runs one service per model)."""
