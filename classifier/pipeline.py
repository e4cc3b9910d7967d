"""One /predict call end to end (decode, classify, encode) and /models entries."""

from __future__ import annotations

import time

from classifier.images import decode_image
from classifier.inference import Predictor
from classifier.intake import ImageRequest
from classifier.models import ModelSpec, WeightsSource

RANDOM_WEIGHTS_WARNING = "untrained random weights (MODEL_WEIGHTS=random): predictions are noise"


def predict(
    predictor: Predictor, image_request: ImageRequest, *, top_k: int, max_pixels: int
) -> dict:
    started = time.perf_counter()
    image = decode_image(image_request.data, max_pixels=max_pixels)
    decoded = time.perf_counter()
    predictions, stage_ms = predictor.classify(image, top_k=top_k)
    body = {
        "model": predictor.name,
        "category": predictions[0].label,
        "predictions": [p.to_json() for p in predictions],
        "timing_ms": {
            "fetch_ms": round(image_request.fetch_ms, 2),
            "decode_ms": round((decoded - started) * 1000, 2),
            **stage_ms,
            "total_ms": round((time.perf_counter() - started) * 1000 + image_request.fetch_ms, 2),
        },
    }
    if predictor.loaded.weights_origin.startswith("random"):
        body["warning"] = RANDOM_WEIGHTS_WARNING
    return body


def model_entry(spec: ModelSpec, source: WeightsSource, *, default: bool) -> dict:
    """How /models describes one catalog model on this service."""
    reason = source.missing_reason(spec)
    entry = {
        "name": spec.name,
        "available": reason is None,
        "default": default,
        "description": spec.description,
        "parameters": spec.parameters,
        "weights": "random" if source.is_random else source.kind,
    }
    if reason:
        entry["reason"] = reason
    if source.is_random:
        entry["warning"] = RANDOM_WEIGHTS_WARNING
    return entry
