"""v1: one model (ResNet-50 by default) behind Flask and gunicorn."""
