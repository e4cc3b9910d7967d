"""v3: an API gateway in front of one model service per model (backend_v1 with MODEL_NAME)."""
