"""The shared serving core: image intake, model catalog, inference and Flask glue."""
